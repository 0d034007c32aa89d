"""The grouped estimates of a plane (refinement/block_matching.py): Wiener guided by a pilot, and hard threshold."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_dip_spectral.refinement.block_matching import grouped_threshold, grouped_wiener, match_blocks
from napari_dip_spectral.refinement.wiener_pass import BLOCK_2D, wiener_pass


def spots(size: int = 64, seed: int = 0) -> np.ndarray:
    """The same small bright spot at scattered places: structure that repeats across the plane."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.float32)
    for y, x in rng.integers(4, size - 12, (14, 2)):
        image[y : y + 7, x : x + 7] = np.outer(np.hanning(7), np.hanning(7))
    return image


def test_each_group_is_its_reference_then_the_nearest_blocks_within_the_radius():
    rng = np.random.default_rng(1)
    pilot = gaussian_filter(rng.random((24, 20)), 1.0)
    block, radius, k = 4, 3, 5
    ry, rx = np.array([0, 9, 20]), np.array([0, 7, 16])
    (ys, xs), distance = match_blocks(pilot, (ry, rx), (block, block), (radius, radius), k)
    assert ys.shape == xs.shape == distance.shape == (3, k)
    assert distance[:, 0].max() == 0 and (np.diff(distance, axis=1) >= 0).all()  # nearest first
    for n in range(3):
        assert (ys[n, 0], xs[n, 0]) == (ry[n], rx[n])
        ref = pilot[ry[n] : ry[n] + block, rx[n] : rx[n] + block]
        brute = sorted(
            ((pilot[y : y + block, x : x + block] - ref) ** 2).sum()
            for y in range(max(ry[n] - radius, 0), min(ry[n] + radius, 24 - block) + 1)
            for x in range(max(rx[n] - radius, 0), min(rx[n] + radius, 20 - block) + 1)
            if (y, x) != (ry[n], rx[n])
        )[: k - 1]
        got = [((pilot[y : y + block, x : x + block] - ref) ** 2).sum() for y, x in zip(ys[n, 1:], xs[n, 1:])]
        np.testing.assert_allclose(sorted(got), brute, rtol=1e-9)


def test_grouping_repeated_structure_beats_filtering_each_neighbourhood_alone():
    rng = np.random.default_rng(2)
    clean = spots()
    sigma = 0.3
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    pilot = gaussian_filter(clean, 1.5)  # a smooth estimate that has not taken in the noise
    kept = data.copy(), pilot.copy()
    grouped = grouped_wiener(data, pilot, sigma)
    alone = wiener_pass(data, pilot, sigma, BLOCK_2D)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(grouped) < 0.85 * error(alone) and error(grouped) < 0.1 * error(data)
    assert grouped.dtype == np.float32 and grouped.shape == data.shape
    assert np.array_equal(data, kept[0]) and np.array_equal(pilot, kept[1])
    # no noise: nothing to shrink, the data come back
    np.testing.assert_allclose(grouped_wiener(clean, clean, 0.0), clean, atol=1e-5)


def test_groups_are_formed_on_the_image_given_to_match_on():
    """A colour difference has little structure of its own: grouped on a guide that carries
    the structure (the luminance), its estimate comes closer to the truth."""
    rng = np.random.default_rng(2)
    clean = 0.15 * spots(seed=2)  # the structure, faint, as in a colour difference
    sigma = 0.1
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    pilot = (gaussian_filter(clean, 1.5) + rng.normal(0, 0.03, clean.shape)).astype(np.float32)
    guide = gaussian_filter(spots(seed=2), 1.5).astype(np.float32)  # the same structure, strong
    own = grouped_wiener(data, pilot, sigma)
    np.testing.assert_array_equal(grouped_wiener(data, pilot, sigma, pilot), own)
    guided = grouped_wiener(data, pilot, sigma, guide)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert error(guided) < 0.9 * error(own)  # 0.79 when written


