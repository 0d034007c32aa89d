"""nD images: axes, planes, batching, normalisation, dtype round trip, tiling, Anscombe."""

import numpy as np
import pytest

from napari_dip_spectral import restore
from napari_dip_spectral.core import solver
from napari_dip_spectral.engine.events import StackEvent
from napari_dip_spectral.engine.job import RestoreJob as StackJob
from napari_dip_spectral.engine.layout import guess_axes, make_layout, parse_axes
from napari_dip_spectral.engine.tiling import blend_weights, plan_tiles, tile_starts
from napari_dip_spectral.noise.anscombe import PoissonGaussian

from .conftest import smooth_image

FAST = dict(iterations=5, channels=8)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((32, 32), "YX"),
        ((32, 32, 3), "YXC"),
        ((4, 32, 32), "ZYX"),
        ((2, 4, 32, 32), "TZYX"),
        ((2, 4, 32, 32, 3), "TZYXC"),
    ],
)
def test_guess_axes(shape, expected):
    assert guess_axes(shape) == expected


def test_axes_guess_warns_and_bad_axes_raise():
    with pytest.warns(UserWarning, match="ZYX"):
        assert parse_axes(None, (3, 16, 16)) == "ZYX"
    for bad in ("ZYQ", "ZZX", "ZY", "CSYX"):
        with pytest.raises(ValueError, match="axes"):
            parse_axes(bad, (3, 16, 16) if len(bad) == 3 else (2, 3, 16, 16))


def test_layout_round_trip(rng):
    x = rng.random((2, 3, 16, 20))
    for axes, mode in (("TCYX", "independent"), ("TCYX", "joint"), ("CTYX", "auto")):
        layout = make_layout(x.shape, axes, mode)
        planes = layout.to_planes(x)
        assert planes.shape == ((6, 1) if mode != "joint" else (2, 3)) + (16, 20)
        assert np.array_equal(layout.from_planes(planes), x)


def test_zyx_every_plane_restored_input_untouched(rng):
    x = rng.random((3, 32, 32)).astype(np.float32)
    before = x.copy()
    events = []
    r = restore(x, axes="ZYX", callback=events.append, stack_prior="planes", **FAST)
    assert np.array_equal(x, before)
    assert r.image.shape == x.shape and r.image.dtype == np.float32
    assert np.isfinite(r.image).all()
    assert len(r.plane_histories) == 3 and all(r.plane_histories)
    assert all(isinstance(e, StackEvent) and e.n_planes == 3 for e in events)
    assert {p for e in events for p in e.planes} == {0, 1, 2}


def test_tyx_one_by_one_equals_2d_restore(rng):
    x = rng.random((2, 32, 32)).astype(np.float32)
    r = restore(x, axes="TYX", batch_size=1, normalize_per="plane", warm_start=False, **FAST)
    for t in range(2):
        single = restore(x[t], **FAST)
        np.testing.assert_array_equal(r.image[t], single.image)


def test_batched_planes_share_one_network(rng):
    x = rng.random((4, 32, 32)).astype(np.float32)
    events = []
    r = restore(x, axes="TYX", batch_size=4, callback=events.append, **FAST)
    assert r.batch_size == 4
    assert {e.batches for e in events} == {1} and events[0].planes == (0, 1, 2, 3)


def test_cyx_channels_independent(rng):
    x = rng.random((3, 32, 32)).astype(np.float32) * np.array([1, 10, 100], np.float32)[:, None, None]
    r = restore(x, axes="CYX", **FAST)
    assert r.joint_channels is None and len(r.plane_histories) == 3
    # per-stack normalisation keeps one range per channel, so each channel stays in its own range
    for c, scale in enumerate((1, 10, 100)):
        assert r.image[c].max() <= scale * x[c].max() / scale + 1e-4
        assert r.normalizations[c].high == pytest.approx(float(x[c].max()))


