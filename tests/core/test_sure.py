"""The SURE stop rule (core/sure.py): the estimate, the twin fit and the job's noise sigma."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.driving import drive
from napari_dip_spectral.core.fitting import fit
from napari_dip_spectral.core.operators import Deblock, Denoise, Inpaint
from napari_dip_spectral.core.sure import sure_estimate
from napari_dip_spectral.engine.normalization import Normalization
from napari_dip_spectral.noise.noise_fit import stabilised_sigma

from ..conftest import smooth_image

SIGMA = 0.15


def _box(a: np.ndarray) -> np.ndarray:
    """A 3 x 3 mean with wrap-around: a linear smoother with divergence 1/9 per pixel."""
    return sum(np.roll(np.roll(a, dy, -2), dx, -1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9


def test_sure_estimate_matches_the_true_error():
    rng = np.random.default_rng(0)
    clean = np.stack([smooth_image(128, seed=s) for s in (0, 1)])[:, None].astype(np.float64)
    y = clean + rng.normal(0, SIGMA, clean.shape)
    probe = rng.standard_normal(clean.shape)
    sigma, eps = np.full(2, SIGMA), np.full(2, 0.02 * SIGMA)
    # the data itself: error sigma^2, divergence 1
    identity = sure_estimate(y, y, y + eps[0] * probe, probe, sigma, eps)
    assert identity == pytest.approx([SIGMA**2] * 2, rel=0.05)
    # a smoother: SURE follows its true error, which is far from the data's
    x, twin = _box(y), _box(y + eps[0] * probe)
    true = ((x - clean) ** 2).mean(axis=(1, 2, 3))
    estimate = sure_estimate(y, x, twin, probe, sigma, eps)
    # SURE is unbiased; its spread from the noise is about sigma^2 sqrt(2 / n)
    assert np.abs(estimate - true).max() < 4 * SIGMA**2 * np.sqrt(2 / clean[0].size)
    assert (true < 0.3 * SIGMA**2).all()


def _config(**changes) -> SolverConfig:
    base = SolverConfig(
        iterations=600,
        channels=16,
        levels=3,
        learning_rate=1e-2,
        stop_rule="sure",
        holdout_patience=60,
        metrics_every=10,
        average=0.9,
        init_output="data",
        device="cpu",
        noise_sigma=SIGMA,
    )
    return base.replace(**changes)


def _noisy(size=48):
    rng = np.random.default_rng(0)
    clean = smooth_image(size)
    return clean, torch.from_numpy(clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32))[None, None]


def test_solver_stops_at_the_lowest_estimated_error_and_is_reproducible():
    clean, y = _noisy()
    out = drive(fit(y, Denoise(), _config()), None)
    assert out.stop_reason == "auto_stop" and out.iterations < 600
    assert out.rules == ["sure"] and out.rule_iterations == out.stop_iterations
    assert out.iterations - out.stop_iterations[0] >= 60
    error = float(((out.image[0, 0] - clean) ** 2).mean())
    assert error < 0.5 * SIGMA**2  # far better than the noisy input
    again = drive(fit(y, Denoise(), _config()), None)
    assert np.array_equal(again.image, out.image) and again.stop_iterations == out.stop_iterations


def test_sure_fit_reports_progress_and_can_be_cancelled():
    _, y = _noisy(32)
    seen = []

    def callback(event):
        seen.append(event)
        return event.iteration < 25

    out = drive(fit(y, Denoise(), _config(preview_every=20)), callback)
    assert out.stop_reason == "cancelled" and out.iterations == 25
    assert [e.iteration for e in seen] == list(range(1, 26))
    assert [e.iteration for e in seen if e.preview is not None] == [20]  # the caller's preview rate
    assert sum(e.log is not None for e in seen) == 2  # metric iterations 10 and 20


def test_without_auto_stop_the_rule_only_reports():
    _, y = _noisy(32)
    out = drive(fit(y, Denoise(), _config(iterations=150, auto_stop=False, holdout_patience=20)), None)
    assert out.stop_reason == "max_iterations" and out.stop_iterations == [150]
    assert 0 < out.rule_iterations[0] < 150


@pytest.mark.parametrize("operator", [Deblock(), Inpaint(torch.ones(1, 1, 16, 16))])
def test_sure_is_for_denoising_only(operator):
    with pytest.raises(ValueError, match="SURE stop rule is for denoising"):
        next(fit(torch.rand(1, 1, 16, 16), operator, _config()))


def test_the_transform_gives_the_noise_sigma():
    model = object()  # any model: the transform makes the noise sigma 1
    planes = [Normalization(2.0, 42.0, "minmax"), Normalization(2.0, 42.0, "minmax")]
    sure = SolverConfig(stop_rule="sure")
    assert stabilised_sigma(sure, model, planes).noise_sigma == pytest.approx(1 / 40)
    assert stabilised_sigma(sure, None, planes).noise_sigma is None  # no transform: estimated
    assert stabilised_sigma(SolverConfig(stop_rule="holdout"), model, planes).noise_sigma is None
    given = sure.replace(noise_sigma=0.1)
    assert stabilised_sigma(given, model, planes).noise_sigma == 0.1
    mixed = [planes[0], Normalization(0.0, 10.0, "minmax")]  # planes of their own ranges
    assert stabilised_sigma(sure, model, mixed).noise_sigma is None
