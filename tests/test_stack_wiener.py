"""The 3-D Wiener pass over a denoised stack (stack_wiener.py)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_dip_spectral import restore
from napari_dip_spectral.stack_wiener import apply_stack_wiener, resolve_stack_wiener, wiener_pass

from .test_noise_fit import FAST, blobs, camera


def volume(depth: int, size: int, seed: int) -> np.ndarray:
    """Blobs that drift slowly from plane to plane: signal correlated along Z."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.random((depth, size, size)), (2.0, 2.5, 2.5))
    return ((field - field.min()) / (field.max() - field.min())).astype(np.float32)


def test_it_runs_by_default_only_for_whole_stacks_denoised_with_the_default_profile():
    assert resolve_stack_wiener(None, "denoise", "default", True) is True
    assert resolve_stack_wiener(None, "denoise", "default", False) is False  # planes or a 2-D image
    assert resolve_stack_wiener(None, "denoise", "paper", True) is False  # the authors' method alone
    assert resolve_stack_wiener(None, "inpaint", "default", True) is False
    assert resolve_stack_wiener(False, "denoise", "default", True) is False
    assert resolve_stack_wiener(True, "denoise", "paper", True) is True  # asked for


@pytest.mark.parametrize(
    "value, task, whole, message",
    [
        ("yes", "denoise", True, "True, False or None"),
        (1, "denoise", True, "True, False or None"),
        (True, "super_resolution", True, "only used by task 'denoise'"),
        (True, "denoise", False, "needs a Z or T stack fitted as a whole"),
    ],
)
def test_requests_it_cannot_honour_are_refused(value, task, whole, message):
    with pytest.raises(ValueError, match=message):
        resolve_stack_wiener(value, task, "default", whole)


def test_the_pass_brings_a_pilot_nearer_the_truth_and_leaves_its_inputs_alone():
    rng = np.random.default_rng(1)
    clean = volume(8, 40, 0)
    sigma = 0.08
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    pilot = gaussian_filter(data, (0, 1.5, 1.5))  # a plane-by-plane denoiser: blind to Z
    kept = data.copy(), pilot.copy()
    out = wiener_pass(data, pilot, sigma)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(out) < 0.8 * error(pilot) and error(out) < 0.2 * error(data)
    assert out.dtype == np.float32 and out.shape == data.shape
    assert np.array_equal(data, kept[0]) and np.array_equal(pilot, kept[1])
    # no noise: nothing to shrink, the data come back
    np.testing.assert_allclose(wiener_pass(clean, clean, 0.0), clean, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 9, 9), (2, 12, 7), (3, 5, 16)])
def test_thin_stacks_keep_their_shape(shape):
    rng = np.random.default_rng(2)
    data = rng.random(shape).astype(np.float32)
    out = wiener_pass(data, data, 0.1)
    assert out.shape == shape and np.isfinite(out).all()


def test_units_without_a_sigma_keep_their_values():
    data = np.stack([volume(4, 16, 3), volume(4, 16, 4)])
    out = data.copy() * 0.5
    before = out[1].copy()
    apply_stack_wiener(out, data, [0.05, None])
    assert np.array_equal(out[1], before) and not np.array_equal(out[0], data[0] * 0.5)


def test_restore_runs_it_on_a_photon_stack_records_it_and_leaves_the_input_alone():
    scene = np.stack([np.roll(blobs(40, 5), k, axis=1) for k in range(6)])
    counts = camera(scene, 6.0, 300.0, 4.0, 30, seed=7).astype(np.uint16)
    before = counts.copy()
    refined = restore(counts, "denoise", axes="ZYX", **FAST)
    plain = restore(counts, "denoise", axes="ZYX", stack_wiener=False, **FAST)
    assert np.array_equal(counts, before)
    assert refined.stack_wiener and not plain.stack_wiener
    # the same seed fits the same decoder: the pass alone makes the difference
    assert not np.allclose(refined.image, plain.image)
    assert refined.image.shape == counts.shape and np.isfinite(refined.image).all()
    assert not restore(counts[0], "denoise", **FAST).stack_wiener  # one plane: nothing to pass over
    assert not restore(counts, "denoise", axes="ZYX", stack_prior="planes", **FAST).stack_wiener
    with pytest.raises(ValueError, match="stack_wiener needs a Z or T stack"):
        restore(counts, "denoise", axes="ZYX", stack_prior="planes", stack_wiener=True, **FAST)


def test_a_cancelled_stack_is_its_last_iterate_without_the_pass():
    scene = np.stack([np.roll(blobs(40, 5), k, axis=1) for k in range(6)])
    counts = camera(scene, 6.0, 300.0, 4.0, 30, seed=7).astype(np.uint16)
    first = lambda event: event.iteration < 2  # noqa: E731
    cancelled = restore(counts, "denoise", axes="ZYX", callback=first, **FAST)
    reference = restore(counts, "denoise", axes="ZYX", callback=first, stack_wiener=False, nlm_share=0, **FAST)
    assert cancelled.stop_reason == "cancelled" and not cancelled.stack_wiener
    np.testing.assert_array_equal(cancelled.image, reference.image)
