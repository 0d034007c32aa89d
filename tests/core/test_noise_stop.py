"""The noise-level stopping rule and settling after a stop (docs/beyond_the_paper.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.noise import estimate_noise_sigma
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import solve
from napari_dip_spectral.core.stopping import NoiseLevelStopRule

from ..conftest import smooth_image


def _noisy(size=32, sigma=0.08, seed=0):
    clean = smooth_image(size, seed=seed)
    rng = np.random.default_rng(seed)
    return clean, (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_noise_sigma_is_estimated_within_ten_percent(sigma):
    _, noisy = _noisy(128, sigma)
    y = torch.from_numpy(np.stack([noisy, smooth_image(128, seed=3)]))[:, None]
    est = estimate_noise_sigma(y)
    assert est[0].item() == pytest.approx(sigma, rel=0.1)
    assert est[1].item() < 0.2 * sigma  # a clean smooth plane has almost no noise


def test_noise_estimate_refuses_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        estimate_noise_sigma(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="3 x 3"):
        estimate_noise_sigma(torch.zeros(1, 1, 2, 8))


def test_noise_rule_fires_per_plane_at_its_own_level():
    rule = NoiseLevelStopRule(torch.tensor([0.1, 0.01]), fraction=0.85)
    fired = rule.check(torch.tensor([0.0084, 0.0084]))
    assert fired.tolist() == [True, False]
    with pytest.raises(ValueError, match="fraction"):
        NoiseLevelStopRule(torch.tensor([0.1]), fraction=0)


def _config(**changes):
    base = SolverConfig(
        iterations=60,
        channels=8,
        levels=3,
        sigma_estimator="power",
        metrics_every=5,
        average=0.9,
        init_output="data",
        device="cpu",
        seed=0,
    )
    return base.replace(**changes)


def test_the_noise_rule_stops_a_denoising_run_once_the_fit_reaches_the_noise_level():
    _clean, noisy = _noisy(32, 0.1)
    obs = torch.from_numpy(noisy.clip(0, 1))[None, None]
    out = solve(obs, Denoise(), _config(iterations=400, stop_rule="noise", noise_fraction=1.0))
    assert out.stop_reason == "auto_stop" and 0 < out.rule_iterations[0] == out.iterations < 400
    # the data term of the result had reached the estimated noise variance when it stopped
    sigma = estimate_noise_sigma(obs).item()
    assert out.history[-1].fit_all[0] <= sigma**2
    assert out.history[-2].fit_all[0] > sigma**2


def test_settling_freezes_a_fired_plane_while_the_other_plane_keeps_learning():
    # plane 0 is noisy and crosses its noise level early; plane 1 is nearly clean, so its
    # estimated level is tiny and its rule does not fire within the run
    _, noisy = _noisy(32, 0.1)
    calm = smooth_image(32, seed=1)
    obs = torch.from_numpy(np.stack([noisy.clip(0, 1), calm]))[:, None]

    def run(iterations, settle):
        cfg = _config(iterations=iterations, stop_rule="noise", noise_fraction=3.0, auto_stop=False, settle=settle)
        return solve(obs, Denoise(), cfg)

    short, long = run(60, 5), run(120, 5)
    fired = short.rule_iterations
    assert 0 < fired[0] <= 40 and fired[1] == 0 and long.rule_iterations == fired
    assert long.iterations == 120 and long.stop_reason == "max_iterations"
    frozen = np.abs(long.image[0] - short.image[0]).max()
    moving = np.abs(long.image[1] - short.image[1]).max()
    assert frozen < 1e-3 < moving
    # without settling, the fired plane keeps changing as before
    free_short, free_long = run(60, 0), run(120, 0)
    assert np.abs(free_long.image[0] - free_short.image[0]).max() > 1e-3


def test_bad_stop_settings_are_refused():
    for changes, message in [
        (dict(stop_rule="sharpness"), "stop_rule"),
        (dict(noise_sigma=2.0), "noise_sigma"),
        (dict(noise_fraction=-1), "noise_fraction"),
        (dict(settle=-3), "settle"),
    ]:
        with pytest.raises(ValueError, match=message):
            _config(**changes).validate()


def test_the_noise_fraction_grows_with_the_image_side_and_can_be_fixed():
    from napari_dip_spectral.core.config import noise_fraction_for

    config = SolverConfig()
    assert noise_fraction_for(config, 64, 64, 3) == pytest.approx(0.90, abs=2e-3)
    assert noise_fraction_for(config, 64, 64, 1) == pytest.approx(0.85)
    assert noise_fraction_for(config, 128, 128, 3) == pytest.approx(0.97, abs=1e-3)
    assert noise_fraction_for(config, 32, 128, 1) == noise_fraction_for(config, 64, 64, 1)
    assert 0.99 < noise_fraction_for(config, 512, 512, 1) < 1
    assert noise_fraction_for(config, 8, 8, 1) == 0.5  # never below half
    assert noise_fraction_for(config.replace(noise_fraction=0.9), 16, 16) == 0.9