def test_planes_that_share_a_guide_are_matched_once_and_filtered_as_one_at_a_time(monkeypatch):
    import napari_dip_spectral.refinement.block_matching as module

    rng = np.random.default_rng(4)
    clean = np.stack([spots(seed=4), 0.2 * spots(seed=4), 0.1 * spots(seed=5)])
    data = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    pilot = gaussian_filter(clean, (0, 1.5, 1.5)).astype(np.float32)
    one_by_one = np.stack([grouped_wiener(data[c], pilot[c], 0.1, pilot[0]) for c in range(3)])
    calls = []
    real = module.match_blocks
    monkeypatch.setattr(module, "match_blocks", lambda *args: calls.append(1) or real(*args))
    together = grouped_wiener(data, pilot, 0.1, pilot[0])
    assert together.shape == data.shape and together.dtype == np.float32
    np.testing.assert_allclose(together, one_by_one, rtol=1e-5, atol=1e-6)
    assert len(calls) == 1  # one band of references, matched once for the three planes
    with pytest.raises(ValueError, match="to match on"):
        grouped_wiener(data, pilot, 0.1, pilot[0, :, :10])  # not the planes' shape


def test_a_large_plane_in_bands_of_reference_rows_gives_the_same_values(monkeypatch):
    import napari_dip_spectral.refinement.block_matching as module

    rng = np.random.default_rng(3)
    data = rng.random((70, 45)).astype(np.float32)
    pilot = gaussian_filter(data, 1.0)
    whole = grouped_wiener(data, pilot, 0.1)
    monkeypatch.setattr(module, "BAND_REFS", 20)  # one or two rows of references per band
    monkeypatch.setattr(module, "CHUNK_REFS", 3)  # and a few groups at a time
    np.testing.assert_allclose(grouped_wiener(data, pilot, 0.1), whole, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(module, "MIN_BAND_REFS", 1)  # bands on several cores at once
    monkeypatch.setattr(module.os, "cpu_count", lambda: 3)
    np.testing.assert_allclose(grouped_wiener(data, pilot, 0.1), whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 9), (5, 3), (9, 9), (8, 30)])
def test_small_and_thin_planes_give_finite_values(shape):
    rng = np.random.default_rng(4)
    data = rng.random(shape).astype(np.float32)
    out = grouped_wiener(data, gaussian_filter(data, 1.0), 0.1)
    assert out.shape == shape and np.isfinite(out).all()


def test_the_hard_threshold_needs_no_pilot_and_guides_the_wiener_estimate_nearer_the_truth():
    """BM3D's two stages: the thresholded groups alone remove most of the noise, and as the
    pilot of the grouped Wiener estimate they bring it nearer the clean image still."""
    rng = np.random.default_rng(3)
    clean = spots()
    sigma = 0.2
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    kept = data.copy()
    pilot = grouped_threshold(data, sigma)
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert pilot.dtype == np.float32 and pilot.shape == data.shape
    assert error(pilot) < 0.2 * error(data)
    assert error(grouped_wiener(data, pilot, sigma)) < 0.8 * error(pilot)
    assert np.array_equal(data, kept)
    # no noise: no coefficient is under the threshold, the data come back
    np.testing.assert_allclose(grouped_threshold(clean, 0.0), clean, atol=1e-5)
    # a coefficient is kept from 2.7 sigma up: far above the data's, everything but the
    # groups' means is set to zero, and the estimate is a local mean
    flat = grouped_threshold(data, 100.0)
    assert flat.std() < 0.5 * data.std()


def test_under_strong_noise_the_hard_threshold_still_groups_blocks():
    """Two noisy copies of one block lie 2 sigma^2 apart on average, more than BM3D's fixed
    threshold once sigma passes ~0.14: the threshold counts from that floor, so at sigma 0.2
    and 0.3 the blocks of a repeated pattern are still grouped and averaged (with the fixed
    threshold nearly every group was its reference block alone: 0.081 and 0.095 root mean
    squared error here against 0.034 and 0.066)."""
    rng = np.random.default_rng(0)
    x = np.arange(64)
    clean = np.broadcast_to(0.3 + 0.4 * (np.sin(x / 3.0) > 0), (64, 64)).astype(np.float64)
    rmse = lambda e: float(np.sqrt(np.mean((e - clean) ** 2)))  # noqa: E731
    for sigma, bound in ((0.2, 0.05), (0.3, 0.08)):
        data = clean + rng.normal(0, sigma, clean.shape)
        assert rmse(grouped_threshold(data, sigma)) < bound


