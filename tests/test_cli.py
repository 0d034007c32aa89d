"""The dip-spectral command line: metadata kept, inputs untouched, run records, exit codes."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_dip_spectral.cli import main
from napari_dip_spectral.files import read_image
from napari_dip_spectral.presets import make_preset

FAST = ["--iterations", "5", "--channels", "8"]


@pytest.fixture
def imagej_stack(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4001, size=(2, 32, 32)).astype(np.uint16)
    path = tmp_path / "in" / "stack.tif"
    path.parent.mkdir()
    tifffile.imwrite(
        path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"}
    )
    return path, data


def test_imagej_stack_keeps_metadata_and_input(tmp_path, imagej_stack):
    path, data = imagej_stack
    raw, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    out_dir = tmp_path / "out"
    assert main(["denoise", str(path), "-o", str(out_dir), *FAST]) == 0
    assert path.read_bytes() == raw and os.stat(path).st_mtime_ns == mtime
    out = read_image(out_dir / "stack_denoise.tif")
    assert out.axes == "ZYX" and out.kind == "imagej" and out.unit == "um"
    assert out.pixel_size["X"] == pytest.approx(0.25) and out.pixel_size["Z"] == pytest.approx(1.5)
    assert out.data.dtype == np.uint16 and out.data.shape == data.shape
    record = json.loads((out_dir / "stack_denoise.json").read_text())
    assert record["seed"] == 0 and record["axes"] == "ZYX" and "torch" in record["versions"]
    assert record["stop_reason"] in ("auto_stop", "max_iterations") and record["history"]
    assert len(record["planes"]) == 2 and "fbc" in record["history"][0]
    assert (out_dir / "stack_denoise_fbc.png").exists()
    assert (out_dir / "stack_denoise_stopping.png").exists()
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temporary files


def test_ome_tiff_round_trip(tmp_path):
    data = np.random.default_rng(1).random((2, 32, 32)).astype(np.float32)
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3})
    assert main(["denoise", str(path), "-o", str(tmp_path / "o"), *FAST]) == 0
    out = read_image(tmp_path / "o" / "cells_denoise.tif")
    assert out.kind == "ome" and out.axes == "TYX" and out.pixel_size["X"] == pytest.approx(0.3)
    assert out.data.dtype == np.float32


def test_bad_file_skipped_and_png_input(tmp_path):
    from PIL import Image

    good = tmp_path / "grey.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32)).astype(np.uint8)).save(good)
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff")
    code = main(["denoise", str(bad), str(good), "-o", str(tmp_path / "o"), *FAST])
    assert code == 1
    out = read_image(tmp_path / "o" / "grey_denoise.tif")
    assert out.data.dtype == np.uint8 and out.data.shape == (32, 32)
    assert not (tmp_path / "o" / "broken_denoise.tif").exists()


def test_refuses_to_overwrite_an_input(tmp_path):
    data = np.random.default_rng(3).random((32, 32)).astype(np.float32)
    path = tmp_path / "a_denoise.tif"
    tifffile.imwrite(path, data)
    other = tmp_path / "a.tif"
    tifffile.imwrite(other, data)
    raw = path.read_bytes()
    assert main(["denoise", str(other), str(path), "-o", str(tmp_path), *FAST]) == 1
    assert path.read_bytes() == raw


def test_usage_errors(tmp_path, capsys):
    assert main(["denoise"]) == 2
    assert main(["denoise", "x.tif"]) == 2  # no -o
    assert main(["sharpen", "x.tif", "-o", str(tmp_path)]) == 2
    assert main(["inpaint", "x.tif", "-o", str(tmp_path)]) == 2  # no --mask
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--axes",
        "--mask",
        "--factor",
        "--iterations",
        "--device",
        "--seed",
        "--scheduler",
        "--lipschitz",
        "--upsample",
        "--channels",
        "--profile",
        "--no-auto-stop",
        "--normalize",
        "--tile-size",
        "--batch-size",
        "--anscombe",
    ):
        assert option in text


def test_demo_writes_everything(tmp_path, capsys):
    from napari_dip_spectral.demo import main as demo

    assert demo(["-o", str(tmp_path), "--iterations", "5", "--channels", "8"]) == 0
    assert "PSNR noisy" in capsys.readouterr().out
    for name in (
        "demo_restored.tif",
        "demo_restored.png",
        "demo_noisy.png",
        "demo_fbc.png",
        "demo_stopping.png",
        "demo_record.json",
    ):
        assert (tmp_path / name).exists()
    record = json.loads((tmp_path / "demo_record.json").read_text())
    assert record["psnr_noisy"] > 0 and record["iterations"] == 5


def test_noise_model_estimated_by_default_and_recorded(tmp_path, capsys):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    scene = gaussian_filter(rng.random((96, 96)), 3)
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    counts = 100 + 20 * rng.poisson(30 * scene) + rng.normal(0, 5, scene.shape)
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, np.round(counts).astype(np.uint16))
    assert main(["denoise", str(path), "-o", str(tmp_path / "auto"), *FAST]) == 0
    record = json.loads((tmp_path / "auto" / "counts_denoise.json").read_text())
    noise = record["noise_model"]
    assert noise["source"] == "estimated" and noise["estimate"]["signal_dependent"]
    assert noise["transform"]["gain"] == pytest.approx(20, rel=0.3)
    assert "Anscombe transform used" in capsys.readouterr().err
    assert record["nlm_share"] == 0.3  # a share of non-local means by default
    assert main(["denoise", str(path), "-o", str(tmp_path / "off"), "--no-anscombe", *FAST]) == 0
    off = json.loads((tmp_path / "off" / "counts_denoise.json").read_text())
    assert off["noise_model"] is None
    assert main(["denoise", str(path), "-o", str(tmp_path / "alone"), "--nlm-share", "0", *FAST]) == 0
    alone = json.loads((tmp_path / "alone" / "counts_denoise.json").read_text())
    assert alone["nlm_share"] == 0 and alone["options"]["nlm_share"] == 0
    assert (
        main(
            [
                "denoise",
                str(path),
                "-o",
                str(tmp_path / "given"),
                "--anscombe",
                "--anscombe-gain",
                "20",
                "--anscombe-offset",
                "100",
                *FAST,
            ]
        )
        == 0
    )
    given = json.loads((tmp_path / "given" / "counts_denoise.json").read_text())["noise_model"]
    assert given["source"] == "given" and given["transform"]["gain"] == 20
    assert (
        main(["denoise", str(path), "-o", str(tmp_path / "x"), "--anscombe", "--no-anscombe"]) == 2
    )  # one or the other


def test_outputs_get_the_usual_file_mode_not_the_temporary_files(tmp_path):
    from napari_dip_spectral.files import write_atomic

    old = os.umask(0o022)
    try:
        out = write_atomic(tmp_path / "r.json", lambda tmp: Path(tmp).write_text("{}"))
        assert (out.stat().st_mode & 0o777) == 0o644
        os.umask(0o027)
        out = write_atomic(tmp_path / "s.json", lambda tmp: Path(tmp).write_text("{}"))
        assert (out.stat().st_mode & 0o777) == 0o640
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_estimate_prints_the_expected_time_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.random.default_rng(0).random((24, 24)).astype(np.float32))
    out = tmp_path / "out"
    code = main(["denoise", str(path), "-o", str(out), "--estimate", "--channels", "8", "--iterations", "50"])
    assert code == 0
    err = capsys.readouterr().err
    assert "in.tif: about" in err and "for 50 iterations" in err
    assert list(out.iterdir()) == []


def test_a_run_reports_its_iterations_without_tqdm(tmp_path, capsys):
    from napari_dip_spectral.cli import IterationReport

    report = IterationReport("x.tif", every=0.0)
    from napari_dip_spectral.core.solver import ProgressEvent
    from napari_dip_spectral.engine.events import RunEvent

    report(RunEvent(0, 2, (2, 3), 6, ProgressEvent(iteration=7, total=100)))
    report(RunEvent(0, 1, (0,), 1, ProgressEvent(iteration=8, total=100)))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("  x.tif: iteration 7 / 100, planes 3-4 of 6 (")
    assert lines[1].startswith("  x.tif: iteration 8 / 100 (")
    quiet = IterationReport("y.tif", every=3600)
    quiet(RunEvent(0, 1, (0,), 1, ProgressEvent(iteration=1, total=5)))
    assert capsys.readouterr().err == ""  # at most once per period


def test_the_progress_line_says_at_most_how_long_is_left(tmp_path, capsys, monkeypatch):
    from napari_dip_spectral import cli

    report = cli.IterationReport
    # a line for every iteration: a tiny run ends long before the usual one-second period
    monkeypatch.setattr(cli, "IterationReport", lambda name, **kw: report(name, every=0.0, **kw))
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.random.default_rng(0).random((3, 16, 16)).astype(np.float32), photometric="minisblack")
    code = main(["denoise", str(path), "-o", str(tmp_path / "out"), "--axes", "ZYX", "--iterations", "20"] + FAST[2:])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "in.tif: iteration" in line]
    assert lines and "left" not in lines[0]  # nothing before the rate is measured
    assert any(", at most " in line and line.endswith(" left)") for line in lines)


def test_the_remaining_time_covers_the_planes_not_started():
    import io

    from napari_dip_spectral.cli import IterationReport
    from napari_dip_spectral.core.solver import ProgressEvent
    from napari_dip_spectral.engine.events import RunEvent

    now = [0.0]
    stream = io.StringIO()
    report = IterationReport("x.tif", every=5.0, stream=stream, auto_stop=False, clock=lambda: now[0])
    for i in range(1, 51):
        now[0] += 0.5
        report(RunEvent(0, 3, (0, 1), 6, ProgressEvent(iteration=i, total=100), groups=2))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5  # once per period of the injected clock
    # 50 iterations of this batch and two whole batches of 100 at 0.5 s each
    assert lines[-1] == "  x.tif: iteration 50 / 100, planes 1-2 of 6 (25 s, about 2 min 10 s left)"


def test_the_stop_rule_is_chosen_by_flag_or_preset(tmp_path):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    scene = gaussian_filter(rng.random((96, 96)), 3)
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    counts = np.round(100 + 20 * rng.poisson(30 * scene) + rng.normal(0, 5, scene.shape)).astype(np.uint16)
    path = tmp_path / "cam.tif"
    tifffile.imwrite(path, counts)
    assert main(["denoise", str(path), "-o", str(tmp_path / "flag"), "--stop-rule", "sure", *FAST]) == 0
    record = json.loads((tmp_path / "flag" / "cam_denoise.json").read_text())
    assert record["stop_rules"] == ["sure"] and record["config"]["stop_rule"] == "sure"
    preset = tmp_path / "sure.json"
    settings = {"stop_rule": "sure", "iterations": 5, "channels": 8}
    preset.write_text(json.dumps(make_preset("denoise", settings)))
    assert main(["denoise", str(path), "-o", str(tmp_path / "preset"), "--config", str(preset)]) == 0
    record = json.loads((tmp_path / "preset" / "cam_denoise.json").read_text())
    assert record["stop_rules"] == ["sure"]
    assert main(["denoise", str(path), "-o", str(tmp_path / "default"), *FAST]) == 0
    record = json.loads((tmp_path / "default" / "cam_denoise.json").read_text())
    assert record["stop_rules"] == ["holdout"]  # photon counts: held-out pixels unless chosen


def test_precision_is_chosen_by_flag_or_preset_and_recorded(tmp_path):
    import torch

    from napari_dip_spectral.core.devices import resolve_precision

    path = tmp_path / "x.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((24, 24)) * 200).astype(np.uint8))
    assert main(["denoise", str(path), "-o", str(tmp_path / "flag"), "--precision", "bf16", *FAST]) == 0
    record = json.loads((tmp_path / "flag" / "x_denoise.json").read_text())
    assert record["config"]["precision"] == "bf16"
    preset = tmp_path / "bf16.json"
    preset.write_text(json.dumps(make_preset("denoise", {"precision": "bf16", "iterations": 5, "channels": 8})))
    assert main(["denoise", str(path), "-o", str(tmp_path / "preset"), "--config", str(preset)]) == 0
    assert json.loads((tmp_path / "preset" / "x_denoise.json").read_text())["config"]["precision"] == "bf16"
    assert main(["denoise", str(path), "-o", str(tmp_path / "default"), *FAST]) == 0
    # the default profile's "auto" is fp32 for a fit this small, on any CPU; the record names it
    assert resolve_precision("auto", torch.device("cpu"), 8, 24 * 24) == "fp32"
    assert json.loads((tmp_path / "default" / "x_denoise.json").read_text())["config"]["precision"] == "fp32"
    bad = tmp_path / "fp16.json"
    bad.write_text(preset.read_text().replace('"bf16"', '"fp16"'))  # a preset edited by hand
    assert main(["denoise", str(path), "-o", str(tmp_path / "bad"), "--config", str(bad)]) == 2


def test_ensemble_is_chosen_by_flag_or_preset_and_recorded(tmp_path):
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((24, 24)) * 200).astype(np.uint8))
    assert main(["denoise", str(path), "-o", str(tmp_path / "flag"), "--ensemble", "3", *FAST]) == 0
    assert json.loads((tmp_path / "flag" / "x_denoise.json").read_text())["config"]["ensemble"] == 3
    preset = tmp_path / "ens.json"
    preset.write_text(json.dumps(make_preset("denoise", {"ensemble": 2, "iterations": 5, "channels": 8})))
    assert main(["denoise", str(path), "-o", str(tmp_path / "preset"), "--config", str(preset)]) == 0
    assert json.loads((tmp_path / "preset" / "x_denoise.json").read_text())["config"]["ensemble"] == 2
    assert main(["denoise", str(path), "-o", str(tmp_path / "default"), *FAST]) == 0
    assert json.loads((tmp_path / "default" / "x_denoise.json").read_text())["config"]["ensemble"] == 1
    assert main(["denoise", str(path), "-o", str(tmp_path / "bad"), "--ensemble", "0", *FAST]) == 2


def test_a_stack_gets_the_wiener_pass_in_3d_unless_turned_off(tmp_path, capsys):
    rng = np.random.default_rng(5)
    from scipy.ndimage import gaussian_filter

    scene = gaussian_filter(rng.random((5, 40, 40)), (1, 3, 3))
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    counts = 100 + 20 * rng.poisson(30 * scene) + rng.normal(0, 5, scene.shape)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.round(counts).astype(np.uint16))
    assert main(["denoise", str(path), "-o", str(tmp_path / "on"), "--axes", "ZYX", *FAST]) == 0
    record = json.loads((tmp_path / "on" / "stack_denoise.json").read_text())
    assert record["wiener"] is True
    assert "Wiener pass (3-D over the stack)" in capsys.readouterr().err
    off = ["denoise", str(path), "-o", str(tmp_path / "off"), "--axes", "ZYX", "--no-wiener", *FAST]
    assert main(off) == 0
    record = json.loads((tmp_path / "off" / "stack_denoise.json").read_text())
    assert record["wiener"] is False and record["options"]["wiener"] is False


def test_hot_pixels_are_replaced_reported_and_can_be_kept(tmp_path, capsys):
    rng = np.random.default_rng(5)
    from scipy.ndimage import gaussian_filter

    scene = gaussian_filter(rng.random((64, 64)), 2)
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    counts = np.round(100 + 20 * rng.poisson(30 * scene) + rng.normal(0, 5, scene.shape)).astype(np.uint16)
    counts[[5, 30, 50], [40, 12, 33]] = 65535
    path = tmp_path / "hot.tif"
    tifffile.imwrite(path, counts)
    assert main(["denoise", str(path), "-o", str(tmp_path / "on"), *FAST]) == 0
    assert json.loads((tmp_path / "on" / "hot_denoise.json").read_text())["hot_pixels"] == 3
    assert "3 hot pixels replaced" in capsys.readouterr().err
    assert main(["denoise", str(path), "-o", str(tmp_path / "off"), "--no-hot-pixels", *FAST]) == 0
    record = json.loads((tmp_path / "off" / "hot_denoise.json").read_text())
    assert record["hot_pixels"] == 0 and record["options"]["hot_pixels"] is False
    # kept, they are saturated pixels: out of the fit, and as recorded in the result
    assert record["saturated"] == 3
    assert "3 saturated pixels kept as recorded" in capsys.readouterr().err
    kept = tifffile.imread(tmp_path / "off" / "hot_denoise.tif")
    assert (kept[[5, 30, 50], [40, 12, 33]] == 65535).all()
    assert kept[counts != 65535].max() < 0.5 * 65535
    np.testing.assert_array_equal(tifffile.imread(path), counts)  # the file read is never changed
