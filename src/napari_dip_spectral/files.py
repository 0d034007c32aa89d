"""Reading images with their axes and pixel size, and writing results that keep them.

TIFF / OME-TIFF are read with tifffile (axes from the series; pixel size from ImageJ
resolution/spacing tags or OME ``PhysicalSize*``); PNG, JPEG and BMP with Pillow. Results are
written as TIFF: ImageJ hyperstacks stay ImageJ (``imagej=True`` with resolution, spacing and
unit), OME input gives OME output, anything else a plain TIFF with the axes in its
description. Writes are atomic: a temporary file in the target folder, then ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGEJ_ORDER = "TZCYXS"
# tifffile axis codes without a letter of ours: image sequence / unknown -> a loop axis
_AXIS_MAP = {"I": "Z", "Q": "Z"}


@dataclass
class ImageFile:
    """An image read from disk: ``data`` with ``axes``, pixel sizes per axis (``{"X": 0.1,
    ...}``) and their ``unit``, and which metadata ``kind`` to write back."""

    data: np.ndarray
    axes: str
    kind: str  # "imagej" | "ome" | "tiff" | "plain"
    pixel_size: dict = field(default_factory=dict)
    unit: str | None = None


def read_image(path) -> ImageFile:
    """Read ``path``; ``ValueError`` for unsupported files."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path)
    if suffix in PLAIN_SUFFIXES:
        from PIL import Image

        with Image.open(path) as pil:
            if pil.mode in ("RGBA", "LA", "P"):
                pil = pil.convert("RGB" if pil.mode != "LA" else "L")
            data = np.asarray(pil)
        axes = "YXS" if data.ndim == 3 else "YX"
        return ImageFile(data, axes, "plain")
    raise ValueError(f"unsupported file type {suffix!r} for {path.name}: use TIFF, PNG, JPEG or BMP")


def _read_tiff(path: Path) -> ImageFile:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = "".join(_AXIS_MAP.get(a, a) for a in series.axes)
        page = tif.pages[0]
        info = ImageFile(data, axes, "tiff")
        if tif.is_ome and tif.ome_metadata:
            info.kind = "ome"
            _ome_sizes(tif.ome_metadata, info)
        elif tif.is_imagej:
            info.kind = "imagej"
            meta = tif.imagej_metadata or {}
            info.unit = meta.get("unit")
            if meta.get("spacing"):
                info.pixel_size["Z"] = float(meta["spacing"])
        if not info.pixel_size.get("X"):
            for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
                value = page.tags.get(tag)
                if value is not None:
                    num, den = value.value
                    if num and den and num / den != 1:
                        info.pixel_size[letter] = den / num
    if len(set(info.axes)) != len(info.axes):
        raise ValueError(f"{path.name}: cannot use the axes {series.axes!r}; pass --axes")
    return info


def _ome_sizes(xml: str, info: ImageFile) -> None:
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return
    for letter in "XYZ":
        value = pixels.get(f"PhysicalSize{letter}")
        if value is not None:
            info.pixel_size[letter] = float(value)
            info.unit = pixels.get(f"PhysicalSize{letter}Unit", info.unit or "µm")


def write_tiff(path, data: np.ndarray, axes: str, source: ImageFile, scale: int = 1) -> Path:
    """Write ``data`` (with ``axes``) to ``path`` atomically, keeping the source's metadata;
    ``scale`` divides the X/Y pixel size (super-resolution output)."""
    import tifffile

    path = Path(path)
    sizes = dict(source.pixel_size)
    for letter in "XY":
        if letter in sizes:
            sizes[letter] = sizes[letter] / scale
    kwargs: dict = {}
    if "X" in sizes and "Y" in sizes:
        kwargs["resolution"] = (1 / sizes["X"], 1 / sizes["Y"])
    imagej_ok = (
        _in_order(axes, IMAGEJ_ORDER)
        and data.dtype in (np.uint8, np.uint16, np.float32)
        and not (axes.endswith("S") and data.dtype != np.uint8)
    )
    if source.kind == "ome":
        meta = {"axes": axes}
        for letter, value in sizes.items():
            meta[f"PhysicalSize{letter}"] = value
            meta[f"PhysicalSize{letter}Unit"] = source.unit or "µm"
        kwargs.pop("resolution", None)
        kwargs.update(ome=True, metadata=meta)
    elif source.kind == "imagej" and imagej_ok:
        meta = {"axes": axes}
        if "Z" in sizes:
            meta["spacing"] = sizes["Z"]
        if source.unit:
            meta["unit"] = source.unit
        kwargs.update(imagej=True, metadata=meta)
    else:
        kwargs.update(metadata={"axes": axes})
    return write_atomic(path, lambda tmp: tifffile.imwrite(tmp, data, **kwargs))


def write_atomic(path, write) -> Path:
    """Call ``write(temporary_path)`` and move the file to ``path`` (same folder). The file
    gets the permissions a plainly created file would (``0o666`` less the umask), not the
    temporary file's private ``0o600``: colleagues on a shared server can read results."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _in_order(axes: str, order: str) -> bool:
    positions = [order.find(a) for a in axes]
    return -1 not in positions and positions == sorted(positions)
