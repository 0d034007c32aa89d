"""Reading images with their axes and pixel size, and writing results that keep them.

TIFF / OME-TIFF are read with tifffile (axes from the series); the pixel size per axis and its
unit come from the OME-XML (parsed by ``ome-types``), the ImageJ description (resolution,
spacing, unit) or the TIFF resolution tags with their ResolutionUnit (centimetre is
converted to micrometres; inch, a screen or print resolution, is ignored). PNG, JPEG and BMP
are read with Pillow, any other format (CZI, ND2, LIF, ...) with bioio where the optional
extra is installed (``bioio_files``). Results are written as TIFF: ImageJ hyperstacks stay
ImageJ (``imagej=True`` with resolution, spacing and unit), OME and bioio input give OME
output, anything else (or data ImageJ / OME cannot hold) a plain TIFF with the axes, pixel
sizes and units in its JSON description and X/Y in its resolution tags. Writes are atomic: a
temporary file in the target folder, then ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGEJ_ORDER = "TZCYXS"
# tifffile axis codes without a letter of ours: image sequence / unknown -> a loop axis
_AXIS_MAP = {"I": "Z", "Q": "Z"}
# micrometres per TIFF ResolutionUnit 3 (centimetre); 1 (none) leaves the size unitless. Inch
# (2, TIFF's default) is skipped: it is the dots-per-inch of screenshots and scanners (72, 96,
# 300), and read as a calibration it would give a micrograph pixels of a third of a millimetre.
_RESOLUTION_UM = {3: 10000.0}
_INCH = 2
# what tifffile can describe in OME-XML: float16 and 64-bit integers have no OME pixel type
OME_DTYPES = frozenset(
    np.dtype(t)
    for t in ("bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float32", "float64", "complex64")
)
# ImageJ reads "um" as micrometres; its description is ASCII, so "µm" cannot be written as is
_IMAGEJ_UNITS = {"µm": "um"}


@dataclass
class ImageFile:
    """An image read from disk: ``data`` with ``axes``, pixel sizes per axis (``{"X": 0.1,
    ...}``) with each axis' unit (``{"X": "nm", "Z": "µm"}``; absent when the file gives none),
    and which metadata ``kind`` to write back."""

    data: np.ndarray
    axes: str
    kind: str  # "imagej" | "ome" | "tiff" | "plain"
    pixel_size: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)

    @property
    def unit(self) -> str | None:
        """The unit of X (that of the whole image in ImageJ and plain TIFFs)."""
        return self.units.get("X")


def read_image(path, axes: str | None = None) -> ImageFile:
    """Read ``path``; ``ValueError`` for unsupported files. ``axes``: the caller's own (the
    CLI's ``--axes``), which stand in for a TIFF's that cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path, axes)
    if suffix in PLAIN_SUFFIXES:
        from PIL import Image

        with Image.open(path) as pil:
            if pil.mode in ("RGBA", "LA", "P"):
                pil = pil.convert("RGB" if pil.mode != "LA" else "L")
            data = np.asarray(pil)
        axes = "YXS" if data.ndim == 3 else "YX"
        return ImageFile(data, axes, "plain")
    return _read_bioio(path)


def _read_bioio(path: Path) -> ImageFile:
    """A file in any format bioio has a reader for; written back as OME-TIFF, the format
    that keeps its per-axis sizes."""
    from .bioio_files import read_bioio

    data, axes, sizes, units = read_bioio(path)
    return ImageFile(data, axes, "ome", sizes, units)


def _read_tiff(path: Path, given: str | None = None) -> ImageFile:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = "".join(_AXIS_MAP.get(a, a) for a in series.axes)
        info = ImageFile(data, axes, "tiff")
        if tif.is_ome and tif.ome_metadata:
            info.kind = "ome"
            _ome_sizes(tif.ome_metadata, info, path.name)
        elif tif.is_imagej:
            info.kind = "imagej"
            _imagej_sizes(tif.imagej_metadata or {}, info)
        elif tif.is_shaped and tif.shaped_metadata:
            _named_sizes(tif.shaped_metadata[0], info)
        if not info.pixel_size.get("X"):
            _resolution_sizes(tif.pages[0], info)
    if len(set(info.axes)) != len(info.axes) and not given:  # given axes are checked against the data later
        raise ValueError(f"{path.name}: cannot use the axes {series.axes!r}; pass --axes")
    return info


