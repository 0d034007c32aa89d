"""The Poisson-Gaussian noise model estimated from the data (noise/noise_fit.py), the transform's
round trip, and restore()'s automatic noise model."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_dip_spectral import restore
from napari_dip_spectral.noise.anscombe import PoissonGaussian
from napari_dip_spectral.noise.noise_fit import estimate_noise, resolve_anscombe, sample_planes

from .conftest import smooth_image

FAST = dict(iterations=6, channels=8, levels=2, device="cpu")


def blobs(size: int, seed: int) -> np.ndarray:
    """A fluorescence-like scene in [0, 1]: bright blurred blobs on a dark background."""
    rng = np.random.default_rng(seed)
    scene = np.zeros((size, size))
    points = rng.integers(0, size, (size // 4, 2))
    scene[tuple(points.T)] = rng.uniform(0.3, 1.0, len(points))
    scene = gaussian_filter(scene, 4) + 0.05 * gaussian_filter(rng.random((size, size)), 8)
    return (scene - scene.min()) / (scene.max() - scene.min())


def camera(scene, gain, offset, read_noise, photons, seed, clip=(None, None)):
    rng = np.random.default_rng(seed)
    counts = offset + gain * rng.poisson(photons * scene) + rng.normal(0, read_noise, scene.shape)
    lo = -np.inf if clip[0] is None else clip[0]
    hi = np.inf if clip[1] is None else clip[1]
    return np.clip(np.round(counts), lo, hi)


# gain, offset, read noise, photons at full scale, clipping: the range of cameras and light
# levels of fluorescence microscopy, with a camera offset, a saturated top and a clipped bottom
CASES = [
    (1.0, 0.0, 0.0, 100, (None, None)),  # pure photon counts
    (10.0, 100.0, 20.0, 50, (None, None)),
    (50.0, 1000.0, 5.0, 20, (None, None)),  # sCMOS-like: large offset, low read noise
    (2.0, 0.0, 10.0, 200, (0, 300)),  # saturates at the top
    (100.0, 500.0, 200.0, 5, (0, None)),  # a few photons, read noise dominant
    (0.5, 100.0, 3.0, 1000, (None, None)),  # bright
    (20.0, 0.0, 2.0, 100, (0, 1500)),
    # photon counting at a few photons: most pixels dark, the residuals discrete
    (50.0, 100.0, 1.0, 2, (None, None)),
]


@pytest.mark.parametrize("gain, offset, read_noise, photons, clip", CASES)
def test_estimate_matches_the_true_noise_model(gain, offset, read_noise, photons, clip):
    """Stated accuracy: the gain within 30 %, and the predicted noise standard deviation
    within 20 % of the true one at every level between the 10th and 90th percentile of the
    noise-free signal that is not clipped."""
    scene = blobs(256, seed=int(gain * 7 + photons))
    data = camera(scene, gain, offset, read_noise, photons, seed=1, clip=clip)
    estimate = estimate_noise(data.astype(np.uint16))
    assert estimate.signal_dependent
    assert estimate.gain == pytest.approx(gain, rel=0.3)
    signal = offset + gain * photons * scene
    levels = np.percentile(signal, [10, 50, 90])
    if clip[1] is not None:
        levels = levels[levels < clip[1] - 3 * np.sqrt(gain * clip[1])]
    true_std = np.sqrt(gain * (levels - offset) + read_noise**2 + 1 / 12)  # + rounding
    np.testing.assert_allclose(np.sqrt(estimate.variance(levels)), true_std, rtol=0.2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("photons, read_noise, dtype", [(5, 5.0, np.uint16), (20, 20.0, np.uint16), (5, 5.0, np.int16)])
def test_a_few_saturated_pixels_do_not_move_the_estimate(seed, photons, read_noise, dtype):
    """Pixels at the integer type's maximum are saturated however few they are (under the
    0.2 % that marks a pile-up). Twenty hot pixels and a 3 x 3 saturated bead pulled the gain
    to a third or to nothing and hid the photon noise, which sent the run without the
    transform; left out with every pixel whose level window holds one, they move it by a few
    per cent."""
    scene = discs(128, seed)
    data = camera(scene, 50.0, 100.0, read_noise, photons, seed=seed, clip=(0, None)).astype(dtype)
    rng = np.random.default_rng(seed)
    spoiled = data.copy()
    top = np.iinfo(dtype).max
    spoiled.flat[rng.choice(data.size, 20, replace=False)] = top
    y, x = rng.integers(10, 118, 2)
    spoiled[y - 1 : y + 2, x - 1 : x + 2] = top
    assert np.count_nonzero(spoiled == top) <= 0.002 * data.size  # not a pile-up
    clean, estimate = estimate_noise(data), estimate_noise(spoiled)
    assert estimate.signal_dependent and clean.signal_dependent
    assert estimate.gain == pytest.approx(clean.gain, rel=0.1)
    assert estimate.gain == pytest.approx(50.0, rel=0.3)


def discs(size: int, seed: int) -> np.ndarray:
    """Nuclei-like: sharp-edged discs of different brightness on a dark background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    scene = np.zeros((size, size))
    for _ in range(size // 6):
        cy, cx = rng.integers(0, size, 2)
        radius = rng.uniform(3, 10)
        scene[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = rng.uniform(0.4, 1.0)
    return 0.05 + 0.95 * gaussian_filter(scene, 0.7)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gain, offset, read_noise, photons", [(50.0, 100.0, 100.0, 100), (10.0, 0.0, 20.0, 500)])
def test_sharp_edges_do_not_bend_the_line(seed, gain, offset, read_noise, photons):
    """Pixels by an edge have a local mean far from their own level; grouped by that mean
    they flattened the fitted line (gain down to 0.42x, the noise at the bright end 0.69x).
    Stated accuracy here: gain within 30 %, noise deviation within 15 % at the 10th, 50th
    and 90th percentile of the signal."""
    scene = discs(128, seed)
    data = camera(scene, gain, offset, read_noise, photons, seed=seed, clip=(0, None)).astype(np.uint16)
    estimate = estimate_noise(data)
    assert estimate.gain == pytest.approx(gain, rel=0.3)
    levels = np.percentile(offset + gain * photons * scene, [10, 50, 90])
    true_std = np.sqrt(gain * (levels - offset) + read_noise**2)
    np.testing.assert_allclose(np.sqrt(estimate.variance(levels)), true_std, rtol=0.15)


@pytest.mark.parametrize("seed", range(3))
def test_the_dark_level_is_not_above_the_data(seed):
    """The offset the inverse transform maps zero photons to: pixels by clipped ones are
    left out of the fit, but the offset must not rise above the dark end of the data they
    are part of (every darker pixel would be lifted to it: 0.6 dB on this photo)."""
    from skimage import data

    scene = data.camera()[128:384, 128:384] / 255.0
    counts = camera(scene, 50.0, 100.0, 100.0, 100, seed=seed, clip=(0, None)).astype(np.uint16)
    estimate = estimate_noise(counts)
    assert np.count_nonzero(counts == 0) > 0.002 * counts.size  # a clipped dark end
    assert estimate.offset <= np.percentile(100.0 + 50.0 * 100 * scene, 2)
    assert estimate.gain == pytest.approx(50.0, rel=0.3)


def test_a_stack_is_estimated_from_all_its_planes():
    scene = np.stack([blobs(96, seed=s) for s in range(6)])
    data = camera(scene, 8.0, 200.0, 6.0, 40, seed=2)
    estimate = estimate_noise(data, plane_axes=(1, 2))
    assert estimate.signal_dependent and estimate.gain == pytest.approx(8.0, rel=0.2)
    # the same stack with Z last
    moved = estimate_noise(np.moveaxis(data, 0, -1), plane_axes=(0, 1))
    assert moved.gain == pytest.approx(estimate.gain, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_gaussian_noise_is_not_taken_for_photon_noise(seed):
    rng = np.random.default_rng(seed)
    clean = blobs(128, seed)
    sigma = rng.uniform(0.02, 0.1)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1)
    estimate = estimate_noise(noisy)
    assert not estimate.signal_dependent
    assert resolve_anscombe("auto", noisy, "denoise") == (None, estimate)
    mid = np.median(clean)
    assert np.sqrt(estimate.variance(mid)) == pytest.approx(sigma, rel=0.25)


def test_noise_free_and_flat_images():
    raw = (200 + smooth_image(128) * 3000).astype(np.uint16)  # structure, no noise
    assert not estimate_noise(raw).signal_dependent
    with pytest.raises(ValueError, match=r"no noise|too few"):
        estimate_noise(np.full((64, 64), 7, np.uint16))
    assert resolve_anscombe("auto", np.full((64, 64), 7, np.uint16), "denoise") == (None, None)
    with pytest.raises(ValueError, match="too small"):
        estimate_noise(np.zeros((4, 40)))
    with pytest.raises(ValueError, match="NaN"):
        estimate_noise(np.full((32, 32), np.nan))


def test_resolve_anscombe_options():
    data = camera(blobs(128, 0), 4.0, 100.0, 3.0, 50, seed=0)
    model, estimate = resolve_anscombe("auto", data, "denoise")
    assert isinstance(model, PoissonGaussian) and estimate.signal_dependent
    assert model.gain == estimate.gain
    # the transform needs only gain and the variance at level 0; the split keeps that
    assert model.read_noise**2 - model.gain * model.offset == pytest.approx(estimate.floor)
    assert resolve_anscombe("auto", data, "inpaint") == (None, None)  # denoising only
    assert resolve_anscombe(False, data, "denoise") == (None, None)
    given, none = resolve_anscombe({"gain": 2.0}, data, "denoise")
    assert given == PoissonGaussian(gain=2.0) and none is None
    with pytest.raises(ValueError, match="anscombe must be"):
        resolve_anscombe("yes", data, "denoise")


def test_sample_planes_takes_even_planes_of_numpy_and_dask():
    da = pytest.importorskip("dask.array")
    stack = np.arange(40 * 8 * 9).reshape(40, 8, 9)
    picked = sample_planes(stack, (1, 2), limit=5)
    assert picked.shape == (5, 8, 9) and np.array_equal(picked[0], stack[0])
    assert np.array_equal(picked[-1], stack[-1])
    lazy = sample_planes(da.from_array(stack, chunks=(4, 8, 9)), (1, 2), limit=5)
    assert isinstance(lazy, np.ndarray) and np.array_equal(lazy, picked)


@pytest.mark.parametrize("inverse", ["algebraic", "unbiased"])
def test_transform_round_trip(inverse):
    model = PoissonGaussian(gain=3.0, offset=100.0, read_noise=4.0, inverse=inverse)
    levels = np.linspace(100.0, 3000.0, 50)
    back = model.inverse_transform(model.forward(levels))
    if inverse == "algebraic":  # exact where the value is above the transform's floor
        np.testing.assert_allclose(back, levels, rtol=1e-4, atol=0.05)
    # the unbiased inverse is exact on average over the noise, not pointwise
    rng = np.random.default_rng(0)
    for photons in (2.0, 10.0, 200.0):
        z = 100 + 3.0 * rng.poisson(photons, 200_000) + rng.normal(0, 4.0, 200_000)
        mean_back = model.inverse_transform(np.float32(model.forward(z).mean()))
        if inverse == "unbiased":
            assert mean_back == pytest.approx(100 + 3.0 * photons, abs=0.05 * 3.0 * photons + 0.5)


def test_restore_uses_the_estimated_model_by_default():
    data = camera(blobs(64, 3), 6.0, 300.0, 4.0, 30, seed=4).astype(np.uint16)
    before = data.copy()
    result = restore(data, "denoise", **FAST)
    assert np.array_equal(data, before)
    estimate, model = result.noise_estimate, result.anscombe
    assert estimate.signal_dependent and model is not None
    assert model.gain == pytest.approx(6.0, rel=0.3)
    assert result.image.shape == data.shape and np.isfinite(result.image).all()
    # intensities come back in the data's own units
    assert data.min() <= np.median(result.image) <= data.max()
    off = restore(data, "denoise", anscombe=False, **FAST)
    assert off.anscombe is None and off.noise_estimate is None
    stack = restore(np.stack([data, data]), "denoise", axes="ZYX", **FAST)
    assert stack.noise_estimate.signal_dependent
    assert stack.anscombe.gain == pytest.approx(6.0, rel=0.3)


def test_photon_noise_denoising_uses_the_narrower_decoder_unless_told():
    rng = np.random.default_rng(3)
    # bright enough (a stabilised range of about 17) for 64 channels; a weaker signal gets 32
    # on a CPU (test_widths.py)
    counts = (100 + 6 * rng.poisson(200 * smooth_image(64) + 2)).astype(np.uint16)
    assert restore(counts, iterations=1, device="cpu").config.channels == 64
    assert restore(counts, iterations=1, device="cpu", channels=96).config.channels == 96
    # without the transform the grey Gaussian rule decides: 64 on a CPU (test_widths.py)
    assert restore(counts, iterations=1, device="cpu", anscombe=False).config.channels == 64
    assert restore(counts, iterations=1, device="cpu", profile="paper").config.channels == 128
