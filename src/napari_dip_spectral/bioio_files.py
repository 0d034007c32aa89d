"""Microscope formats other than TIFF (CZI, ND2, LIF, ...) through ``bioio``, an optional extra.

bioio gives every format as (T, C, Z, Y, X[, S]) with its readers installed as plugins
(``bioio-czi``, ``bioio-nd2``, ``bioio-lif``). Axes of size 1 are dropped, as tifffile drops
them for a TIFF's series, so a single Z stack reads as ``ZYX`` whatever the file's format.
Pixel sizes are those bioio reports: converted to micrometres where its reader attaches a
unit, else taken as micrometres, the unit bioio's CZI, ND2 and LIF readers report in. This
module returns plain values, so that ``files`` can wrap them without importing it back.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

EXTRA = 'pip install "napari-dip-spectral[bioio]"'
# Y and X are the plane: kept even where a file holds a single row or column
_KEEP = "YX"


def read_bioio(path) -> tuple[np.ndarray, str, dict, dict]:
    """``(data, axes, pixel_size, units)`` of the first scene of ``path``. ``ValueError``
    when bioio is not installed (naming the extra) or none of its readers takes the file."""
    path = Path(path)
    if not path.exists():  # before bioio, whose "unsupported format" would hide a mistyped name
        raise FileNotFoundError(f"no such file: {path}")
    try:
        import bioio
    except ImportError:
        raise ValueError(
            f"{path.name}: {path.suffix or 'this'} files are read with bioio, which is not installed: {EXTRA} "
            "(adds the CZI, ND2 and LIF readers; TIFF, PNG, JPEG and BMP need nothing more)"
        ) from None
    try:
        image = bioio.BioImage(path)
    except Exception as error:  # bioio's own types: unsupported format, missing plugin, broken file
        raise ValueError(f"{path.name}: bioio cannot read it: {error}") from error
    return from_bioimage(image, path.name)


def from_bioimage(image, name: str) -> tuple[np.ndarray, str, dict, dict]:
    """Data, axes and sizes of a ``bioio.BioImage`` (or anything with its ``dims``, ``data``,
    ``physical_pixel_sizes`` and optionally ``scenes`` and ``dimension_properties``)."""
    scenes = tuple(getattr(image, "scenes", ()) or ())
    if len(scenes) > 1:
        warnings.warn(f"{name} holds {len(scenes)} scenes; reading the first ({scenes[0]})", UserWarning, stacklevel=3)
    data = np.asarray(image.data)
    order = image.dims.order
    if len(order) != data.ndim:
        raise ValueError(f"{name}: bioio gave {data.ndim}-D data for the axes {order!r}")
    drop = tuple(i for i, (letter, size) in enumerate(zip(order, data.shape)) if size == 1 and letter not in _KEEP)
    axes = "".join(letter for i, letter in enumerate(order) if i not in drop)
    data = data.squeeze(axis=drop) if drop else data
    sizes, units = {}, {}
    props = getattr(image, "dimension_properties", None)
    for letter in "XYZ":
        size = getattr(image.physical_pixel_sizes, letter)
        if letter not in axes or size is None or not np.isfinite(size) or size <= 0:
            continue
        unit = getattr(getattr(props, letter, None), "unit", None)
        micrometres = _to_micrometres(float(size), unit)
        if micrometres is None:  # a unit that is no length (e.g. pixel): a size without a unit
            sizes[letter] = float(size)
        else:
            sizes[letter], units[letter] = micrometres, "µm"
    return data, axes, sizes, units


def _to_micrometres(size: float, unit) -> float | None:
    if unit is None:
        return size
    try:
        return float((size * unit).to("micrometer").magnitude)
    except Exception:  # pint's DimensionalityError, or a unit that is not a pint unit
        return None