def _ome_sizes(xml: str, info: ImageFile, name: str) -> None:
    """Per-axis sizes and units of the first OME Image: the one tifffile reads as series 0."""
    from ome_types import from_xml

    try:
        images = from_xml(xml).images
    except Exception as error:  # vendors' XML that breaks the schema: the pixels are still worth reading
        warnings.warn(f"{name}: OME metadata not understood ({error}); pixel size not read", UserWarning, stacklevel=4)
        return
    if not images:
        return
    pixels = images[0].pixels
    for letter in "XYZ":
        size = getattr(pixels, f"physical_size_{letter.lower()}")
        if size is not None:
            info.pixel_size[letter] = float(size)
            info.units[letter] = getattr(pixels, f"physical_size_{letter.lower()}_unit").value


def _imagej_sizes(meta: dict, info: ImageFile) -> None:
    if meta.get("unit"):
        # ImageJ gives one unit, with yunit / zunit only where an axis differs
        for letter, key in (("X", "unit"), ("Y", "yunit"), ("Z", "zunit")):
            if letter != "Z" or "Z" in info.axes or meta.get("spacing"):
                info.units[letter] = meta.get(key) or meta["unit"]
    if meta.get("spacing"):
        info.pixel_size["Z"] = float(meta["spacing"])


def _named_sizes(meta: dict, info: ImageFile) -> None:
    """Sizes a plain TIFF of ours keeps in its JSON description, named as in OME-XML."""
    for letter in "XYZ":
        if f"PhysicalSize{letter}" in meta:
            info.pixel_size[letter] = float(meta[f"PhysicalSize{letter}"])
            if meta.get(f"PhysicalSize{letter}Unit"):
                info.units[letter] = meta[f"PhysicalSize{letter}Unit"]


def _resolution_sizes(page, info: ImageFile) -> None:
    """X / Y from the resolution tags, in micrometres when their ResolutionUnit is centimetre;
    ImageJ writes "none" and puts its unit elsewhere, which wins when the file named one."""
    tag = page.tags.get("ResolutionUnit")
    code = _INCH if tag is None else int(tag.value)
    if code == _INCH and not info.units.get("X"):
        return
    to_um = None if info.units.get("X") else _RESOLUTION_UM.get(code)
    for letter, name in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(name)
        if value is None:
            continue
        num, den = value.value
        if num and den and num / den != 1:  # 1 pixel per unit: a writer's placeholder, not a calibration
            info.pixel_size[letter] = den / num * (to_um or 1)
            if to_um:
                info.units[letter] = "µm"


def imagej_ok(axes: str, dtype, units: dict) -> bool:
    """Whether an ImageJ hyperstack can hold this: its axis order, its three pixel types (RGB
    only as uint8) and units its ASCII description can spell."""
    dtype = np.dtype(dtype)
    return (
        _in_order(axes, IMAGEJ_ORDER)
        and dtype in (np.uint8, np.uint16, np.float32)
        and not (axes.endswith("S") and dtype != np.uint8)
        and all(_IMAGEJ_UNITS.get(u, u).isascii() for u in units.values() if u)
    )


def ome_ok(axes: str, dtype) -> bool:
    """Whether OME-XML (as tifffile writes it) can hold this: a pixel type of OME's and the
    planes' own axes last."""
    return np.dtype(dtype) in OME_DTYPES and axes.endswith(("YX", "YXS"))