def test_rgb_yxc_matches_colour_path(rng):
    x = rng.random((32, 32, 3)).astype(np.float32)
    plain = restore(x, **FAST)  # the 2-D colour path, unchanged
    for axes in ("YXC", "YXS"):
        r = restore(x, axes=axes, **FAST)
        assert r.joint_channels == axes[-1]
        np.testing.assert_array_equal(r.image, plain.image)


def test_uint16_round_trip_stays_in_range(rng):
    x = rng.integers(100, 4001, size=(2, 32, 32)).astype(np.uint16)
    r = restore(x, axes="ZYX", output_dtype="input", **FAST)
    assert r.image.dtype == np.uint16 and r.image.shape == x.shape
    assert r.image.min() >= 100 and r.image.max() <= 4000  # never rescaled by 1/65535
    assert r.image.max() > r.image.min()
    default = restore(x, axes="ZYX", **FAST)
    assert default.image.dtype == np.float32
    floats = restore(x.astype(np.float64) / 4000, axes="ZYX", output_dtype="input", **FAST)
    assert floats.image.dtype == np.float32


def test_uint8_2d_output_dtype_input(rng):
    x = rng.integers(0, 256, size=(32, 32)).astype(np.uint8)
    r = restore(x, output_dtype="input", **FAST)
    assert r.image.dtype == np.uint8


def test_normalize_per_plane_vs_stack(rng):
    x = rng.random((2, 32, 32)).astype(np.float32) * np.array([1, 5], np.float32)[:, None, None]
    stack = restore(x, axes="ZYX", normalize_per="stack", **FAST).normalizations
    plane = restore(x, axes="ZYX", normalize_per="plane", **FAST).normalizations
    assert stack[0] == stack[1]
    assert plane[0].high < plane[1].high
    with pytest.raises(ValueError, match="normalize_per"):
        restore(x, axes="ZYX", normalize_per="slice", **FAST)


def test_constant_plane_passes_through(rng):
    x = rng.random((3, 32, 32)).astype(np.float32)
    x[1] = 0.25
    r = restore(x, axes="ZYX", normalize_per="plane", stack_prior="planes", **FAST)
    assert np.all(r.image[1] == np.float32(0.25))
    assert r.plane_stop_reasons[1] == "constant"


def test_tile_plan_and_weights_sum_to_one():
    assert tile_starts(64, 32, 8) == [0, 24, 32]
    tiles = plan_tiles((64, 64), 32, 8)
    assert len(tiles) == 9 and all((t.h, t.w) == (32, 32) for t in tiles)
    weights = blend_weights((64, 64), tiles, 8)
    total = np.zeros((64, 64))
    for t, w in zip(tiles, weights):
        total[t.slices()] += w
    np.testing.assert_allclose(total, 1, atol=1e-6)
    # blending the tiles of an image gives the image back exactly
    img = np.random.default_rng(1).random((64, 64))
    back = np.zeros_like(img)
    for t, w in zip(tiles, weights):
        back[t.slices()] += w * img[t.slices()]
    np.testing.assert_allclose(back, img, atol=1e-6)


def test_blending_has_no_seams():
    tiles = plan_tiles((64, 64), 32, 8)
    weights = blend_weights((64, 64), tiles, 8)
    out = np.zeros((64, 64))
    for k, (t, w) in enumerate(zip(tiles, weights)):
        out[t.slices()] += w * float(k % 2)  # neighbouring tiles disagree by 1
    jumps = max(np.abs(np.diff(out, axis=0)).max(), np.abs(np.diff(out, axis=1)).max())
    assert jumps < 0.5  # a hard seam would jump by 1


def test_tiled_restore(rng):
    x = rng.random((64, 64)).astype(np.float32)
    r = restore(x, tile_size=32, **FAST)
    assert r.image.shape == x.shape and np.isfinite(r.image).all()
    assert r.tiles_per_plane == 9  # default overlap 32 // 4 = 8: starts 0, 24, 32
    sr = restore(x[:32, :48], "super_resolution", factor=2, tile_size=16, batch_size=3, **FAST)
    assert sr.image.shape == (64, 96) and np.isfinite(sr.image).all()


