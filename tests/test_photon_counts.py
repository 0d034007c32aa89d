"""The Poisson data term (core/photon_counts.py, noise/likelihood.py): the counts it reads back from
the stabilised data, its deviance, its mapping of the fitted intensity to the units the rest of
a run works in, and the option on every face."""

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from napari_dip_spectral import restore
from napari_dip_spectral.core.holdout import HeldOutPixels
from napari_dip_spectral.core.photon_counts import PhotonCounts
from napari_dip_spectral.engine.normalization import fit_normalization
from napari_dip_spectral.noise.anscombe import PoissonGaussian

MODEL = PoissonGaussian(gain=40.0, offset=100.0, read_noise=30.0)
S2 = (30.0 / 40.0) ** 2
KNOWN = {"gain": 40.0, "offset": 100.0, "read_noise": 30.0}
FAST = dict(iterations=30, channels=8, levels=3, device="cpu", nlm_share=0.0, wiener=False, anscombe=KNOWN)


def camera_counts(seed: int = 0, size: int = 48, photons: float = 5.0, expected: bool = False):
    """Blurred blobs recorded with MODEL's camera: gain 40, offset 100, read noise 30 (and,
    with ``expected``, the counts' expected values)."""
    rng = np.random.default_rng(seed)
    scene = np.zeros((size, size))
    scene[tuple(rng.integers(4, size - 4, (10, 2)).T)] = 1.0
    scene = gaussian_filter(scene, 2.5)
    rate = photons * scene / scene.max()
    counts = 100 + 40 * rng.poisson(rate) + rng.normal(0, 30, scene.shape)
    counts = np.clip(np.round(counts), 0, 65535).astype(np.uint16)
    return (counts, 100 + 40 * rate) if expected else counts


def operator_for(counts: np.ndarray, top: float = 50.0, mask=None):
    """The operator and normalised stabilised observation of ``counts`` (one plane)."""
    d = MODEL.forward(counts.astype(np.float32))
    norm = fit_normalization(d)
    y = torch.from_numpy(norm.forward(d))[None, None]
    return PhotonCounts([norm.low], [norm.high], [S2], [top], mask), y, norm


def test_the_counts_come_back_exactly_from_the_stabilised_data():
    counts = camera_counts()
    op, y, _ = operator_for(counts)
    expected = np.maximum((counts.astype(np.float64) - 100) / 40 + S2, -3 / 8)  # where the transform clips
    np.testing.assert_allclose(op.counts(y)[0, 0].numpy(), expected, atol=2e-3 * expected.max())


def test_the_fitted_intensity_maps_back_through_the_runs_inverse():
    """as_image gives the normalised transformed value whose unbiased inverse (the one every
    run ends with) is the intensity the decoder drew: nothing else in a run need know."""
    op, _, norm = operator_for(camera_counts(), top=50.0)
    x = torch.linspace(0, 1, 201).reshape(1, 1, 1, -1)
    image = op.as_image(x)[0, 0].numpy()
    back = MODEL.inverse_transform(norm.inverse(image))
    mu = x[0, 0].numpy() * (50.0 + S2) - S2  # the output reaches below zero intensity
    np.testing.assert_allclose(back, 100 + 40 * np.maximum(mu, 0), atol=0.5, rtol=2e-3)
    # the bias the unbiased inverse corrects: at a few photons the value is below the plain root
    bright = mu[0] > 0.5
    algebraic = 2 * np.sqrt(mu[0][bright] + 3 / 8 + S2)
    assert (norm.inverse(image[0][bright]) < algebraic).all()


def test_the_deviance_is_zero_at_the_counts_and_grows_away():
    counts = camera_counts()
    op, y, _ = operator_for(counts, top=50.0)
    observed = ((op.counts(y) - 1e-4) / (50.0 + S2)).clamp(0, 1)
    at = observed.clone().requires_grad_(True)
    loss = op.pixel_loss(at, y)
    inside = (observed > 0) & (observed < 1)
    assert float(loss.detach()[inside].abs().max()) < 1e-4
    loss.sum().backward()
    assert float(at.grad[inside].abs().max()) < 1e-2
    for shift in (-0.05, 0.05):
        moved = (observed + shift).clamp(0.001, 1)
        assert float(op.pixel_loss(moved, y).mean()) > float(loss.detach().mean()) + 1e-3


