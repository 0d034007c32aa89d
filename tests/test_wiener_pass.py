"""The Wiener pass guided by a denoised result (refinement/wiener_pass.py)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_dip_spectral import restore
from napari_dip_spectral.refinement.block_matching import grouped_wiener
from napari_dip_spectral.refinement.wiener_pass import (
    BLOCK_2D,
    BLOCK_3D,
    apply_wiener,
    plane_rounds,
    resolve_wiener,
    wiener_pass,
)

from .test_noise_fit import FAST, blobs, camera


def volume(depth: int, size: int, seed: int) -> np.ndarray:
    """Blobs that drift slowly from plane to plane: signal correlated along Z."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.random((depth, size, size)), (2.0, 2.5, 2.5))
    return ((field - field.min()) / (field.max() - field.min())).astype(np.float32)


def test_it_runs_by_default_when_denoising_with_the_default_profile():
    assert resolve_wiener(None, "denoise", "default") is True
    assert resolve_wiener(None, "denoise", "paper") is False  # the authors' method alone
    assert resolve_wiener(None, "inpaint", "default") is False
    assert resolve_wiener(False, "denoise", "default") is False
    assert resolve_wiener(True, "denoise", "paper") is True  # asked for


@pytest.mark.parametrize(
    "value, task, message",
    [
        ("yes", "denoise", "True, False or None"),
        (1, "denoise", "True, False or None"),
        (True, "super_resolution", "only used by task 'denoise'"),
    ],
)
def test_requests_it_cannot_honour_are_refused(value, task, message):
    with pytest.raises(ValueError, match=message):
        resolve_wiener(value, task, "default")


def test_the_pass_brings_a_pilot_nearer_the_truth_and_leaves_its_inputs_alone():
    rng = np.random.default_rng(1)
    clean = volume(8, 40, 0)
    sigma = 0.08
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    pilot = gaussian_filter(data, (0, 1.5, 1.5))  # a plane-by-plane denoiser: blind to Z
    kept = data.copy(), pilot.copy()
    out = wiener_pass(data, pilot, sigma, BLOCK_3D)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(out) < 0.8 * error(pilot) and error(out) < 0.2 * error(data)
    assert out.dtype == np.float32 and out.shape == data.shape
    assert np.array_equal(data, kept[0]) and np.array_equal(pilot, kept[1])
    # no noise: nothing to shrink, the data come back
    np.testing.assert_allclose(wiener_pass(clean, clean, 0.0, BLOCK_3D), clean, atol=1e-5)


def test_in_2d_the_pass_brings_a_smooth_pilot_nearer_the_truth():
    rng = np.random.default_rng(3)
    clean = volume(1, 64, 5)[0]
    sigma = 0.08
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    pilot = gaussian_filter(data, 2.5)  # an over-smoothed estimate
    out = wiener_pass(data, pilot, sigma, BLOCK_2D)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(out) < 0.8 * error(pilot) and error(out) < 0.3 * error(data)


@pytest.mark.parametrize("shape, block", [((6, 70, 33), BLOCK_3D), ((90, 41), BLOCK_2D)])
def test_a_large_array_in_bands_of_rows_gives_the_same_values(monkeypatch, shape, block):
    import napari_dip_spectral.refinement.wiener_pass as module

    rng = np.random.default_rng(4)
    data = rng.random(shape).astype(np.float32)
    pilot = (data + rng.normal(0, 0.1, shape)).astype(np.float32)
    whole = wiener_pass(data, pilot, 0.1, block)
    monkeypatch.setattr(module, "BAND_VOXELS", 200)  # bands of a few rows
    np.testing.assert_array_equal(wiener_pass(data, pilot, 0.1, block), whole)


@pytest.mark.parametrize("shape", [(1, 9, 9), (2, 12, 7), (3, 5, 16)])
def test_thin_stacks_keep_their_shape(shape):
    rng = np.random.default_rng(2)
    data = rng.random(shape).astype(np.float32)
    out = wiener_pass(data, data, 0.1, BLOCK_3D)
    assert out.shape == shape and np.isfinite(out).all()


def test_units_without_a_sigma_keep_their_values_and_planes_average_three_estimates():
    data = np.stack([volume(4, 16, 3), volume(4, 16, 4)])
    out = data.copy() * 0.5
    before = out[1].copy()
    apply_wiener(out, data, [0.05, None], whole_stack=True)
    assert np.array_equal(out[1], before) and not np.array_equal(out[0], data[0] * 0.5)
    # planes: each channel is the mean of its own values, the 2-D and the grouped estimate
    planes = data.copy() * 0.5
    apply_wiener(planes, data, [0.05, 0.05], whole_stack=False)
    pilot = data[1, 2] * 0.5
    expected = (pilot + wiener_pass(data[1, 2], pilot, 0.05, BLOCK_2D) + grouped_wiener(data[1, 2], pilot, 0.05)) / 3
    np.testing.assert_allclose(planes[1, 2], expected, rtol=1e-5, atol=1e-6)


