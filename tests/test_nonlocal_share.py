"""The share of non-local means mixed into a denoising result (refinement/nonlocal_share.py)."""

import numpy as np
import pytest

from napari_dip_spectral import restore
from napari_dip_spectral.engine.normalization import Normalization
from napari_dip_spectral.noise.anscombe import PoissonGaussian
from napari_dip_spectral.refinement.nonlocal_share import NLM_SHARE, mix_nonlocal, plane_sigmas, resolve_share

from .conftest import smooth_image
from .test_noise_fit import FAST, blobs, camera

MODEL = PoissonGaussian(gain=6.0, offset=300.0, read_noise=4.0)


def test_the_default_share_is_for_denoising_with_the_default_profile():
    assert resolve_share(None, "denoise", "default") == NLM_SHARE > 0
    assert resolve_share(None, "denoise", "paper") == 0  # the authors' method alone
    assert resolve_share(None, "inpaint", "default") == 0
    assert resolve_share(0.5, "denoise", "paper") == 0.5  # asked for
    assert resolve_share(0, "inpaint", "default") == 0


@pytest.mark.parametrize(
    "share, task, message",
    [
        (-0.1, "denoise", r"\[0, 1\)"),
        (1.0, "denoise", r"\[0, 1\)"),
        (True, "denoise", "a number"),
        ("half", "denoise", "a number"),
        (0.3, "sr", "only used by task 'denoise'"),
    ],
)
def test_bad_shares_are_refused(share, task, message):
    with pytest.raises(ValueError, match=message):
        resolve_share(share, task, "default")


def test_mixing_brings_a_noisy_plane_nearer_the_truth_and_skips_unfinished_planes():
    rng = np.random.default_rng(0)
    clean = smooth_image(48).astype(np.float32)
    sigma = 0.1
    data = np.stack([clean + rng.normal(0, sigma, clean.shape), clean + rng.normal(0, sigma, clean.shape)])
    data = data[:, None].astype(np.float32)  # (planes, channels, H, W)
    out = data.copy()  # the worst decoder: it returns the data
    mix_nonlocal(out, data, [sigma, None], 0.5)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(out[0, 0]) < 0.5 * error(data[0, 0])
    assert np.array_equal(out[1], data[1])  # a plane without a sigma keeps its values
    assert out.dtype == np.float32 and out.shape == data.shape
    untouched = data.copy()
    mix_nonlocal(untouched, data, [sigma, sigma], 0.0)
    assert np.array_equal(untouched, data)


def test_restore_mixes_by_default_records_the_share_and_leaves_the_input_alone():
    counts = camera(blobs(64, 3), 6.0, 300.0, 4.0, 30, seed=4).astype(np.uint16)
    before = counts.copy()
    mixed = restore(counts, "denoise", **FAST)
    alone = restore(counts, "denoise", nlm_share=0, **FAST)
    assert np.array_equal(counts, before)
    assert mixed.nlm_share == NLM_SHARE and mixed.extra["nlm_share"] == NLM_SHARE
    assert alone.nlm_share == 0
    # the same seed fits the same decoder: the share alone makes the difference
    assert not np.allclose(mixed.image, alone.image)
    assert mixed.image.shape == counts.shape and np.isfinite(mixed.image).all()
    assert restore(counts, "denoise", anscombe=False, **FAST).nlm_share == NLM_SHARE
    assert restore(counts, "denoise", profile="paper", iterations=2, channels=8, device="cpu").nlm_share == 0
    with pytest.raises(ValueError, match="nlm_share"):
        restore(counts, "denoise", nlm_share=2, **FAST)


def test_a_cancelled_run_is_its_last_iterate_with_nothing_mixed_in():
    counts = camera(blobs(64, 3), 6.0, 300.0, 4.0, 30, seed=4).astype(np.uint16)
    first = lambda event: event.iteration < 2  # noqa: E731
    cancelled = restore(counts, "denoise", callback=first, **FAST)
    reference = restore(counts, "denoise", callback=first, nlm_share=0, **FAST)
    assert cancelled.stop_reason == "cancelled" and cancelled.nlm_share == 0
    np.testing.assert_array_equal(cancelled.image, reference.image)


def test_each_plane_gets_its_noise_sigma():
    rng = np.random.default_rng(1)
    clean = smooth_image(64).astype(np.float32)
    unit = np.stack([clean + rng.normal(0, s, clean.shape) for s in (0.02, 0.08, 0.0)])[:, None]
    norms = [Normalization(0.0, 4.0, "minmax"), Normalization(0.0, 2.0, "minmax"), None]
    constant = [False, False, True]
    # with a photon-noise model: the transform's unit sigma over each plane's stabilised range
    assert plane_sigmas(unit, norms, constant, MODEL, None) == [0.25, 0.5, None]
    assert plane_sigmas(unit, norms, constant, None, 0.05) == [0.05, 0.05, None]  # given
    estimated = plane_sigmas(unit, norms, constant, None, None)  # the wavelet estimate per plane
    assert estimated[0] == pytest.approx(0.02, rel=0.25) and estimated[1] == pytest.approx(0.08, rel=0.25)
    assert estimated[2] is None