def test_masked_pixels_are_out_of_the_data_term_and_the_level():
    counts = camera_counts()
    mask = torch.ones((1, 1) + counts.shape)
    mask[..., :10, :] = 0
    op, y, _ = operator_for(counts, mask=mask)
    x = torch.rand_like(y)
    other = x.clone()
    other[..., :10, :] = 1 - other[..., :10, :]
    assert torch.equal(op.pixel_loss(x, y), op.pixel_loss(other, y))
    brighter = y.clone()
    brighter[..., :10, :] = 1.0
    assert torch.equal(op.data_level(brighter), op.data_level(y))


def test_held_out_pixels_score_the_deviance():
    op, y, _ = operator_for(camera_counts())
    held = HeldOutPixels(op, tuple(y.shape), 0.2, seed=3)
    x = torch.full_like(y, 0.2)
    per_pixel = op.pixel_loss(x, y)
    expected = (per_pixel * held.held).sum() / held.held.sum()
    torch.testing.assert_close(held.heldout_error(x, y), expected.reshape(1))
    assert torch.equal(held.as_image(x), op.as_image(x))


def test_an_ensemble_repeats_each_planes_parameters():
    op = PhotonCounts([0.0, 1.0], [10.0, 12.0], [0.5, 0.7], [30.0, 60.0])
    rep = op.repeat_groups(3)
    assert rep.low.flatten().tolist() == [0.0] * 3 + [1.0] * 3
    assert rep.top.flatten().tolist() == [30.0] * 3 + [60.0] * 3
    with pytest.raises(ValueError, match="top > 0"):
        PhotonCounts([0.0], [1.0], [0.0], [0.0])


def test_restore_with_the_poisson_likelihood(tmp_path):
    counts, clean = camera_counts(1, expected=True)
    before = counts.copy()
    seen = []
    result = restore(counts, "denoise", likelihood="poisson", preview_every=10, callback=seen.append, **FAST)
    np.testing.assert_array_equal(counts, before)
    assert result.likelihood == "poisson" and result.anscombe is not None
    assert result.image.shape == counts.shape and np.isfinite(result.image).all()
    # on the data's scale (camera counts), not the fit's internal one: closer to the expected
    # counts than the recording is
    assert np.mean((result.image - clean) ** 2) < 0.5 * np.mean((counts - clean) ** 2)
    previews = [e.event.preview for e in seen if e.event.preview is not None]
    assert previews and all(p.min() >= -0.01 and p.max() <= 1.01 for p in previews)
    assert restore(counts, "denoise", **FAST).likelihood == "gaussian"


def test_the_likelihood_is_checked():
    counts = camera_counts()
    with pytest.raises(ValueError, match="likelihood must be one of"):
        restore(counts, "denoise", likelihood="laplace", **FAST)
    with pytest.raises(ValueError, match="photon noise model"):
        restore(counts, "denoise", likelihood="poisson", **dict(FAST, anscombe=False))
    with pytest.raises(ValueError, match="photon noise model"):
        restore(counts, "deblock", likelihood="poisson", iterations=5, channels=8, levels=3, device="cpu")


def test_the_likelihood_is_chosen_only_for_photon_counts():
    counts = camera_counts()
    assert restore(counts, "denoise", anscombe=False, iterations=5, channels=8, levels=3).likelihood == "gaussian"


def test_the_cli_records_the_likelihood(tmp_path):
    import tifffile

    from napari_dip_spectral.cli import main

    source = tmp_path / "cells.tif"
    tifffile.imwrite(source, camera_counts(2))
    code = main(
        ["denoise", str(source), "-o", str(tmp_path), "--likelihood", "poisson", "--iterations", "20"]
        + ["--channels", "8", "--device", "cpu", "--nlm-share", "0", "--no-wiener", "--anscombe"]
        + ["--anscombe-gain", "40", "--anscombe-offset", "100", "--anscombe-read-noise", "30"]
    )
    assert code == 0
    record = json.loads((tmp_path / "cells_denoise.json").read_text())
    assert record["likelihood"] == "poisson"
