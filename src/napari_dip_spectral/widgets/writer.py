"""napari's File > Save for an image layer: a TIFF that keeps the pixel size and unit of each
axis, the axis order and the dtype, with a result layer's run record beside it as JSON.

napari's own TIFF writer keeps only the pixels. This one reads the layer's ``scale``,
``units`` and ``axis_labels`` and hands them to :func:`~napari_dip_spectral.files.write_tiff`:
``.tif`` becomes an ImageJ hyperstack where ImageJ can hold the data (Fiji reads it natively),
else OME-TIFF, else a plain TIFF with the metadata in its description; ``.ome.tif`` is always
OME-TIFF. The pixels are written as they are, never converted to another dtype.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..files import ImageFile, tiff_kind, write_atomic, write_tiff
from .layers import labelled_axes
from .result_layers import RESULT_KEY


def write_image_layer(path: str, data, meta: dict) -> list[str]:
    """npe2 single-layer writer: write ``data`` (the layer's) with ``meta`` (its state) to
    ``path``; returns the paths written (the image, then its run record if it has one)."""
    if meta.get("multiscale"):
        raise ValueError("a multiscale layer cannot be saved as one TIFF; save its full-resolution level")
    array = np.asarray(data)  # a lazy (dask) layer is computed here: TIFF is written from memory
    run = (meta.get("metadata") or {}).get(RESULT_KEY)
    axes = _axes(meta, array.shape, run)
    sizes, units = physical_sizes(axes, meta)
    target = Path(path)
    source = ImageFile(array, axes, tiff_kind(target, array.dtype, axes, units), sizes, units)
    record = None
    if run is not None:
        # made into text before anything is written: a record that cannot be saved stops the save
        record = json.dumps(_finite(_record(target, meta, source, run)), indent=1, default=_plain, allow_nan=False)
    write_tiff(target, array, axes, source)
    written = [str(target)]
    if record is not None:
        sidecar = record_path(target)
        write_atomic(sidecar, lambda tmp: Path(tmp).write_text(record, encoding="utf-8"))
        written.append(str(sidecar))
    return written


def record_path(image: Path) -> Path:
    """``cells.json`` beside ``cells.tif`` or ``cells.ome.tif``."""
    name = image.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return image.with_name(f"{name}.json")


def physical_sizes(axes: str, meta: dict) -> tuple[dict, dict]:
    """Pixel size and unit of the layer's X, Y and Z axes: sizes from its ``scale``, units from
    its ``units`` where napari knows them (not ``pixel``), else from ``metadata["units"]`` or
    ``metadata["unit"]``. A length unit OME has no symbol for is converted to micrometres."""
    from ome_types.model import UnitsLength

    spatial = axes.rstrip("S")  # an RGB layer's scale and units do not cover its colour axis
    scale = list(meta.get("scale") or [1.0] * len(spatial))
    given = list(meta.get("units") or [None] * len(spatial))
    extra = meta.get("metadata") or {}
    named = extra.get("units") if isinstance(extra.get("units"), dict) else {}
    symbols = {u.value for u in UnitsLength}
    sizes, units = {}, {}
    for position, letter in enumerate(spatial):
        if letter not in "XYZ":
            continue
        size, unit = float(scale[position]), _length(given[position])
        if unit is None:
            unit = _length(named.get(letter) or extra.get("unit"))
        if unit is not None and f"{unit:~}" not in symbols:
            quantity = (size * unit).to("micrometer")
            size, unit = float(quantity.magnitude), quantity.units
        sizes[letter] = size
        if unit is not None:
            units[letter] = f"{unit:~}"
    return sizes, units


def _length(unit):
    """``unit`` (a pint unit or its name) when it is a length; None otherwise (``pixel``, a
    time, a name pint does not know, nothing)."""
    if unit is None:
        return None
    if isinstance(unit, str):
        import pint

        try:
            unit = pint.get_application_registry().Unit(unit)
        except (pint.errors.UndefinedUnitError, ValueError):
            return None
    return unit if unit.is_compatible_with("meter") else None


def _axes(meta: dict, shape: tuple[int, ...], run: dict | None) -> str:
    """The layer's axis labels when they name its axes, else the axes its run used, else a
    guess from its shape; a colour (RGB) layer's last axis is S."""
    from ..engine.layout import guess_axes, parse_axes

    rgb = bool(meta.get("rgb"))
    axes = labelled_axes(meta.get("axis_labels") or (), shape, rgb)
    if not axes and isinstance(run, dict) and run.get("axes"):
        try:
            axes = parse_axes(run["axes"], shape)
        except ValueError:
            axes = ""
    if not axes:
        try:
            axes = guess_axes(shape)
        except ValueError as error:
            raise ValueError(f"cannot tell the axes of {meta.get('name')!r}: {error}; label them (z, y, x)") from None
    if rgb and axes.endswith("C"):
        axes = axes[:-1] + "S"
    return axes


def _record(target: Path, meta: dict, source: ImageFile, run: dict) -> dict:
    from ..provenance import versions

    return {
        "image": target.name,
        "layer": meta.get("name"),
        "axes": source.axes,
        "shape": list(source.data.shape),
        "dtype": str(source.data.dtype),
        "pixel_size": source.pixel_size,
        "units": source.units,
        "scale": list(meta.get("scale") or []),
        "translate": list(meta.get("translate") or []),
        "run": run,
        "versions": versions(),
    }


def _finite(value):
    """``value`` with NaN and infinities as None: JSON has no numbers for them."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_finite(item) for item in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _plain(value):
    """JSON for what the run record holds besides JSON types: numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
