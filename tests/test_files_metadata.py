"""Pixel size and units per axis as files store them: OME-XML (through ome-types), ImageJ
descriptions and the TIFF resolution tags with their ResolutionUnit; atomic writes that fail
cleanly."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from napari_dip_spectral.files import ImageFile, read_image, tiff_kind, write_atomic, write_tiff


def test_ome_sizes_and_units_per_axis(tmp_path):
    path = tmp_path / "cells.ome.tif"
    data = np.arange(3 * 16 * 20, dtype=np.uint16).reshape(3, 16, 20)
    meta = {"axes": "ZYX", "PhysicalSizeX": 80, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 65}
    meta.update(PhysicalSizeYUnit="nm", PhysicalSizeZ=0.5, PhysicalSizeZUnit="µm")
    tifffile.imwrite(path, data, metadata=meta)
    image = read_image(path)
    assert image.kind == "ome" and image.axes == "ZYX"
    assert image.pixel_size == {"X": 80.0, "Y": 65.0, "Z": 0.5}
    assert image.units == {"X": "nm", "Y": "nm", "Z": "µm"} and image.unit == "nm"
    # OME output from OME input keeps each axis' unit; super-resolution divides X and Y only
    write_tiff(tmp_path / "out.ome.tif", data, "ZYX", image, scale=2)
    out = read_image(tmp_path / "out.ome.tif")
    assert out.pixel_size == {"X": 40.0, "Y": 32.5, "Z": 0.5}
    assert out.units == {"X": "nm", "Y": "nm", "Z": "µm"}


def test_ome_without_units_uses_the_schema_default_micrometre(tmp_path):
    path = tmp_path / "plain.ome.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.float32), metadata={"axes": "YX", "PhysicalSizeX": 0.3})
    image = read_image(path)
    assert image.pixel_size == {"X": 0.3} and image.units == {"X": "µm"}


def test_plain_tiff_centimetre_resolution_becomes_micrometres(tmp_path):
    path, resolution, size_um = tmp_path / "scan.tif", 10_000 / 0.25, 0.25
    tifffile.imwrite(
        path, np.zeros((8, 8), np.uint8), resolution=(resolution, resolution / 2), resolutionunit="CENTIMETER"
    )
    image = read_image(path)
    assert image.kind == "tiff"
    assert image.pixel_size["X"] == pytest.approx(size_um, rel=1e-6)
    assert image.pixel_size["Y"] == pytest.approx(2 * size_um, rel=1e-6)
    assert image.units == {"X": "µm", "Y": "µm"}


def test_plain_tiff_dots_per_inch_is_not_a_pixel_size(tmp_path):
    path = tmp_path / "screenshot.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), resolution=(72, 72), resolutionunit="INCH")
    image = read_image(path)
    assert image.pixel_size == {} and image.units == {}


def test_plain_tiff_without_a_resolution_unit_stays_unitless_and_round_trips(tmp_path):
    path = tmp_path / "none.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), resolution=(4, 4), resolutionunit="NONE")
    image = read_image(path)
    assert image.pixel_size == {"X": 0.25, "Y": 0.25} and image.units == {} and image.unit is None
    write_tiff(tmp_path / "out.tif", image.data, "YX", image)
    out = read_image(tmp_path / "out.tif")
    assert out.pixel_size == {"X": 0.25, "Y": 0.25} and out.units == {}


def test_plain_tiff_output_says_centimetre_so_other_readers_get_micrometres(tmp_path):
    source = ImageFile(np.zeros((2, 8, 8), np.int16), "ZYX", "tiff", {"X": 0.2, "Y": 0.2, "Z": 1.5}, {"X": "µm"})
    source.units.update(Y="µm", Z="µm")
    out = write_tiff(tmp_path / "o.tif", source.data, "ZYX", source)
    with tifffile.TiffFile(out) as tif:
        assert int(tif.pages[0].tags["ResolutionUnit"].value) == 3
        num, den = tif.pages[0].tags["XResolution"].value
        assert num / den == pytest.approx(50_000)
    back = read_image(out)
    assert back.data.dtype == np.int16 and back.axes == "ZYX"
    assert back.pixel_size == pytest.approx({"X": 0.2, "Y": 0.2, "Z": 1.5})  # Z from the JSON description
    assert back.units == {"X": "µm", "Y": "µm", "Z": "µm"}


def test_imagej_keeps_a_z_unit_of_its_own(tmp_path):
    source = ImageFile(np.zeros((2, 8, 8), np.uint16), "ZYX", "imagej", {"X": 0.1, "Y": 0.1, "Z": 300.0})
    source.units.update(X="µm", Y="µm", Z="nm")
    write_tiff(tmp_path / "ij.tif", source.data, "ZYX", source)
    back = read_image(tmp_path / "ij.tif")
    assert back.kind == "imagej" and back.units == {"X": "um", "Y": "um", "Z": "nm"}  # ImageJ spells µm "um"
    assert back.pixel_size == pytest.approx({"X": 0.1, "Y": 0.1, "Z": 300.0})


def test_data_that_ome_or_imagej_cannot_hold_is_written_plain_not_converted(tmp_path):
    assert tiff_kind("a.tif", np.uint16, "ZYX", {"X": "µm"}) == "imagej"
    assert tiff_kind("a.tif", np.float64, "ZYX", {}) == "ome"
    assert tiff_kind("a.tif", np.uint16, "YXZ", {}) == "tiff"  # OME wants Y, X last
    assert tiff_kind("a.tif", np.uint16, "ZYX", {"X": "Å"}) == "ome"  # ImageJ's description is ASCII
    assert tiff_kind("a.OME.TIF", np.uint16, "ZYX", {}) == "ome"
    with pytest.raises(ValueError, match=r"OME-TIFF cannot hold float16.*save it as \.tif"):
        tiff_kind("a.ome.tif", np.float16, "YX", {})
    data = np.linspace(0, 1, 64, dtype=np.float16).reshape(8, 8)
    source = ImageFile(data, "YX", "ome", {"X": 0.1, "Y": 0.1}, {"X": "µm", "Y": "µm"})
    back = read_image(write_tiff(tmp_path / "h.tif", data, "YX", source))
    assert back.data.dtype == np.float16 and np.array_equal(back.data, data)
    assert back.pixel_size == pytest.approx({"X": 0.1, "Y": 0.1}) and back.units == {"X": "µm", "Y": "µm"}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "r.tif"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["r.tif"]


def test_a_missing_or_unusable_folder_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write r\.tif in .*missing"):
        write_atomic(tmp_path / "missing" / "r.tif", lambda tmp: None)
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError, match=r"cannot write r\.tif in .*afile"):
        write_atomic(tmp_path / "afile" / "r.tif", lambda tmp: None)
    if os.name == "posix" and os.geteuid() != 0:  # root writes anywhere: nothing to refuse
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            with pytest.raises(PermissionError, match=r"cannot write r\.tif"):
                write_atomic(locked / "r.tif", lambda tmp: None)
            assert not list(locked.iterdir())
        finally:
            locked.chmod(0o700)
