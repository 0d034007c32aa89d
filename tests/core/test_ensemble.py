"""Ensembles (core/ensemble.py): several decoders per plane, their results averaged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dip_spectral.core import solver
from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.core.driving import drive
from napari_dip_spectral.core.fitting import fit
from napari_dip_spectral.core.operators import Denoise, Inpaint
from napari_dip_spectral.core.solver import build_network
from napari_dip_spectral.core.warm_start import plane_weights, start_from

from ..conftest import smooth_image

CONFIG = SolverConfig(channels=8, iterations=40, auto_stop=False, metrics_every=10, average=0.9, init_output="data")


def _planes(n: int, size: int = 32, sigma: float = 0.08) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(3)
    clean = np.stack([smooth_image(size, seed=k) for k in range(n)])[:, None].astype(np.float32)
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    return torch.from_numpy(noisy), torch.from_numpy(clean)


def test_each_plane_is_the_mean_of_its_members_fitted_as_groups():
    noisy, _ = _planes(2)
    config = CONFIG.replace(ensemble=3)
    out = drive(fit(noisy, Denoise(), config), None)
    members = drive(solver.iterate(noisy.repeat_interleave(3, 0), Denoise(), CONFIG), None)
    assert out.image.shape == (2, 1, 32, 32)
    expected = members.image.reshape(2, 3, 1, 32, 32).mean(1)
    np.testing.assert_allclose(out.image, expected, atol=1e-6)
    # the members differ (own start, own input), so the mean is not any one of them
    assert not np.allclose(members.image[0], members.image[1], atol=1e-3)
    # the history and the stop records are per plane, as for one decoder per plane
    assert len(out.stop_iterations) == len(out.rules) == 2
    entry = out.history[-1]
    assert len(entry.loss_all) == len(entry.fbc_all) == len(entry.ratio_all) == 2
    np.testing.assert_allclose(entry.loss_all, np.asarray(members.history[-1].loss_all).reshape(2, 3).mean(1))


def test_the_logged_psnr_is_that_of_the_members_mean():
    noisy, clean = _planes(1)
    out = drive(fit(noisy, Denoise(), CONFIG.replace(ensemble=4), reference=clean), None)
    mse = float(((out.image.astype(np.float64) - clean.numpy()) ** 2).mean())
    assert out.history[-1].psnr == pytest.approx(10 * np.log10(1 / mse), abs=1e-3)
    # averaging four early-stopped fits beats their mean PSNR here (the point of it)
    one = drive(fit(noisy, Denoise(), CONFIG, reference=clean), None)
    assert out.history[-1].psnr > one.history[-1].psnr


def test_a_held_out_stop_is_per_member_and_a_plane_stops_with_its_last_member():
    noisy, _ = _planes(2, sigma=0.15)
    config = CONFIG.replace(ensemble=2, stop_rule="holdout", auto_stop=True, iterations=400, holdout_patience=20)
    out = drive(fit(noisy, Denoise(), config), None)
    assert out.stop_reason == "auto_stop"
    assert out.rules == ["holdout", "holdout"]
    assert all(0 < s <= out.iterations for s in out.stop_iterations)
    assert out.image.shape == (2, 1, 32, 32) and np.isfinite(out.image).all()


def test_warm_starts_carry_every_member():
    noisy, _ = _planes(1)
    config = CONFIG.replace(ensemble=2)
    first = drive(fit(noisy, Denoise(), config, keep_weights=True), None)
    assert all(w.shape[0] == 2 for w in first.weights.values())
    # member j of the next plane starts from member j of this one
    net, _ = build_network(config, 1, 4, (32, 32), 7)
    start_from(net, 4, first.weights)
    for key, value in net.state_dict().items():
        groups = value.reshape(4, -1)
        for g in range(4):
            assert torch.equal(groups[g], first.weights[key][g % 2])
    warm = drive(fit(noisy, Denoise(), config, start=first.weights), None)
    assert warm.history[0].loss < first.history[0].loss


def test_plane_weights_of_several_members():
    net, _ = build_network(CONFIG, 1, 6, (32, 32), 0)
    two = plane_weights(net, 6, 4, members=2)
    for key, value in net.state_dict().items():
        assert torch.equal(two[key], value.reshape(6, -1)[4:6])


def test_masks_per_plane_follow_their_members():
    noisy, _ = _planes(2)
    mask = torch.ones(2, 1, 32, 32)
    mask[0, :, :, :16] = 0
    repeated = Inpaint(mask).repeat_groups(3)
    assert repeated.mask.shape[0] == 6
    assert torch.equal(repeated.mask[:3], mask[:1].expand(3, -1, -1, -1))
    shared = Inpaint(mask[:1])
    assert shared.repeat_groups(3) is shared  # one mask for every plane stays one
    out = drive(fit(noisy * mask, Inpaint(mask), CONFIG.replace(ensemble=3)), None)
    assert out.image.shape == (2, 1, 32, 32)


@pytest.mark.parametrize("bad", [0, -1, 65, 2.5, True])
def test_ensemble_size_is_checked(bad):
    with pytest.raises((ValueError, TypeError), match="ensemble"):
        CONFIG.replace(ensemble=bad).validate()


def test_ensemble_refuses_the_sure_rule():
    with pytest.raises(ValueError, match="ensemble"):
        CONFIG.replace(ensemble=2, stop_rule="sure").validate()
