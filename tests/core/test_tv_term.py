"""The optional total-variation term of the loss (``tv_weight``; measured and not adopted as
a default, docs/beyond_the_paper.md section 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import solve, total_variation

from ..conftest import smooth_image


def test_total_variation_of_a_ramp_and_a_flat_plane():
    ramp = torch.arange(16.0).repeat(16, 1)[None, None] * 0.1  # slope 0.1 along x
    flat = torch.full((1, 1, 16, 16), 0.3)
    tv = total_variation(torch.cat([ramp, flat]))
    assert tv[0].item() == pytest.approx(0.1, rel=1e-3)
    assert tv[1].item() == pytest.approx(0.0, abs=1e-3)


def test_the_term_makes_the_fit_smoother():
    rng = np.random.default_rng(0)
    noisy = smooth_image(32) + rng.normal(0, 0.1, (32, 32)).astype(np.float32)
    y = torch.from_numpy(noisy)[None, None]
    base = SolverConfig(
        iterations=60, channels=8, levels=2, auto_stop=False, metrics_every=20, learning_rate=1e-2, device="cpu"
    )
    plain = solve(y, Denoise(), base).image
    smooth = solve(y, Denoise(), base.replace(tv_weight=50.0)).image
    tv = [total_variation(torch.from_numpy(a)).item() for a in (plain, smooth)]
    assert tv[1] < 0.8 * tv[0]
    with pytest.raises(ValueError, match="tv_weight"):
        base.replace(tv_weight=-1.0).validate()
