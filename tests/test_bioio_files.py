"""Formats other than TIFF through the optional bioio extra: axes with singletons dropped,
pixel sizes in micrometres, OME-TIFF output, and a message naming the extra without it. The
real reads use bioio's OME-TIFF plugin and its CZI plugin (with a file written by Zeiss'
pylibCZIrw), the format plugins the tests install."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from napari_dip_spectral import bioio_files, files
from napari_dip_spectral.bioio_files import from_bioimage
from napari_dip_spectral.cli import main, output_stem
from napari_dip_spectral.files import read_image, write_tiff

FAST = ["--iterations", "5", "--channels", "8"]
EXTRA = 'pip install "napari-dip-spectral[bioio]"'


def _ome_zcyx(path: Path) -> np.ndarray:
    data = np.arange(3 * 2 * 16 * 20, dtype=np.uint16).reshape(3, 2, 16, 20)
    meta = {"axes": "ZCYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 1.5}
    meta.update(PhysicalSizeXUnit="µm", PhysicalSizeYUnit="µm", PhysicalSizeZUnit="µm")
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    return data


def test_a_file_read_through_bioio_has_its_axes_sizes_and_ome_output(tmp_path):
    pytest.importorskip("bioio")
    pytest.importorskip("bioio_ome_tiff")
    data = _ome_zcyx(tmp_path / "cells.ome.tif")
    image = files._read_bioio(tmp_path / "cells.ome.tif")
    # bioio's order is T, C, Z, Y, X; T of size 1 is dropped
    assert image.axes == "CZYX" and image.kind == "ome"
    assert image.data.shape == (2, 3, 16, 20)
    np.testing.assert_array_equal(image.data, data.transpose(1, 0, 2, 3))
    assert image.pixel_size == pytest.approx({"X": 0.2, "Y": 0.3, "Z": 1.5})
    assert image.units == {"X": "µm", "Y": "µm", "Z": "µm"}
    back = read_image(write_tiff(tmp_path / "out.tif", image.data, image.axes, image, scale=2))
    assert back.kind == "ome" and back.axes == "CZYX"
    assert back.pixel_size == pytest.approx({"X": 0.1, "Y": 0.15, "Z": 1.5})
    assert back.units == {"X": "µm", "Y": "µm", "Z": "µm"}


def test_the_cli_writes_a_bioio_input_as_ome_tiff_with_its_sizes(tmp_path, monkeypatch):
    pytest.importorskip("bioio")
    pytest.importorskip("bioio_ome_tiff")
    path = tmp_path / "cells.ome.tif"
    data = np.random.default_rng(0).integers(100, 4001, size=(2, 32, 32)).astype(np.uint16)
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 2.0}
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    # no TIFF suffix of files' own: the input takes the path a CZI or ND2 file takes
    monkeypatch.setattr(files, "TIFF_SUFFIXES", ())
    read = []
    monkeypatch.setattr(bioio_files, "read_bioio", lambda p, real=bioio_files.read_bioio: read.append(p) or real(p))
    assert main(["denoise", str(path), "-o", str(tmp_path / "o"), *FAST]) == 0
    monkeypatch.undo()
    assert read == [path]
    out = read_image(tmp_path / "o" / "cells_denoise.tif")
    assert out.kind == "ome" and out.axes == "ZYX" and out.data.shape == (2, 32, 32)
    assert out.data.dtype == np.uint16
    assert out.pixel_size == pytest.approx({"X": 0.25, "Y": 0.25, "Z": 2.0})
    assert out.units == {"X": "µm", "Y": "µm", "Z": "µm"}


def _czi_czyx(path: Path) -> np.ndarray:
    """A CZI file as a Zeiss microscope writes one (through Zeiss' own pylibCZIrw): two
    channels of three planes, 0.2 x 0.2 x 0.7 micrometre pixels."""
    from pylibCZIrw import czi

    data = np.random.default_rng(0).integers(100, 4001, size=(2, 3, 24, 32)).astype(np.uint16)
    with czi.create_czi(str(path), exist_ok=True) as out:
        for c in range(2):
            for z in range(3):
                out.write(data=data[c, z], plane={"C": c, "Z": z, "T": 0})
        out.write_metadata(channel_names={0: "DAPI", 1: "GFP"}, scale_x=0.2e-6, scale_y=0.2e-6, scale_z=0.7e-6)
    return data


def test_a_czi_file_keeps_its_channels_planes_and_pixel_sizes_through_the_cli(tmp_path):
    pytest.importorskip("bioio")
    pytest.importorskip("bioio_czi")
    path = tmp_path / "nuclei.czi"
    data = _czi_czyx(path)
    image = read_image(path)
    assert image.axes == "CZYX" and image.kind == "ome"
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size == pytest.approx({"X": 0.2, "Y": 0.2, "Z": 0.7})
    assert image.units == {"X": "µm", "Y": "µm", "Z": "µm"}
    assert main(["denoise", str(path), "-o", str(tmp_path / "o"), *FAST]) == 0
    out = read_image(tmp_path / "o" / "nuclei_denoise.tif")
    assert out.kind == "ome" and out.axes == "CZYX" and out.data.shape == data.shape
    assert out.data.dtype == np.uint16
    assert out.pixel_size == pytest.approx({"X": 0.2, "Y": 0.2, "Z": 0.7})
    assert out.units == {"X": "µm", "Y": "µm", "Z": "µm"}
    assert not np.array_equal(out.data, data)  # restored, not copied through


def test_without_bioio_the_error_names_the_extra_and_the_suffix(tmp_path, monkeypatch, capsys):
    path = tmp_path / "cells.czi"
    path.write_bytes(b"ZISRAWFILE" + bytes(64))
    monkeypatch.setitem(sys.modules, "bioio", None)  # "import bioio" raises ImportError
    with pytest.raises(ValueError, match=r"cells\.czi: \.czi files are read with bioio") as error:
        read_image(path)
    assert EXTRA in str(error.value)
    assert main(["denoise", str(path), "-o", str(tmp_path / "o"), *FAST]) == 1
    assert EXTRA in capsys.readouterr().err


def test_a_format_bioio_cannot_read_is_a_value_error_naming_the_file(tmp_path):
    pytest.importorskip("bioio")
    path = tmp_path / "notes.xyz"
    path.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.xyz: bioio cannot read it") as error:
        read_image(path)
    assert type(error.value.__cause__).__name__ == "UnsupportedFileFormatError"


def test_a_missing_file_is_not_found_before_bioio_is_asked(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bioio", None)
    with pytest.raises(FileNotFoundError, match=r"nope\.nd2"):
        read_image(tmp_path / "nope.nd2")


def _fake(order, shape, sizes, scenes=("Image:0",), props=None):
    """An object with the parts of bioio.BioImage that from_bioimage reads."""
    return SimpleNamespace(
        dims=SimpleNamespace(order=order),
        data=np.arange(np.prod(shape), dtype=np.float32).reshape(shape),
        physical_pixel_sizes=SimpleNamespace(Z=sizes[0], Y=sizes[1], X=sizes[2]),
        scenes=scenes,
        dimension_properties=props,
    )


def test_rgb_keeps_samples_and_more_scenes_warn():
    fake = _fake("TCZYXS", (1, 1, 1, 16, 20, 3), (None, 0.5, 0.5), scenes=("a", "b"))
    with pytest.warns(UserWarning, match="slide.czi holds 2 scenes; reading the first"):
        data, axes, sizes, units = from_bioimage(fake, "slide.czi")
    assert axes == "YXS" and data.shape == (16, 20, 3)
    assert sizes == {"X": 0.5, "Y": 0.5} and units == {"X": "µm", "Y": "µm"}


def test_a_single_row_keeps_y_and_a_time_lapse_keeps_t():
    data, axes, sizes, units = from_bioimage(_fake("TCZYX", (4, 1, 3, 1, 20), (2.0, None, float("nan"))), "line.nd2")
    assert axes == "TZYX" and data.shape == (4, 3, 1, 20)
    assert sizes == {"Z": 2.0} and units == {"Z": "µm"}


def test_a_unit_bioio_attaches_is_converted_to_micrometres():
    pint = pytest.importorskip("pint")
    ureg = pint.UnitRegistry()
    props = SimpleNamespace(
        X=SimpleNamespace(unit=ureg.nanometer), Y=SimpleNamespace(unit=ureg.nanometer), Z=SimpleNamespace(unit=None)
    )
    _, axes, sizes, units = from_bioimage(_fake("TCZYX", (1, 1, 5, 8, 8), (0.4, 65.0, 80.0), props=props), "a.lif")
    assert axes == "ZYX"
    assert sizes == pytest.approx({"X": 0.08, "Y": 0.065, "Z": 0.4})
    assert units == {"X": "µm", "Y": "µm", "Z": "µm"}


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("cells.czi", "cells_denoise"),
        ("plate.ome.zarr", "plate_denoise"),
        ("a.OME.TIF", "a_denoise"),
        ("b.tiff", "b_denoise"),
        ("scan.v2.png", "scan.v2_denoise"),
    ],
)
def test_output_names_lose_the_format_suffix(name, stem):
    assert output_stem(Path(name), "denoise") == stem
