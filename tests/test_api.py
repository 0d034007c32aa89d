"""End-to-end tests of restore(): every task improves on its degraded input, bad input is
refused with a clear message, runs are reproducible and cancellable, and the caller's arrays
are never modified. Narrow networks and small images keep this fast on a 2-core CPU."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio as psnr

from napari_dip_spectral import degrade, restore
from napari_dip_spectral.core.config import task_defaults

from .conftest import dark_sparse_image, smooth_image

FAST = dict(channels=16, auto_stop=False, device="cpu")


@pytest.mark.parametrize("colour", [False, True])
def test_denoising_improves_psnr(colour):
    clean = smooth_image(32, colour=colour)
    noisy = degrade(clean, "denoise", sigma=0.1, seed=1).image
    result = restore(noisy, "denoise", iterations=150, reference=clean, normalize="none", learning_rate=5e-3, **FAST)
    assert result.image.shape == clean.shape and result.image.dtype == np.float32
    assert psnr(clean, np.clip(result.image, 0, 1), data_range=1) > psnr(clean, noisy, data_range=1) + 2
    assert result.stop_reason == "max_iterations" and result.iterations == 150
    logged = result.history[-1]
    assert logged.iteration == 150 and len(logged.fbc) == 5 and logged.psnr is not None


def test_deblocking_improves_psnr():
    clean = smooth_image(32, seed=3)
    jpeg = degrade(clean, "deblock", quality=5).image
    result = restore(jpeg, "deblock", iterations=150, normalize="none", learning_rate=5e-3, **FAST)
    assert psnr(clean, np.clip(result.image, 0, 1), data_range=1) > psnr(clean, jpeg, data_range=1) + 0.3


def test_inpainting_fills_missing_pixels():
    clean = smooth_image(32, seed=4)
    d = degrade(clean, "inpaint", keep=0.5, seed=2)
    result = restore(d.image, "inpaint", mask=d.mask, iterations=150, normalize="none", learning_rate=5e-3, **FAST)
    missing = ~d.mask
    err_before = np.abs(d.image[missing] - clean[missing]).mean()
    err_after = np.abs(result.image[missing] - clean[missing]).mean()
    assert err_after < 0.5 * err_before


def test_super_resolution_beats_nearest_upsampling_and_has_the_high_resolution_shape():
    clean = smooth_image(64, seed=5)
    d = degrade(clean, "super_resolution", factor=2)
    result = restore(
        d.image, "super_resolution", factor=2, iterations=150, normalize="none", learning_rate=5e-3, **FAST
    )
    assert result.image.shape == (64, 64)
    nearest = np.kron(d.image, np.ones((2, 2)))
    assert psnr(clean, np.clip(result.image, 0, 1), data_range=1) > psnr(clean, nearest, data_range=1)


def test_enhancement_adds_detail():
    import torch

    from napari_dip_spectral.core.stopping import mlv_sharpness

    clean = smooth_image(32, seed=6) + 0.05 * np.random.default_rng(0).random((32, 32)).astype(np.float32)
    result = restore(clean, "enhance", iterations=30, normalize="none", **FAST)
    assert result.image.shape == clean.shape
    assert (result.image >= clean - 1e-6).all()  # one-sided: detail is only added

    def sharp(a):
        return mlv_sharpness(torch.from_numpy(a)[None, None]).item()

    assert sharp(result.image) > sharp(clean)


def test_any_image_size_keeps_every_pixel():
    img = smooth_image(45)[:, :37]
    result = restore(img, "denoise", iterations=3, **FAST)
    assert result.image.shape == (45, 37)


def test_uint16_data_is_normalised_from_its_own_range_and_mapped_back():
    clean = smooth_image(32)
    raw = (200 + clean * 3000).astype(np.uint16)  # a 12-bit camera in a 16-bit container
    result = restore(raw, "denoise", iterations=40, learning_rate=5e-3, **FAST)
    assert result.normalization.low == raw.min() and result.normalization.high == raw.max()
    assert 150 < result.image.mean() < 3500
    assert abs(result.image.mean() - raw.mean()) < 0.05 * raw.mean()


def test_the_paper_profile_divides_by_the_dtype_range_as_the_authors_do():
    clean = smooth_image(32)
    raw = (40 + clean * 150).astype(np.uint8)  # an 8-bit image that does not span 0-255
    paper = restore(raw, "denoise", iterations=2, profile="paper", **FAST)
    assert (paper.normalization.low, paper.normalization.high, paper.normalization.method) == (0, 255, "dtype")
    default = restore(raw, "denoise", iterations=2, **FAST)
    assert (default.normalization.low, default.normalization.high) == (raw.min(), raw.max())
    unit = clean.astype(np.float32) * 0.8 + 0.1  # float data in [0, 1]: taken as it is
    assert restore(unit, "denoise", iterations=2, profile="paper", **FAST).normalization.high == 1
    wide = unit * 5 - 1  # the authors never meet float data outside [0, 1]: its own range
    kept = restore(wide, "denoise", iterations=2, profile="paper", **FAST).normalization
    assert kept.method == "minmax" and np.isclose(kept.low, wide.min()) and np.isclose(kept.high, wide.max())
    counts = (200 + clean * 3000).astype(np.uint16)  # no rule of theirs: its own range, not 1/20 of it
    assert restore(counts, "denoise", iterations=2, profile="paper", **FAST).normalization.high == counts.max()
    explicit = restore(raw, "denoise", iterations=2, profile="paper", normalize="minmax", **FAST)
    assert explicit.normalization.high == raw.max()
    with pytest.raises(ValueError, match="normalize must be one of"):
        restore(raw, "denoise", iterations=2, normalize="range", **FAST)


def test_seeded_cpu_runs_are_bit_for_bit_reproducible_and_seeds_differ():
    noisy = degrade(smooth_image(32), "denoise", seed=0).image
    a = restore(noisy, "denoise", iterations=5, seed=3, **FAST).image
    b = restore(noisy, "denoise", iterations=5, seed=3, **FAST).image
    c = restore(noisy, "denoise", iterations=5, seed=4, **FAST).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_callback_sees_every_iteration_and_can_cancel():
    noisy = degrade(smooth_image(32), "denoise", seed=0).image
    seen = []

    def callback(event):
        seen.append(event.iteration)
        return event.iteration < 4

    result = restore(noisy, "denoise", iterations=50, callback=callback, **FAST)
    assert seen == [1, 2, 3, 4]
    assert result.stop_reason == "cancelled" and not result.finished and result.iterations == 4


def test_automatic_stop_ends_the_run_and_reports_its_iteration():
    noisy = degrade(smooth_image(32), "denoise", seed=0).image
    result = restore(
        noisy,
        "denoise",
        iterations=400,
        channels=8,
        device="cpu",
        stop_window=20,
        stop_epsilon=0.5,
        metrics_every=1,
        stop_rule="ratio",
    )
    assert result.stop_reason == "auto_stop"
    assert 41 <= result.stop_iteration == result.iterations < 400


def test_default_denoising_stops_at_the_noise_level():
    noisy = degrade(smooth_image(32), "denoise", seed=0).image
    result = restore(noisy, "denoise", iterations=400, channels=8, device="cpu", noise_fraction=1.0)
    assert result.stop_reason == "auto_stop" and result.stop_iteration < 400
    paper = restore(noisy, "denoise", iterations=result.stop_iteration, channels=8, device="cpu", profile="paper")
    assert paper.stop_reason == "max_iterations"  # the paper's ratio rule has not fired yet


def test_the_callers_arrays_are_never_modified():
    d = degrade(smooth_image(32), "inpaint", seed=0)
    image, mask = d.image.copy(), d.mask.copy()
    restore(d.image, "inpaint", mask=d.mask, iterations=2, **FAST)
    assert np.array_equal(image, d.image) and np.array_equal(mask, d.mask)


def test_dark_sparse_images_do_not_collapse_to_zero():
    """The paper's configuration drives a dark fluorescence image into sigmoid saturation
    (an all-zero output) within a few iterations; the default head initialisation must not."""
    clean, noisy = dark_sparse_image(64)
    result = restore(noisy, "denoise", iterations=40, auto_stop=False, device="cpu", channels=32)
    unit = (result.image - noisy.min()) / (noisy.max() - noisy.min())
    assert unit.std() > 0.02 and unit.max() > 0.3
    assert np.corrcoef(result.image.ravel(), clean.ravel())[0, 1] > 0.5


BAD_INPUT = [
    (dict(image=np.full((32, 32), np.nan)), "NaN"),
    (dict(image=np.zeros((4, 4))), "too small"),
    (dict(image=np.zeros((32, 32, 4))), "alpha"),
    (dict(image=np.ones((32, 32))), "constant"),
    (dict(task="sharpen"), "task"),
    (dict(task="inpaint"), "mask"),
    (dict(task="inpaint", mask=np.ones((16, 16), bool)), "mask shape"),
    (dict(task="inpaint", mask=np.zeros((32, 32), bool)), "no observed"),
    (dict(task="super_resolution", factor=3), "factor"),
    (dict(lipschitz=-1.0), "lipschitz"),
    (dict(iterations=0), "iterations"),
    (dict(lr_decay=-5), "lr_decay"),
    (dict(device="tpu"), "device"),
    (dict(upsample="bicubic"), "upsample"),
    (dict(sigma_estimator="svd"), "sigma_estimator"),
    (dict(normalize="zscore"), "normalize"),
    (dict(reference=np.zeros((16, 16))), "reference"),
]


@pytest.mark.parametrize("kwargs,message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_is_refused_with_a_message_naming_the_problem(kwargs, message):
    kwargs = dict(kwargs)
    image = kwargs.pop("image", smooth_image(32))
    with pytest.raises(ValueError, match=message):
        restore(image, **{"iterations": 2, **kwargs})


def test_profiles_differ_only_where_documented():
    paper, ours = task_defaults("denoise", "paper"), task_defaults("denoise")
    assert (paper.lipschitz, paper.upsample, paper.sigma_estimator, paper.learning_rate) == (
        1.4,
        "bilinear",
        "exact",
        1e-3,
    )
    assert (paper.average, paper.init_output, paper.lipschitz_by_size, paper.metrics_every) == (
        0.0,
        "default",
        False,
        1,
    )
    assert task_defaults("inpaint", "paper").lipschitz == 1.6
    assert task_defaults("enhance", "paper").iterations == 100
    assert (ours.average, ours.init_output, ours.lipschitz_by_size, ours.sigma_estimator) == (
        0.99,
        "data",
        False,
        "power",
    )
    assert (ours.lipschitz, ours.upsample, ours.learning_rate) == (paper.lipschitz, paper.upsample, paper.learning_rate)
    assert (ours.stop_rule, ours.settle, paper.stop_rule, paper.settle) == ("noise", 50, "ratio", 0)
    assert task_defaults("deblock").stop_rule == "ratio" and task_defaults("deblock").settle == 50


def test_extra_is_a_read_only_view_of_the_typed_fields():
    from napari_dip_spectral.engine.result import EXTRA_KEYS

    r = restore(degrade(smooth_image(32), "denoise", seed=0).image, iterations=1, **FAST)
    assert set(r.extra) == set(EXTRA_KEYS)
    assert all(r.extra[key] is getattr(r, key) for key in EXTRA_KEYS)
    assert r.extra.get("stop_rules", []) == r.stop_rules and r.extra["tile_size"] is None
    with pytest.raises(TypeError):
        r.extra["stop_rules"] = []  # a view: the typed fields are the result


def test_lambda_shrinks_for_small_images_and_is_reported():
    from napari_dip_spectral.core.config import lipschitz_for_size

    assert lipschitz_for_size(1.4, 64) == pytest.approx(1.2)
    assert lipschitz_for_size(1.4, 32) == pytest.approx(1.2)
    assert lipschitz_for_size(1.4, 128) == pytest.approx(1.3)
    assert lipschitz_for_size(1.4, 512) == pytest.approx(1.4)
    noisy = degrade(smooth_image(32), "denoise", seed=0).image
    sized = restore(noisy, iterations=1, lipschitz_by_size=True, **FAST)
    assert sized.lipschitz_used == pytest.approx(1.2)
    assert restore(noisy, iterations=1, **FAST).lipschitz_used == 1.4
    assert restore(noisy, iterations=1, profile="paper", **FAST).lipschitz_used == 1.4
    # a lambda the caller sets is used as given
    assert restore(noisy, iterations=1, lipschitz=2.0, lipschitz_by_size=True, **FAST).lipschitz_used == 2.0


def test_importing_the_package_loads_neither_napari_qt_nor_torch():
    import subprocess
    import sys

    code = (
        "import sys, napari_dip_spectral; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_result_says_which_rule_decided_the_stop():
    """A rule that cannot run is never replaced silently: the noise rule on a noise-free
    image hands over to the ratio rule and the result says so."""
    yy, xx = np.mgrid[:32, :32] / 32
    clean = (0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy)).astype(np.float32)
    noisy = clean + np.random.default_rng(0).normal(0, 0.1, clean.shape).astype(np.float32)
    options = dict(FAST, iterations=1, anscombe=False)
    assert restore(noisy, **options).stop_rules == ["noise"]
    handed_over = restore(clean, **options)
    assert handed_over.plane_stop_rules == ["ratio (no measurable noise)"]
    assert restore(noisy, stop_rule="holdout", **options).stop_rules == ["holdout"]
    assert restore(noisy, profile="paper", **options).stop_rules == ["ratio"]


def test_an_estimate_is_in_the_runs_own_units():
    from napari_dip_spectral import RestoreJob

    noisy = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    job = RestoreJob(noisy, iterations=300, **{k: v for k, v in FAST.items() if k != "auto_stop"})
    estimate = job.estimate(probe=4)
    assert estimate.iterations == 300 and estimate.batches == 1 and estimate.seconds_per_iteration > 0
    assert estimate.max_seconds == pytest.approx(300 * estimate.seconds_per_iteration)
    assert "for 300 iterations" in estimate.text() and "automatic stop" in estimate.text()
    stacked = RestoreJob(np.stack([noisy] * 3), axes="ZYX", batch_size=1, stack_prior="planes", iterations=300, **FAST)
    assert stacked.estimate(probe=4).batches == 3


def test_the_result_names_the_precision_the_fit_used(monkeypatch):
    from napari_dip_spectral.core import devices

    image = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    for native, used in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(devices, "native_bf16", lambda device, native=native: native)
        result = restore(image, iterations=2, channels=64, device="cpu", anscombe=False)
        assert result.config.precision == used  # "auto" resolved by the fit, not by the caller
    small = restore(image[:32, :32], iterations=2, channels=64, device="cpu", anscombe=False)
    assert small.config.precision == "fp32"  # too small to gain from bf16, wherever it runs
