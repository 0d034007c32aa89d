"""The held-out-pixel stop rule (core/holdout.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.holdout import HeldOutPixels
from napari_dip_spectral.core.operators import Denoise, SuperResolve
from napari_dip_spectral.core.solver import solve
from napari_dip_spectral.core.stopping import LowestErrorRule

from ..conftest import smooth_image


def test_held_out_pixels_are_left_out_of_the_data_term():
    op = HeldOutPixels(Denoise(), (2, 1, 64, 64), fraction=0.1, seed=0)
    assert 0.07 < float(op.held.mean()) < 0.13
    assert torch.equal(op.held + op.keep, torch.ones_like(op.held))
    x, y = torch.zeros(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    changed = y + 5 * op.held  # change only the held-out pixels
    assert torch.allclose(op.loss_per_group(x, y), op.loss_per_group(x, changed))
    assert torch.all(op.heldout_error(x, changed) > op.heldout_error(x, y) + 1)
    again = HeldOutPixels(Denoise(), (2, 1, 64, 64), fraction=0.1, seed=0)
    assert torch.equal(again.held, op.held)  # reproducible from the seed
    with pytest.raises(ValueError, match="observation is the image"):
        HeldOutPixels(SuperResolve(2), (1, 1, 16, 16), 0.1)
    with pytest.raises(ValueError, match="fraction"):
        HeldOutPixels(Denoise(), (1, 1, 16, 16), 0.6)


def test_rule_remembers_the_best_and_waits_for_patience():
    rule = LowestErrorRule(groups=2, patience=30)
    assert rule.record(10, torch.tensor([1.0, 1.0])).tolist() == [True, True]
    assert rule.record(20, torch.tensor([0.5, 1.2])).tolist() == [True, False]
    assert rule.check(30).tolist() == [False, False]
    assert rule.check(40).tolist() == [False, True]  # plane 1: no gain since 10
    assert rule.best_iteration.tolist() == [20, 10]


def test_rule_waits_while_the_error_falls_after_a_bump():
    # lowest at 20, a bump at 30, falling again at 40 (still above the lowest), lower at 50
    errors = {10: 1.0, 20: 0.8, 30: 0.9, 40: 0.85, 50: 0.7}
    fixed = LowestErrorRule(groups=1, patience=20)
    waiting = LowestErrorRule(groups=1, patience=20, wait_while_falling=True)
    for t in (10, 20, 30, 40):
        fixed.record(t, torch.tensor([errors[t]]))
        waiting.record(t, torch.tensor([errors[t]]))
    assert fixed.check(40).tolist() == [True]  # would keep the result of iteration 20
    assert waiting.check(40).tolist() == [False]
    waiting.record(50, torch.tensor([errors[50]]))
    assert waiting.best_iteration.tolist() == [50]
    # once the error rises the patience counts as before
    for t, e in ((60, 0.75), (70, 0.8)):
        waiting.record(t, torch.tensor([e]))
    assert waiting.check(70).tolist() == [True]


def test_solver_stops_at_the_lowest_held_out_error():
    rng = np.random.default_rng(0)
    clean = smooth_image(48)
    y = torch.from_numpy(clean + rng.normal(0, 0.15, clean.shape).astype(np.float32))[None, None]
    config = SolverConfig(
        iterations=600,
        channels=16,
        levels=3,
        learning_rate=1e-2,
        stop_rule="holdout",
        holdout_patience=60,
        metrics_every=10,
        average=0.9,
        init_output="data",
        device="cpu",
    )
    out = solve(y, Denoise(), config)
    assert out.stop_reason == "auto_stop" and out.iterations < 600
    assert out.iterations - out.stop_iterations[0] >= 60
    assert np.isfinite(out.image).all()
    error = float(((out.image[0, 0] - clean) ** 2).mean())
    assert error < 0.5 * 0.15**2  # far better than the noisy input


def test_each_lowest_error_rule_waits_its_own_patience_unless_one_is_given():
    rng = np.random.default_rng(1)
    clean = smooth_image(48)
    y = torch.from_numpy(clean + rng.normal(0, 0.15, clean.shape).astype(np.float32))[None, None]
    config = SolverConfig(
        iterations=600, channels=16, levels=3, learning_rate=1e-2, stop_rule="holdout", metrics_every=10, device="cpu"
    )
    out = solve(y, Denoise(), config)
    # the held-out rule's own patience: at least 30 iterations past its lowest error (more
    # while the error is still falling), then it stops
    assert out.stop_reason == "auto_stop" and 30 <= out.iterations - out.stop_iterations[0] < 100
    assert config.patience("sure") == 100 and config.replace(holdout_patience=7).patience("sure") == 7
    with pytest.raises(ValueError, match="holdout_patience"):
        config.replace(holdout_patience=0).validate()