def test_a_threshold_share_mixes_in_the_estimate_the_decoder_does_not_guide():
    from napari_dip_spectral.refinement.block_matching import grouped_threshold

    rng = np.random.default_rng(4)
    data = (volume(2, 32, 7) + rng.normal(0, 0.05, (2, 32, 32))).astype(np.float32)[None]
    pilot = gaussian_filter(data, (0, 0, 1.0, 1.0))
    plain, shared = pilot.copy(), pilot.copy()
    apply_wiener(plain, data, [0.05], whole_stack=False)
    apply_wiener(shared, data, [0.05], whole_stack=False, threshold=0.25)
    for c in range(2):
        own = grouped_wiener(data[0, c], grouped_threshold(data[0, c], 0.05), 0.05)
        np.testing.assert_allclose(shared[0, c], 0.75 * plain[0, c] + 0.25 * own, rtol=1e-5, atol=1e-6)
    # a colour plane: thresholded on the data's luminance, Wiener-filtered on the pilot's
    rgb = (volume(3, 32, 8) + rng.normal(0, 0.05, (3, 32, 32))).astype(np.float32)[None]
    guide = gaussian_filter(rgb, (0, 0, 1.0, 1.0))
    colour, again = guide.copy(), guide.copy()
    apply_wiener(colour, rgb, [0.05], whole_stack=False, colour=True, threshold=0.25)
    apply_wiener(again, rgb, [0.05], whole_stack=False, colour=True)
    first = grouped_threshold(rgb[0], 0.05, rgb[0, 0])
    own = grouped_wiener(rgb[0], first, 0.05, first[0])
    np.testing.assert_allclose(colour[0], 0.75 * again[0] + 0.25 * own, rtol=1e-5, atol=1e-6)
    assert not np.allclose(own[1], grouped_wiener(rgb[0, 1], grouped_threshold(rgb[0, 1], 0.05), 0.05), atol=1e-4)
    # a stack fitted as a whole: the 3-D pass, then the share of the estimate grouped in cubes
    stack = (volume(6, 24, 9) + rng.normal(0, 0.05, (6, 24, 24))).astype(np.float32)[None]
    guide = gaussian_filter(stack, (0, 0.5, 1.0, 1.0))
    whole, alone = guide.copy(), guide.copy()
    apply_wiener(whole, stack, [0.05], whole_stack=True, threshold=0.25)
    apply_wiener(alone, stack, [0.05], whole_stack=True)
    cubes = grouped_wiener(stack[0], grouped_threshold(stack[0], 0.05), 0.05)
    np.testing.assert_allclose(whole[0], 0.75 * alone[0] + 0.25 * cubes, rtol=1e-5, atol=1e-6)
    planes = np.stack([grouped_wiener(p, grouped_threshold(p, 0.05), 0.05) for p in stack[0]])
    assert not np.allclose(cubes, planes, atol=1e-3)


def test_a_colour_plane_groups_every_channel_on_its_luminance():
    data = volume(3, 24, 6)[None]  # one unit, three opponent channels
    out = data * 0.5
    apply_wiener(out, data, [0.05], whole_stack=False, colour=True)
    guide = data[0] * 0.5
    for c in range(3):
        expected = (
            guide[c]
            + wiener_pass(data[0, c], guide[c], 0.05, BLOCK_2D)
            + grouped_wiener(data[0, c], guide[c], 0.05, match_on=guide[0])
        ) / 3
        np.testing.assert_allclose(out[0, c], expected, rtol=1e-5, atol=1e-6)
    grey = data * 0.5
    apply_wiener(grey, data, [0.05], whole_stack=False)  # each channel on its own pilot
    np.testing.assert_allclose(grey[0, 0], out[0, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(grey[0, 1:], out[0, 1:], atol=1e-4)


def test_a_second_round_is_the_first_again_guided_by_its_result_and_nearer_the_truth():
    rng = np.random.default_rng(5)
    clean = volume(1, 48, 8)[0]
    sigma = 0.1
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)[None, None]
    pilot = gaussian_filter(data, (0, 0, 2.0, 2.0))  # a weak, over-smoothed pilot
    once, twice = pilot.copy(), pilot.copy()
    apply_wiener(once, data, [sigma], whole_stack=False)
    apply_wiener(twice, data, [sigma], whole_stack=False, rounds=2)
    again = once.copy()
    apply_wiener(again, data, [sigma], whole_stack=False)
    np.testing.assert_allclose(twice, again, rtol=1e-5, atol=1e-6)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(twice) < 0.95 * error(once) < 0.95 * error(pilot)


@pytest.mark.parametrize("whole_stack", [False, True])
def test_a_boost_runs_the_passes_again_on_data_strengthened_by_their_result_and_gets_nearer_the_truth(whole_stack):
    rng = np.random.default_rng(6)
    planes = 6 if whole_stack else 1
    clean = gaussian_filter(np.stack([blobs(40, s) for s in range(planes)]), (1.0 * whole_stack, 0, 0))
    sigma = 0.1
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)[None]
    # a pilot as a decoder stopped early gives it: the scene a little smoothed
    pilot = gaussian_filter(clean, (0.5 * whole_stack, 1.0, 1.0)).astype(np.float32)[None]
    first, boosted = pilot.copy(), pilot.copy()
    apply_wiener(first, data, [sigma], whole_stack, threshold=0.5)
    apply_wiener(boosted, data, [sigma], whole_stack, threshold=0.5, boost=True)
    # the same passes from the same pilot, on the mean of the data and the first result,
    # whose noise is half the data's against a signal as strong
    again = pilot.copy()
    apply_wiener(again, (data + first) / 2, [sigma / 2], whole_stack, threshold=0.5)
    np.testing.assert_allclose(boosted, again, rtol=1e-5, atol=1e-6)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(boosted) < 0.97 * error(first)
    # a unit without a sigma keeps its values
    two = np.concatenate([pilot, pilot])
    apply_wiener(two, np.concatenate([data, data]), [sigma, None], whole_stack, threshold=0.5, boost=True)
    assert np.array_equal(two[1], pilot[0]) and np.allclose(two[0], boosted[0], atol=1e-6)