def tiff_kind(path, dtype, axes: str, units: dict) -> str:
    """The metadata to write a TIFF with: OME for ``.ome.tif`` (or an error saying why it
    cannot be), else ImageJ, which Fiji reads natively, where it fits, then OME, then a plain
    TIFF with the metadata in its description."""
    name = Path(path).name.lower()
    if name.endswith((".ome.tif", ".ome.tiff")):
        if not ome_ok(axes, dtype):
            raise ValueError(
                f"OME-TIFF cannot hold {np.dtype(dtype)} data with axes {axes!r} (its pixel types: "
                f"{', '.join(sorted(str(t) for t in OME_DTYPES))}; Y, X last): save it as .tif"
            )
        return "ome"
    if imagej_ok(axes, dtype, units):
        return "imagej"
    return "ome" if ome_ok(axes, dtype) else "tiff"


def write_tiff(path, data: np.ndarray, axes: str, source: ImageFile, scale: int = 1) -> Path:
    """Write ``data`` (with ``axes``) to ``path`` atomically, keeping the source's metadata;
    ``scale`` divides the X/Y pixel size (super-resolution output)."""
    import tifffile

    path = Path(path)
    sizes = dict(source.pixel_size)
    units = {letter: unit for letter, unit in source.units.items() if unit}
    for letter in "XY":
        if letter in sizes:
            sizes[letter] = sizes[letter] / scale
    fits = {"imagej": imagej_ok(axes, data.dtype, units), "ome": ome_ok(axes, data.dtype)}
    kind = source.kind if fits.get(source.kind, True) else "tiff"  # what the kind cannot hold: a plain TIFF
    kwargs: dict = {}
    if kind == "ome":
        meta = {"axes": axes}
        for letter, value in sizes.items():
            meta[f"PhysicalSize{letter}"] = value
            # an OME size always has a unit; "pixel" is OME's own for a size nobody calibrated
            meta[f"PhysicalSize{letter}Unit"] = units.get(letter, "pixel")
        kwargs.update(ome=True, metadata=meta)
    elif kind == "imagej":
        meta = {"axes": axes}
        if "Z" in sizes:
            meta["spacing"] = sizes["Z"]
        if units.get("X"):
            meta["unit"] = _IMAGEJ_UNITS.get(units["X"], units["X"])
            for letter in "YZ":
                if units.get(letter, units["X"]) != units["X"]:
                    meta[f"{letter.lower()}unit"] = _IMAGEJ_UNITS.get(units[letter], units[letter])
        if "X" in sizes and "Y" in sizes:
            kwargs["resolution"] = (1 / sizes["X"], 1 / sizes["Y"])
        kwargs.update(imagej=True, metadata=meta)
    else:
        meta = {"axes": axes}
        for letter, value in sizes.items():
            meta[f"PhysicalSize{letter}"] = value
            if letter in units:
                meta[f"PhysicalSize{letter}Unit"] = units[letter]
        # left to guess, tifffile stores a (3, Y, X) stack as one RGB image, which other
        # programs then show as colour: only colour samples (S last) are RGB
        rgb = axes.endswith("S") and data.shape[-1] in (3, 4)
        kwargs.update(metadata=meta, photometric="rgb" if rgb else "minisblack", **_resolution(sizes, units))
    return write_atomic(path, lambda tmp: tifffile.imwrite(tmp, data, **kwargs))


def _resolution(sizes: dict, units: dict) -> dict:
    """Resolution tags for a plain TIFF: pixels per centimetre when X and Y are in micrometres
    (what other readers understand), else unitless; tifffile's own default would say inch."""
    if "X" not in sizes or "Y" not in sizes:
        return {}
    if units.get("X") == units.get("Y") == "µm":
        return {"resolution": (1e4 / sizes["X"], 1e4 / sizes["Y"]), "resolutionunit": "CENTIMETER"}
    return {"resolution": (1 / sizes["X"], 1 / sizes["Y"]), "resolutionunit": "NONE"}


def write_atomic(path, write) -> Path:
    """Call ``write(temporary_path)`` and move the file to ``path`` (same folder). The file
    gets the permissions a plainly created file would (``0o666`` less the umask), not the
    temporary file's private ``0o600``: colleagues on a shared server can read results."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as error:  # name the file asked for, not the temporary one
        raise type(error)(error.errno, f"cannot write {path.name} in {path.parent}: {error.strerror}") from error
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
