"""The fit as an object (core/fit.py): stepped by hand it gives what the solver's loop gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.fit import Fit
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import solve

from ..conftest import smooth_image


def noisy_planes(groups: int = 2, size: int = 32) -> torch.Tensor:
    clean = torch.from_numpy(np.stack([smooth_image(size, seed=g) for g in range(groups)]))[:, None]
    noise = 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    return (clean + noise).clamp(0, 1).float()


def by_hand(obs: torch.Tensor, config: SolverConfig):
    fit = Fit(obs, Denoise(), config)
    for t in range(1, config.iterations + 1):
        fit.step()
        if t % config.metrics_every == 0 or t == config.iterations:
            fit.log()
        if fit.done:
            return fit.outcome("auto_stop")
    return fit.outcome("max_iterations")


@pytest.mark.parametrize("rule", ["holdout", "noise"])
def test_fit_stepped_by_hand_is_the_solver(rule):
    config = SolverConfig(
        iterations=150, channels=8, sigma_estimator="power", metrics_every=10, average=0.99,
        init_output="data", stop_rule=rule, settle=20, seed=3, device="cpu",
    )  # fmt: skip
    obs = noisy_planes()
    mine, solver = by_hand(obs, config), solve(obs, Denoise(), config)
    assert np.array_equal(mine.image, solver.image)
    assert mine.stop_iterations == solver.stop_iterations and mine.stop_reason == solver.stop_reason
    assert [e.loss_all for e in mine.history] == [e.loss_all for e in solver.history]
    assert mine.rules == solver.rules == [rule, rule]


def test_fit_keeps_each_planes_result_where_its_rule_fired():
    config = SolverConfig(
        iterations=400, channels=8, sigma_estimator="power", metrics_every=10, average=0.99,
        init_output="data", stop_rule="holdout", holdout_patience=20, auto_stop=True, seed=0, device="cpu",
    )  # fmt: skip
    fit = Fit(noisy_planes(), Denoise(), config)
    kept_at = {}
    while not fit.done and fit.t < config.iterations:
        fit.step()
        if fit.t % config.metrics_every == 0:
            fit.log()
            for g in range(2):
                if g not in kept_at and fit.stopped_at[g] > 0:
                    kept_at[g] = fit.best[g].clone()
    assert fit.done, "both planes' held-out rule should fire within the budget"
    out = fit.outcome("auto_stop")
    for g in range(2):
        # the result returned is the one the rule kept, not the plane's last output
        assert np.array_equal(out.image[g], kept_at[g].numpy())
        assert out.stop_iterations[g] == int(fit.stopped_at[g]) < fit.t


def test_outcome_before_any_step_is_refused():
    fit = Fit(noisy_planes(1), Denoise(), SolverConfig(iterations=5, channels=4, device="cpu"))
    with pytest.raises(RuntimeError, match="no iteration"):
        fit.outcome("cancelled")
