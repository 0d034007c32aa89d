"""Warm starts (core/warm_start.py, core/solver.py): one plane's fitted decoder as the start of the next fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.driving import drive
from napari_dip_spectral.core.fitting import fit
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import build_network
from napari_dip_spectral.core.warm_start import plane_weights, start_from

from ..conftest import smooth_image

CONFIG = SolverConfig(channels=8, iterations=60, auto_stop=False, metrics_every=10, average=0.9, init_output="data")


def _noisy(seed: int, size: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    clean = smooth_image(size, seed=0)
    return torch.from_numpy((clean + rng.normal(0, 0.05, clean.shape)).astype(np.float32))[None, None]


def test_plane_weights_round_trip_into_every_plane():
    net, _ = build_network(CONFIG, 1, 3, (32, 32), 0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    one = plane_weights(net, 3, 1)
    other, _ = build_network(CONFIG, 1, 2, (32, 32), 5)
    start_from(other, 2, one)
    for key, value in other.state_dict().items():
        planes = value.reshape(2, -1)
        assert torch.equal(planes[0], one[key].reshape(-1))
        assert torch.equal(planes[1], one[key].reshape(-1))
    wider, _ = build_network(CONFIG.replace(channels=16), 1, 1, (32, 32), 0)
    with pytest.raises(ValueError, match="another shape"):
        start_from(wider, 1, one)


def test_a_warm_start_begins_where_the_neighbour_ended():
    assert drive(fit(_noisy(1), Denoise(), CONFIG), None).weights is None  # only when asked for
    first = drive(fit(_noisy(1), Denoise(), CONFIG, keep_weights=True), None)
    assert first.weights is not None
    cold = drive(fit(_noisy(2), Denoise(), CONFIG), None)
    warm = drive(fit(_noisy(2), Denoise(), CONFIG, start=first.weights), None)
    # the neighbour's decoder already draws the same scene: its first logged fit is far
    # closer to the data than a random decoder's, and the two runs differ
    assert warm.history[0].loss < 0.5 * cold.history[0].loss
    assert not np.array_equal(warm.image, cold.image)


def test_the_sure_rule_refuses_a_warm_start():
    first = drive(fit(_noisy(1), Denoise(), CONFIG, keep_weights=True), None)
    with pytest.raises(ValueError, match="SURE"):
        fit(_noisy(2), Denoise(), CONFIG.replace(stop_rule="sure"), start=first.weights)