def test_out_of_memory_falls_back(monkeypatch, rng):
    real = solver.iterate

    def picky(observation, *args, **kwargs):
        if observation.shape[0] > 2 or observation.shape[-1] > 32:
            raise solver.DeviceMemoryError("fake: too big")
        return (yield from real(observation, *args, **kwargs))

    monkeypatch.setattr(solver, "iterate", picky)
    x = rng.random((3, 64, 64)).astype(np.float32)
    r = restore(x, axes="ZYX", batch_size=4, **FAST)
    assert r.image.shape == x.shape and np.isfinite(r.image).all()
    assert r.batch_size <= 2 and r.tile_size <= 32

    def never(observation, *args, **kwargs):
        raise solver.DeviceMemoryError("fake: no memory")
        yield

    monkeypatch.setattr(solver, "iterate", never)
    with pytest.raises(solver.DeviceMemoryError, match="tile"):
        restore(x, axes="ZYX", **FAST)


def test_cancel_marks_result(rng):
    x = rng.random((3, 32, 32)).astype(np.float32)
    r = restore(x, axes="ZYX", batch_size=1, callback=lambda e: e.batch < 1, stack_prior="planes", **FAST)
    assert r.stop_reason == "cancelled" and not r.finished
    assert np.isnan(r.image[2]).all() and 2 not in r.planes_done


def test_anscombe_inverses():
    rng = np.random.default_rng(0)
    model = PoissonGaussian()
    z = np.linspace(0, 50, 11)
    np.testing.assert_allclose(
        PoissonGaussian(inverse="algebraic").inverse_transform(model.forward(z)), z, rtol=1e-5, atol=1e-4
    )
    for lam in (1.0, 5.0, 20.0):
        d = model.forward(rng.poisson(lam, 200_000)).mean()
        assert model.inverse_transform(d) == pytest.approx(lam, rel=0.02)
    d = model.forward(rng.poisson(1.0, 200_000)).mean()
    assert PoissonGaussian(inverse="algebraic").inverse_transform(d) < 0.9  # biased low
    with pytest.raises(ValueError, match="gain"):
        PoissonGaussian(gain=0)


def test_anscombe_restore(rng):
    counts = rng.poisson(np.full((2, 32, 32), 20.0)).astype(np.uint16)
    r = restore(counts, axes="TYX", anscombe={"gain": 1.0, "read_noise": 1.0}, output_dtype="input", **FAST)
    assert r.image.dtype == np.uint16 and np.isfinite(r.image.astype(float)).all()
    assert r.anscombe.read_noise == 1.0
    assert counts.min() <= r.image.mean() <= counts.max()


