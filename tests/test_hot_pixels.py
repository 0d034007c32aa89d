"""Hot pixels (noise/hot_pixels.py): found in camera counts without touching real structure,
replaced in a copy, reported, and automatic only where the data are photon counts."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_dip_spectral import restore
from napari_dip_spectral.noise.hot_pixels import find_hot_pixels, replace_hot_pixels, resolve_hot_pixels, resolve_noise
from napari_dip_spectral.noise.noise_fit import estimate_noise
from napari_dip_spectral.presets import check_settings

GAIN, OFFSET, READ = 20.0, 100.0, 3.0


def spots(size: int, seed: int, peak_photons: float) -> np.ndarray:
    """Expected photo-electrons: point sources blurred by a PSF of sigma 1 pixel (sampled at
    Nyquist: the sharpest real structure a microscope delivers), from dim to very bright."""
    rng = np.random.default_rng(seed)
    scene = np.zeros((size, size))
    points = rng.integers(2, size - 2, (size // 2, 2))
    scene[tuple(points.T)] = rng.uniform(0.05, 1.0, len(points))
    scene = gaussian_filter(scene, 1.0)
    return 1.0 + peak_photons * scene / scene.max()


def counts_of(photons: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = OFFSET + GAIN * rng.poisson(photons) + rng.normal(0, READ, photons.shape)
    return np.clip(np.round(counts), 0, 65535).astype(np.uint16)


def with_hot(counts: np.ndarray, n: int, seed: int, value=65535) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = counts.copy()
    index = rng.choice(out.size, n, replace=False)
    out.flat[index] = value
    return out, index


@pytest.mark.parametrize("peak", [20.0, 300.0, 3000.0])
def test_real_spots_are_not_hot_pixels_and_hot_pixels_are_found(peak):
    counts = counts_of(spots(96, 0, peak), 1)
    assert not find_hot_pixels(counts)[0].any()  # at any brightness, a PSF-wide spot is kept
    hot_counts, index = with_hot(counts, 12, 2)
    hot, median = find_hot_pixels(hot_counts)
    assert hot.flat[index].all() and hot.sum() == 12
    # the replacement is the neighbours' level, far below the saturated value
    assert np.all(median.flat[index] < 0.5 * 65535)


def test_replacement_is_a_copy_of_the_same_dtype_on_the_image_plane_axes():
    clean = counts_of(spots(40, 3, 200.0), 4)
    stack = np.stack([clean, clean, clean])  # Z, Y, X
    stack[1, 10, 12] = 65535
    stack[2, 30, 5] = 60000
    before = stack.copy()
    out, n = replace_hot_pixels(stack, (1, 2))
    assert n == 2 and out.dtype == np.uint16 and out is not stack
    np.testing.assert_array_equal(stack, before)  # the input is never changed
    assert out[1, 10, 12] < 5000 and out[2, 30, 5] < 5000
    changed = out != stack
    assert changed.sum() == 2
    # Y and X last or not: the same pixels are found with the axes moved
    moved, m = replace_hot_pixels(np.moveaxis(stack, 0, -1), (0, 1))  # Y, X, Z
    assert m == 2
    np.testing.assert_array_equal(np.moveaxis(moved, -1, 0), out)
    same, none = replace_hot_pixels(clean, (0, 1))
    assert none == 0 and same is clean


def test_automatic_only_for_denoising_photon_counts_with_the_default_profile():
    assert resolve_hot_pixels(None, "denoise", "default") is None  # look, keep only for photon counts
    assert resolve_hot_pixels(None, "denoise", "paper") is False
    assert resolve_hot_pixels(None, "inpaint", "default") is False
    assert resolve_hot_pixels(True, "inpaint", "paper") is True
    assert resolve_hot_pixels(False, "denoise", "default") is False
    with pytest.raises(ValueError, match="hot_pixels"):
        resolve_hot_pixels("yes", "denoise", "default")
    assert check_settings("denoise", {"hot_pixels": False}) == {"hot_pixels": False}
    with pytest.raises(ValueError, match="hot_pixels"):
        check_settings("denoise", {"hot_pixels": 1})
    # a photo with Gaussian noise has no noise model: what looked hot is kept as it was
    rng = np.random.default_rng(0)
    photo = gaussian_filter(rng.random((64, 64)), 1.5)
    photo = (photo - photo.min()) / (photo.max() - photo.min()) + rng.normal(0, 0.01, photo.shape)
    photo[20, 20] = 3.0
    same, model, _, n = resolve_noise("auto", photo, "denoise", "default", "YX")
    assert model is None and n == 0 and same is photo
    forced, _, _, m = resolve_noise("auto", photo, "denoise", "default", "YX", hot_pixels=True)
    assert m >= 1 and forced[20, 20] < 2


def test_the_noise_model_is_estimated_without_the_hot_pixels():
    """Hot pixels of different values below saturation (the noise model leaves saturated
    ones, or a pile-up at one value, out by itself)."""
    counts = counts_of(spots(128, 5, 100.0), 6)
    hot_counts, _ = with_hot(counts, 40, 7, value=np.linspace(20000, 40000, 40).astype(np.uint16))
    cleaned, model, estimate, n = resolve_noise("auto", hot_counts, "denoise", "default", "YX")
    assert n == 40 and model is not None and cleaned.max() < 20000
    assert abs(estimate.gain - GAIN) < 0.15 * GAIN
    # estimated from the data with the hot pixels replaced, not from the data as given
    assert estimate == estimate_noise(cleaned) != estimate_noise(hot_counts)
    kept, _, _, none = resolve_noise("auto", hot_counts, "denoise", "default", "YX", hot_pixels=False)
    assert none == 0 and kept is hot_counts


def test_restore_reports_the_replaced_pixels_and_keeps_the_input():
    counts = counts_of(spots(64, 5, 100.0), 9)  # photon counts the noise fit recognises
    hot_counts, index = with_hot(counts, 5, 10)
    before = hot_counts.copy()
    fast = dict(iterations=4, channels=8, levels=2, device="cpu")
    result = restore(hot_counts, "denoise", **fast)
    np.testing.assert_array_equal(hot_counts, before)
    assert result.hot_pixels == 5
    assert np.all(result.image.flat[index] < 10000)  # not the saturated values
    assert restore(hot_counts, "denoise", hot_pixels=False, **fast).hot_pixels == 0


@pytest.mark.parametrize("peak", [0.5, 2.0])
def test_single_photons_in_the_dark_are_not_hot_pixels(peak):
    """Where most pixels hold no photon, one photo-electron stands far above its neighbours
    in the square root; it is signal, and must be kept."""
    photons = spots(96, 11, peak) - 1.0 + 0.05  # a dark background, spots of a photon or two
    counts = counts_of(photons, 12)
    assert (counts > OFFSET + GAIN / 2).mean() > 0.02  # many pixels hold a photon
    assert not find_hot_pixels(counts)[0].any()
    hot_counts, index = with_hot(counts, 6, 13)
    assert find_hot_pixels(hot_counts)[0].flat[index].all()