def test_gaussian_noise_gets_two_rounds_and_photon_noise_one_both_a_threshold_share(monkeypatch):
    import napari_dip_spectral.refinement.refine as refine_module
    import napari_dip_spectral.refinement.wiener_pass as wiener_module

    assert plane_rounds(photon_noise=False) == 2 and plane_rounds(photon_noise=True) == 1
    seen, wholes = [], []

    def spy(out, data, sigmas, whole_stack, rounds=1, colour=False, threshold=0.0, boost=False):
        seen.append((rounds, colour, threshold, boost))
        wholes.append(whole_stack)

    monkeypatch.setattr(refine_module, "apply_wiener", spy)
    counts = camera(blobs(40, 5), 6.0, 300.0, 4.0, 30, seed=7).astype(np.uint16)
    restore(counts, "denoise", anscombe={"gain": 6.0, "offset": 300.0, "read_noise": 4.0}, **FAST)
    rng = np.random.default_rng(0)
    restore((blobs(40, 5) + rng.normal(0, 0.1, (40, 40))).astype(np.float32), "denoise", **FAST)
    scene = np.stack([blobs(40, 5), blobs(40, 6), blobs(40, 7)], axis=-1)  # (Y, X, 3): a colour plane
    restore((scene + rng.normal(0, 0.1, scene.shape)).astype(np.float32), "denoise", **FAST)
    # a colour plane is grouped on its luminance; every plane gets the threshold share
    share = wiener_module.THRESHOLD_SHARE
    assert 0 < share < 1 and seen == [(1, False, share, True), (2, False, share, True), (2, True, share, True)]
    restore(counts[None].repeat(3, axis=0), "denoise", axes="ZYX", **FAST)
    assert seen[-1] == (1, False, share, True) and wholes == [False, False, False, True]  # a stack as a whole


def test_restore_runs_it_on_stacks_and_planes_records_it_and_leaves_the_input_alone():
    scene = np.stack([np.roll(blobs(40, 5), k, axis=1) for k in range(6)])
    counts = camera(scene, 6.0, 300.0, 4.0, 30, seed=7).astype(np.uint16)
    before = counts.copy()
    refined = restore(counts, "denoise", axes="ZYX", **FAST)
    plain = restore(counts, "denoise", axes="ZYX", wiener=False, **FAST)
    assert np.array_equal(counts, before)
    assert refined.wiener and not plain.wiener
    # the same seed fits the same decoder: the pass alone makes the difference
    assert not np.allclose(refined.image, plain.image)
    assert refined.image.shape == counts.shape and np.isfinite(refined.image).all()
    one = restore(counts[0], "denoise", **FAST)
    assert one.wiener and not np.allclose(one.image, restore(counts[0], "denoise", wiener=False, **FAST).image)
    assert restore(counts, "denoise", axes="ZYX", stack_prior="planes", **FAST).wiener
    assert not restore(counts[0], "denoise", profile="paper", iterations=2, channels=8, device="cpu").wiener
    with pytest.raises(ValueError, match="wiener is only used by task 'denoise'"):
        restore(counts[0], "inpaint", mask=np.ones(counts.shape[1:], bool), wiener=True, **FAST)


def test_a_cancelled_stack_is_its_last_iterate_without_the_pass():
    scene = np.stack([np.roll(blobs(40, 5), k, axis=1) for k in range(6)])
    counts = camera(scene, 6.0, 300.0, 4.0, 30, seed=7).astype(np.uint16)
    first = lambda event: event.iteration < 2  # noqa: E731
    cancelled = restore(counts, "denoise", axes="ZYX", callback=first, **FAST)
    reference = restore(counts, "denoise", axes="ZYX", callback=first, wiener=False, nlm_share=0, **FAST)
    assert cancelled.stop_reason == "cancelled" and not cancelled.wiener
    np.testing.assert_array_equal(cancelled.image, reference.image)