def test_a_volume_is_grouped_in_cubes_and_beats_its_planes_grouped_one_by_one():
    """Given a volume and nothing to match on, the groups are of cubes matched across it
    (BM4D's grouping): structure that extends from plane to plane (as nuclei do through a
    confocal stack), under noise that does not, comes nearer the truth by the two stages over
    the volume than by the same stages plane by plane."""
    rng = np.random.default_rng(6)
    raw = gaussian_filter(rng.random((12, 40, 40)), (3, 1.5, 1.5))  # smoother along Z
    clean = ((raw - raw.min()) / (raw.max() - raw.min())).astype(np.float32)
    sigma = 0.1
    data = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    kept = data.copy()
    volume = grouped_wiener(data, grouped_threshold(data, sigma), sigma)
    planes = np.stack([grouped_wiener(p, grouped_threshold(p, sigma), sigma) for p in data])
    error = lambda x: float(np.mean((x - clean) ** 2))  # noqa: E731
    assert volume.shape == data.shape and volume.dtype == np.float32
    assert error(volume) < 0.7 * error(planes)  # 0.47 when written
    assert error(volume) < 0.15 * error(data)  # 0.07
    assert np.array_equal(data, kept)
    np.testing.assert_allclose(grouped_threshold(clean, 0.0), clean, atol=1e-5)


def test_cubes_are_matched_in_three_dimensions():
    rng = np.random.default_rng(7)
    pilot = gaussian_filter(rng.random((9, 14, 12)), 1.0)
    sides, radii, k = (3, 4, 4), (2, 3, 3), 6
    refs = (np.array([0, 4, 6]), np.array([0, 5, 10]), np.array([8, 3, 0]))
    corners, distance = match_blocks(pilot, refs, sides, radii, k)
    assert len(corners) == 3 and distance.shape == (3, k)
    cut = lambda z, y, x: pilot[z : z + 3, y : y + 4, x : x + 4]  # noqa: E731
    for n in range(3):
        r = tuple(int(a[n]) for a in refs)
        assert tuple(int(c[n, 0]) for c in corners) == r
        brute = sorted(
            ((cut(z, y, x) - cut(*r)) ** 2).mean()
            for z in range(max(r[0] - 2, 0), min(r[0] + 2, 9 - 3) + 1)
            for y in range(max(r[1] - 3, 0), min(r[1] + 3, 14 - 4) + 1)
            for x in range(max(r[2] - 3, 0), min(r[2] + 3, 12 - 4) + 1)
            if (z, y, x) != r
        )[: k - 1]
        np.testing.assert_allclose(distance[n, 1:], brute, rtol=1e-9)


@pytest.mark.parametrize("shape", [(1, 9, 9), (2, 5, 30), (3, 12, 7)])
def test_thin_volumes_give_finite_values(shape):
    rng = np.random.default_rng(8)
    data = rng.random(shape).astype(np.float32)
    out = grouped_wiener(data, grouped_threshold(data, 0.1), 0.1)
    assert out.shape == shape and np.isfinite(out).all()


def test_a_large_volume_in_bands_of_reference_rows_gives_the_same_values(monkeypatch):
    import napari_dip_spectral.refinement.block_matching as module

    rng = np.random.default_rng(9)
    data = rng.random((5, 30, 17)).astype(np.float32)
    whole = grouped_threshold(data, 0.1)
    monkeypatch.setattr(module, "BAND_REFS", 30)
    monkeypatch.setattr(module, "MIN_BAND_REFS", 1)
    monkeypatch.setattr(module.os, "cpu_count", lambda: 3)
    np.testing.assert_allclose(grouped_threshold(data, 0.1), whole, rtol=1e-5, atol=1e-6)
