"""The plugin's writer (File > Save Selected Layer): pixel size, units, axis order and dtype
kept in the TIFF, the run record beside it as JSON; nothing half-written on failure."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tifffile
from napari.layers import Image

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.files import read_image
from napari_dip_spectral.widgets.writer import write_image_layer

PLUGIN = "napari-dip-spectral"


def result_layer(data, **kwargs) -> Image:
    """A result layer as the widgets leave it: geometry of the input and the run's summary."""
    summary = {
        "task": "denoise",
        "finished": True,
        "stop_reason": "auto_stop",
        "iterations": 40,
        "stop_iteration": 31,
        "device": "cpu",
        "source": "blobs",
        "plane": (1,),
        "config": dataclasses.asdict(SolverConfig(seed=7)),
        "noise_model": {"source": "estimated", "estimate": {"gain": np.float32(0.5), "offset": float("nan")}},
    }
    return Image(data, name="blobs [denoise]", metadata={"dip_spectral": summary}, **kwargs)


def save(layer: Image, path) -> list[str]:
    data, meta, _ = layer.as_layer_data_tuple()
    return write_image_layer(str(path), data, meta)


def test_result_saved_as_tif_keeps_size_units_axes_dtype_and_run(tmp_path):
    data = np.arange(3 * 16 * 20, dtype=np.uint16).reshape(3, 16, 20)
    layer = result_layer(data, scale=(0.5, 65, 80), units=("um", "nm", "nm"), axis_labels=("z", "y", "x"))
    written = save(layer, tmp_path / "blobs.tif")
    assert written == [str(tmp_path / "blobs.tif"), str(tmp_path / "blobs.json")]
    back = read_image(tmp_path / "blobs.tif")
    assert back.kind == "imagej" and back.axes == "ZYX"  # Fiji reads it natively
    assert back.data.dtype == np.uint16 and np.array_equal(back.data, data)
    assert back.pixel_size == pytest.approx({"X": 80.0, "Y": 65.0, "Z": 0.5})
    assert back.units == {"X": "nm", "Y": "nm", "Z": "um"}
    record = json.loads((tmp_path / "blobs.json").read_text())
    assert record["image"] == "blobs.tif" and record["axes"] == "ZYX" and record["dtype"] == "uint16"
    assert record["pixel_size"] == {"Z": 0.5, "Y": 65.0, "X": 80.0}
    assert record["units"] == {"Z": "µm", "Y": "nm", "X": "nm"}
    run = record["run"]
    assert run["config"]["seed"] == 7 and run["stop_iteration"] == 31 and run["plane"] == [1]
    assert run["noise_model"]["estimate"] == {"gain": 0.5, "offset": None}  # JSON has no NaN
    assert "torch" in record["versions"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs.json", "blobs.tif"]


def test_float32_stack_as_ome_tif_keeps_each_axis_unit(tmp_path):
    data = np.random.default_rng(0).random((2, 3, 8, 10)).astype(np.float32)
    layer = result_layer(
        data, scale=(60.0, 0.4, 0.1, 0.1), units=("s", "um", "nm", "nm"), axis_labels=("t", "z", "y", "x")
    )
    written = save(layer, tmp_path / "cells.ome.tif")
    assert written[1] == str(tmp_path / "cells.json")
    back = read_image(tmp_path / "cells.ome.tif")
    assert back.kind == "ome" and back.axes == "TZYX" and back.data.dtype == np.float32
    assert back.pixel_size == {"X": 0.1, "Y": 0.1, "Z": 0.4}
    assert back.units == {"X": "nm", "Y": "nm", "Z": "µm"}
    np.testing.assert_array_equal(back.data, data)


def test_units_napari_does_not_know_come_from_metadata_or_are_converted(tmp_path):
    plain = Image(np.zeros((8, 8), np.uint8), scale=(2.0, 2.0), metadata={"unit": "nm"})
    assert save(plain, tmp_path / "a.tif") == [str(tmp_path / "a.tif")]  # no run: no record
    back = read_image(tmp_path / "a.tif")
    assert back.pixel_size == pytest.approx({"X": 2.0, "Y": 2.0}) and back.units == {"X": "nm", "Y": "nm"}
    # a length OME has no symbol for (pint's "micron" is "µ") is written in micrometres
    microns = Image(np.zeros((8, 8), np.uint16), scale=(0.2, 0.1), units=("micron", "micron"))
    save(microns, tmp_path / "b.ome.tif")
    back = read_image(tmp_path / "b.ome.tif")
    assert back.pixel_size == pytest.approx({"X": 0.1, "Y": 0.2}) and back.units == {"X": "µm", "Y": "µm"}
    # pixels only: the scale is kept, with no unit claimed
    bare = Image(np.zeros((8, 8), np.float32), scale=(3.0, 3.0))
    save(bare, tmp_path / "c.tif")
    back = read_image(tmp_path / "c.tif")
    assert back.pixel_size == pytest.approx({"X": 3.0, "Y": 3.0}) and back.units == {}


def test_rgb_and_unlabelled_layers_get_their_axes(tmp_path):
    rgb = Image(np.zeros((8, 10, 3), np.uint8), rgb=True, scale=(0.5, 0.5), units=("um", "um"))
    save(rgb, tmp_path / "rgb.tif")
    back = read_image(tmp_path / "rgb.tif")
    assert back.axes == "YXS" and back.data.shape == (8, 10, 3) and back.pixel_size["X"] == pytest.approx(0.5)
    # default labels ("-3", ...): the axes the run used, from its record
    stack = result_layer(np.zeros((4, 8, 8), np.uint16), scale=(1.0, 0.2, 0.2), units=("um",) * 3)
    stack.metadata["dip_spectral"]["axes"] = "TYX"
    save(stack, tmp_path / "t.tif")
    assert read_image(tmp_path / "t.tif").axes == "TYX"


def test_float16_is_kept_as_float16_or_refused_for_ome(tmp_path):
    data = np.linspace(0, 1, 64, dtype=np.float16).reshape(8, 8)
    layer = result_layer(data, scale=(0.1, 0.1), units=("um", "um"), axis_labels=("y", "x"))
    save(layer, tmp_path / "h.tif")
    back = read_image(tmp_path / "h.tif")
    assert back.data.dtype == np.float16 and back.pixel_size == pytest.approx({"X": 0.1, "Y": 0.1})
    with pytest.raises(ValueError, match="OME-TIFF cannot hold float16"):
        save(layer, tmp_path / "h.ome.tif")
    assert not (tmp_path / "h.ome.tif").exists()


def test_failures_say_why_and_leave_no_file(tmp_path, monkeypatch):
    layer = result_layer(np.ones((8, 8), np.uint16), axis_labels=("y", "x"))
    with pytest.raises(FileNotFoundError, match=r"cannot write r\.tif in .*missing"):
        save(layer, tmp_path / "missing" / "r.tif")
    (tmp_path / "r.tif").write_bytes(b"old")

    def fail_midway(path, data, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"II*\x00")
        raise OSError("No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", fail_midway)
    with pytest.raises(OSError, match="No space left"):
        save(layer, tmp_path / "r.tif")
    # the old file untouched, no temporary file, and no run record for an image never written
    assert [p.name for p in tmp_path.iterdir()] == ["r.tif"] and (tmp_path / "r.tif").read_bytes() == b"old"


@pytest.mark.gui
def test_a_run_result_saved_through_napari_keeps_everything(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    stack = rng.integers(100, 4000, size=(2, 24, 24)).astype(np.uint16)
    scale, units = (1.5, 0.25, 0.2), ("um", "nm", "nm")
    viewer.add_image(stack, name="blobs", scale=scale, units=units, axis_labels=("z", "y", "x"))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    widget.form.iterations.value, widget.form.channels.value, widget.form.auto_stop.value = 4, 8, False
    widget.image.value = viewer.layers["blobs"]
    widget.run(wait=True, timeout=120)
    result = viewer.layers["blobs [denoise] plane 0"]
    viewer.add_image(np.zeros((4, 4)), name="other")
    viewer.layers.selection = {result}
    # File > Save Selected Layer with this plugin chosen
    written = viewer.layers.save(str(tmp_path / "saved.tif"), selected=True, plugin=PLUGIN)
    assert sorted(written) == sorted([str(tmp_path / "saved.tif"), str(tmp_path / "saved.json")])
    back = read_image(tmp_path / "saved.tif")
    # TIFF readers drop the plane's length-1 Z axis; its size stays in the file, its shape in the record
    assert back.axes == "YX" and back.data.dtype == np.uint16 and back.data.shape == (24, 24)
    assert back.pixel_size == pytest.approx({"X": 0.2, "Y": 0.25, "Z": 1.5})
    assert back.units == {"X": "nm", "Y": "nm", "Z": "um"}
    np.testing.assert_array_equal(back.data, result.data[0])
    record = json.loads((tmp_path / "saved.json").read_text())
    assert record["axes"] == "ZYX" and record["shape"] == [1, 24, 24]
    assert record["run"]["task"] == "denoise" and record["run"]["iterations"] == 4
    assert record["run"]["config"]["channels"] == 8 and record["translate"] == [0.0, 0.0, 0.0]
    assert record["units"] == {"Z": "µm", "Y": "nm", "X": "nm"}
