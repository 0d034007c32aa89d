"""Saturated pixels (noise/saturation.py): found by their level, kept out of the fit in a copy, and
put back as recorded in the result."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_dip_spectral import restore
from napari_dip_spectral.noise.saturation import (
    clipping_levels,
    lower_saturated,
    lower_saturated_for,
    restore_saturated,
)

FAST = dict(iterations=30, channels=8, levels=3, device="cpu", nlm_share=0.0, wiener=False)


def nuclei_counts(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Dim blurred nuclei recorded as uint16 camera counts (20 photons at the brightest), and
    the same with two saturated 3 x 3 beads; the beads' mask."""
    rng = np.random.default_rng(seed)
    scene = np.zeros((size, size))
    scene[tuple(rng.integers(4, size - 4, (12, 2)).T)] = 1.0
    scene = gaussian_filter(scene, 3.0)
    photons = 20 * scene / scene.max() + 0.5
    counts = np.round(100 + 50 * rng.poisson(photons) + rng.normal(0, 20, scene.shape))
    counts = np.clip(counts, 0, 65535).astype(np.uint16)
    beads = np.zeros(scene.shape, bool)
    for y, x in rng.integers(6, size - 6, (2, 2)):
        beads[y - 1 : y + 2, x - 1 : x + 2] = True
    return counts, np.where(beads, 65535, counts).astype(np.uint16), beads


def test_clipping_levels():
    data = np.arange(10000, dtype=np.uint16).reshape(100, 100)
    assert clipping_levels(data) == (None, None)
    spoiled = data.copy()
    spoiled[0, :3] = 65535  # 3 of 10 000: under the pile-up share, but the type's maximum
    assert clipping_levels(spoiled) == (None, 65535.0)
    floats = data.astype(np.float32)
    floats[0, :3] = floats.max()  # no type maximum for floats: only a pile-up counts
    assert clipping_levels(floats) == (None, None)
    floats[0, :30] = floats.max()
    assert clipping_levels(floats) == (None, float(floats.max()))
    floats[1, :30] = 0
    assert clipping_levels(floats)[0] == 0.0


def test_lower_saturated_works_on_a_copy():
    _, counts, beads = nuclei_counts(0)
    before = counts.copy()
    lowered, mask, level = lower_saturated(counts)
    np.testing.assert_array_equal(counts, before)  # the input is untouched
    np.testing.assert_array_equal(mask, beads)
    assert level == 65535
    assert lowered.dtype == counts.dtype
    assert lowered[beads].max() == counts[~beads].max()
    np.testing.assert_array_equal(lowered[~beads], counts[~beads])
    assert lower_saturated(np.full((8, 8), 65535, np.uint16))[1] is None  # nothing else left
    clean, _, _ = nuclei_counts(0)
    assert lower_saturated(clean)[1] is None
    assert lower_saturated_for(counts, "denoise", "paper", photon_noise=True)[1] is None
    assert lower_saturated_for(counts, "inpaint", "default", photon_noise=True)[1] is None


def test_saturated_pixels_are_left_out_of_the_data_term():
    """The fit treats saturated pixels as unobserved (as inpainting treats its holes): the
    output there changes nothing in the loss, while the passes after the fit still see the
    data (lowered), not zeros."""
    import torch

    from napari_dip_spectral.engine.job import RestoreJob

    _, counts, beads = nuclei_counts(2)
    job = RestoreJob(counts, "denoise", device="cpu", iterations=2)
    units, _, _ = job.units(None)
    obs, masks, _ = job.batch(units)
    np.testing.assert_array_equal(masks[0, 0] == 0, beads)
    operator = job.operator(masks, [plane for plane, _ in units])
    x = torch.rand(obs.shape)
    moved = x.clone()
    moved[0, 0][torch.from_numpy(beads)] = 5.0
    assert torch.equal(operator.loss_per_group(x, obs), operator.loss_per_group(moved, obs))
    other = obs.clone()  # nor does the observation's value there
    other[0, 0][torch.from_numpy(beads)] = 0.0
    assert torch.equal(operator.loss_per_group(x, obs), operator.loss_per_group(x, other))
    assert (job.unit[0, 0][beads] == job.unit[0, 0][~beads].max()).all()
    clean, _, _ = nuclei_counts(2)
    assert RestoreJob(clean, "denoise", device="cpu", iterations=2).masks is None


def test_planes_never_restored_stay_nan():
    """A cancelled run marks the planes it never reached NaN; they get no recorded values."""
    result = np.zeros((2, 4, 4), np.float32)
    result[1] = np.nan
    mask = np.zeros(result.shape, bool)
    mask[:, 1, 1] = True
    restore_saturated(result, mask, 65535)
    assert result[0, 1, 1] == 65535 and np.isnan(result[1]).all()


def test_the_result_keeps_saturated_pixels_as_recorded():
    _, counts, beads = nuclei_counts(1)
    before = counts.copy()
    result = restore(counts, "denoise", **FAST)
    np.testing.assert_array_equal(counts, before)
    assert result.saturated == beads.sum()
    assert (result.image[beads] == 65535).all()
    # the rest is restored on the scale of the unsaturated data, not pulled towards the beads
    assert result.image[~beads].max() < 2 * counts[~beads].max()
    paper = restore(counts, "denoise", profile="paper", iterations=5, channels=8, levels=3, device="cpu")
    assert paper.saturated == 0


@pytest.mark.parametrize("seed", range(2))
def test_beads_no_longer_squeeze_the_fit(seed):
    """With the beads lowered, the fit sees the nuclei over the whole range it is normalised
    to: over the pixels away from the beads its result stays close to the one without beads,
    where fitting the beads as recorded (the paper profile's behaviour) moved it further."""
    clean, counts, beads = nuclei_counts(seed)
    away = ~(gaussian_filter(beads.astype(float), 2) > 0.01)
    known = {"gain": 50.0, "offset": 100.0, "read_noise": 20.0}  # the same transform for all three
    options = dict(FAST, iterations=60, hot_pixels=False, anscombe=known)
    without = restore(clean, "denoise", **options).image[away]
    lowered = restore(counts, "denoise", **options).image[away]
    unflagged = np.where(beads, 60000, counts).astype(np.uint16)
    unflagged[np.argwhere(beads)[0][0], np.argwhere(beads)[0][1]] = 60001  # no pile-up, no type maximum
    as_given = restore(unflagged, "denoise", **options)
    assert as_given.saturated == 0
    as_given = as_given.image[away]
    assert np.abs(lowered - without).mean() < 0.5 * np.abs(as_given - without).mean()


def test_gaussian_noise_clipped_to_the_range_is_not_saturation():
    """A photo with Gaussian noise clipped to [0, 1] piles pixels up at both ends: noise, not
    a bound. They stay in the fit and the result is not reset to 0 or 1 there."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:48, :48] / 48
    clean = 0.5 + 0.5 * np.sin(5 * xx) * np.cos(3 * yy)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    assert clipping_levels(noisy) == (0.0, 1.0)  # it looks clipped
    result = restore(noisy, anscombe=False, **FAST)
    assert result.saturated == 0
    assert not np.any(result.image[noisy == 1.0] == 1.0)
    image, mask, level = lower_saturated_for(noisy, "denoise", "default", photon_noise=False)
    assert image is noisy and mask is None and level is None
    assert lower_saturated_for(noisy, "denoise", "default", photon_noise=True)[1] is not None
