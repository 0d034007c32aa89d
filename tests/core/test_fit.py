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


def test_bf16_changes_the_arithmetic_and_still_denoises():
    config = SolverConfig(
        iterations=120, channels=8, sigma_estimator="power", metrics_every=10, average=0.99,
        init_output="data", auto_stop=False, seed=0, device="cpu",
    )  # fmt: skip
    obs = noisy_planes(1)
    clean = torch.from_numpy(smooth_image(32, seed=0))[None, None].float()
    full = Fit(obs, Denoise(), config, clean)
    half = Fit(obs, Denoise(), config.replace(precision="bf16"), clean)
    for fit in (full, half):
        for _ in range(config.iterations):
            fit.step()
        fit.log()
    assert half.x.dtype == torch.float32  # the output is taken back to fp32 for the loss
    assert not torch.equal(half.x, full.x), "bf16 should change the arithmetic"
    noisy_db = 10 * np.log10(1 / float(((obs - clean) ** 2).mean()))
    for fit in (full, half):  # both denoise (a tiny network's trajectories part early on)
        assert fit.history[-1].psnr > noisy_db + 3


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision must be one of"):
        SolverConfig(precision="fp16").validate()


def test_bf16_fits_in_two_threads_at_once_give_each_its_own_result():
    import threading

    config = SolverConfig(
        iterations=30, channels=8, sigma_estimator="power", metrics_every=10, average=0.99,
        init_output="data", auto_stop=False, precision="bf16", seed=0, device="cpu",
    )  # fmt: skip
    data = [noisy_planes(1), noisy_planes(1, size=48)]
    alone = [solve(obs, Denoise(), config).image for obs in data]
    together, errors = [None, None], []

    def run(k):
        try:
            together[k] = solve(data[k], Denoise(), config).image
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for k in range(2):
        assert np.array_equal(together[k], alone[k])


def test_auto_precision_is_bf16_only_for_large_fits_on_a_cpu_that_computes_in_bf16(monkeypatch):
    from napari_dip_spectral.core import devices

    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(devices, "native_bf16", lambda device, native=native: native)
        assert devices.resolve_precision("auto", cpu, 128, 256 * 256) == ("bf16" if native else "fp32")
        assert devices.resolve_precision("auto", cpu, 32, 256 * 256) == "fp32"  # too narrow to gain
        assert devices.resolve_precision("auto", cpu, 128, 64 * 64) == "fp32"  # too small to gain
        assert devices.resolve_precision("fp32", cpu, 128, 256 * 256) == "fp32"  # a choice is kept
        assert devices.resolve_precision("bf16", cpu, 8, 8) == "bf16"
    monkeypatch.undo()
    assert not devices.native_bf16(torch.device("meta"))  # GPUs and others: not until measured
    # the fit records what it ran with
    fit = Fit(noisy_planes(1), Denoise(), SolverConfig(iterations=2, channels=8, precision="auto", device="cpu"))
    assert fit.config.precision == "fp32"