def test_volume_prior_fits_each_zyx_volume_with_one_3d_decoder(rng):
    x = rng.random((2, 4, 24, 28)).astype(np.float32)  # T, Z, Y, X
    before = x.copy()
    r = restore(x, axes="TZYX", stack_prior="volume", anscombe=False, **FAST)
    assert np.array_equal(x, before)
    assert r.image.shape == x.shape and np.isfinite(r.image).all()
    assert r.config.decoder == "volume"
    assert len(r.plane_histories) == 2  # one unit per time point
    assert r.config.channels == 8  # as given (default 64 for volumes)
    planes = restore(x, axes="TZYX", anscombe=False, stack_prior="planes", **FAST)
    assert len(planes.plane_histories) == 8 and planes.config.decoder == "plane"
    # "auto" (default): denoising a Z stack of >= 3 planes fits volumes; otherwise planes
    auto = StackJob(x, "denoise", axes="TZYX", anscombe=False)
    assert auto.config.decoder == "volume" and auto.config.channels == 64
    assert StackJob(x[:, :2], "denoise", axes="TZYX").config.decoder == "plane"
    assert StackJob(x[0], "deblock", axes="TYX").config.decoder == "plane"
    assert StackJob(x, "denoise", axes="TZYX", profile="paper").config.decoder == "plane"
    with pytest.raises(ValueError, match="needs a Z or T axis"):
        restore(x[0, 0], axes="YX", stack_prior="volume", **FAST)
    # a time series as a (T, Y, X) volume when asked; "auto" leaves T plane by plane
    movie = restore(x[:, 0], axes="TYX", stack_prior="volume", anscombe=False, **FAST)
    assert movie.config.decoder == "volume" and len(movie.plane_histories) == 1
    assert movie.image.shape == x[:, 0].shape
    assert StackJob(x[0], "denoise", axes="TYX").config.decoder == "plane"
    with pytest.raises(ValueError, match="stack_prior must be"):
        restore(x, axes="TZYX", stack_prior="3d", **FAST)
    with pytest.raises(ValueError, match="channels"):
        restore(rng.random((3, 4, 16, 16)), axes="CZYX", stack_prior="volume", channel_mode="joint", **FAST)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_volume_prior_keeps_dtype_and_range(rng, dtype):
    x = (100 + 900 * rng.random((4, 24, 24))).astype(dtype)
    r = restore(x, axes="ZYX", stack_prior="volume", output_dtype="input", **FAST)
    assert r.image.dtype == dtype and r.image.shape == x.shape
    assert x.min() - 1 <= r.image.min() and r.image.max() <= x.max() + 1


def test_a_memory_limit_sizes_batches_and_tiles_to_fit(rng):
    from napari_dip_spectral.engine.tiling import unit_bytes

    x = rng.random((3, 128, 128)).astype(np.float32)
    free = restore(x, axes="ZYX", stack_prior="planes", warm_start=False, **FAST)
    assert free.batch_size >= 3 and free.tile_size is None
    one_plane = unit_bytes(FAST["channels"], 5, 1, 128, 128) / 2**30
    capped = restore(x, axes="ZYX", stack_prior="planes", memory_limit=1.5 * one_plane, **FAST)
    assert capped.batch_size == 1 and capped.tile_size is None
    tiled = restore(x, axes="ZYX", stack_prior="planes", memory_limit=0.5 * one_plane, **FAST)
    assert tiled.tile_size is not None and tiled.tiles_per_plane > 1
    for bad in (0, -1.0, float("nan"), "2GB", True):
        with pytest.raises(ValueError, match="memory_limit"):
            restore(x, axes="ZYX", memory_limit=bad, **FAST)


def test_warm_start_fits_planes_one_by_one_each_from_the_last(rng):
    clean = smooth_image(32, seed=0)
    x = np.stack([clean + rng.normal(0, 0.05, clean.shape) for _ in range(3)]).astype(np.float32)
    options = dict(axes="TYX", iterations=60, channels=8, metrics_every=10, auto_stop=False)
    cold = restore(x, warm_start=False, **options)
    events = []
    warm = restore(x, warm_start=True, callback=events.append, **options)
    assert warm.batch_size == 1 and {e.batches for e in events} == {3}
    # the first plane has no neighbour yet: the same fit; later planes start from the last
    # plane's decoder, which already draws the scene, so their first logged fit is closer
    np.testing.assert_array_equal(warm.image[0], restore(x, batch_size=1, **options).image[0])
    for p in (1, 2):
        assert warm.plane_histories[p][0].loss < 0.5 * cold.plane_histories[p][0].loss
    with pytest.raises(ValueError, match="warm_start"):
        restore(x, warm_start="yes", **options)


def test_warm_starts_by_default_only_along_z_or_t_on_the_cpu(rng):
    x = rng.random((2, 32, 32)).astype(np.float32)
    assert restore(x, axes="TYX", **FAST).warm_start  # denoising a time series on the CPU
    assert restore(x, axes="ZYX", stack_prior="planes", **FAST).warm_start
    assert not restore(x, axes="CYX", **FAST).warm_start  # channels are not neighbours
    assert not restore(x, axes="TYX", profile="paper", **FAST).warm_start  # the authors' fit
    assert not restore(x, axes="TYX", warm_start=False, **FAST).warm_start
    assert not restore(x, axes="TYX", tile_size=32, tile_overlap=8, **FAST).warm_start
    assert not restore(x, axes="TYX", stop_rule="sure", **FAST).warm_start
    assert not restore(x[0], **FAST).warm_start  # one plane: no neighbour
    with pytest.raises(ValueError, match="sure"):
        restore(x, axes="TYX", stop_rule="sure", warm_start=True, **FAST)


def test_an_ensemble_runs_through_every_layout(rng):
    x = rng.random((3, 32, 32)).astype(np.float32)
    before = x.copy()
    # planes one after another, each member starting from the same member of the plane before
    warm = restore(x, axes="ZYX", stack_prior="planes", warm_start=True, ensemble=2, **FAST)
    assert np.array_equal(x, before)
    assert warm.config.ensemble == 2 and warm.warm_start
    assert warm.image.shape == x.shape and np.isfinite(warm.image).all()
    assert len(warm.plane_histories) == 3 and all(len(h[-1].fit_all) == 1 for h in warm.plane_histories)
    # a batch of planes, and one volume: the result differs from one network's
    for kw in (dict(stack_prior="planes", batch_size=3, warm_start=False), dict(stack_prior="volume")):
        one = restore(x, axes="ZYX", **kw, **FAST)
        two = restore(x, axes="ZYX", ensemble=2, **kw, **FAST)
        assert two.image.shape == x.shape and np.isfinite(two.image).all()
        assert not np.array_equal(one.image, two.image)
    with pytest.raises(ValueError, match="ensemble"):
        restore(x, axes="ZYX", ensemble=0, **FAST)


def _photon_stack(rng, planes=4, size=24):
    clean = np.stack([smooth_image(size, seed=k) for k in range(planes)])
    return (100 + 50 * rng.poisson(20 * clean) + rng.normal(0, 20, clean.shape)).astype(np.uint16)


def test_a_photon_noise_z_stack_is_fitted_as_joint_channels_of_averaged_decoders(rng):
    counts = _photon_stack(rng)
    known = dict(anscombe={"gain": 50.0, "offset": 100.0, "read_noise": 20.0})
    fast_known = dict(FAST, **known)  # a stack this small is too small to fit the model on
    auto = StackJob(counts, "denoise", axes="ZYX", **fast_known)
    assert auto.model is not None
    assert auto.layout.joint == "Z" and not auto.layout.volume
    assert auto.config.decoder == "plane" and auto.config.ensemble == 4
    # what the caller chose is kept
    assert StackJob(counts, "denoise", axes="ZYX", ensemble=2, **fast_known).config.ensemble == 2
    assert StackJob(counts, "denoise", axes="ZYX", stack_prior="volume", **fast_known).config.decoder == "volume"
    assert StackJob(counts, "denoise", axes="ZYX", stack_prior="volume", **fast_known).config.ensemble == 1
    # without a noise model the volume decoder stays the default
    assert StackJob(counts, "denoise", axes="ZYX", anscombe=False, **FAST).config.decoder == "volume"
    # "joint" asked for: the same layout, one decoder unless an ensemble is asked for
    joint = restore(counts, axes="ZYX", stack_prior="joint", **fast_known)
    assert joint.config.decoder == "plane" and joint.config.ensemble == 1 and joint.joint_channels == "Z"
    assert joint.image.shape == counts.shape and np.isfinite(joint.image).all()
    r = restore(counts, axes="ZYX", **fast_known)
    assert r.config.ensemble == 4 and r.image.shape == counts.shape and len(r.plane_histories) == 1
    with pytest.raises(ValueError, match="needs a Z or T axis"):
        restore(counts[0], axes="YX", stack_prior="joint", **fast_known)
