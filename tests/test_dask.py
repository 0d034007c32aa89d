"""Dask arrays: lazy in, lazy out, computed on a local dask.distributed cluster."""

import numpy as np
import pytest

from napari_dip_spectral import restore

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

FAST = dict(iterations=5, channels=8)


def test_dask_lazy_matches_numpy_on_distributed_cluster():
    rng = np.random.default_rng(0)
    x = rng.integers(100, 4001, size=(2, 32, 32)).astype(np.uint16)
    lazy = restore(da.from_array(x), axes="ZYX", output_dtype="input", **FAST)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.uint16
    assert lazy.numblocks == (2, 1, 1)  # one task per plane
    expected = restore(x, axes="ZYX", output_dtype="input", batch_size=1, warm_start=False, **FAST).image
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        result = lazy.compute()
    assert result.dtype == np.uint16 and result.shape == x.shape
    np.testing.assert_array_equal(result, expected)


def test_dask_super_resolution_chunks_and_threads():
    x = np.random.default_rng(1).random((2, 16, 16)).astype(np.float32)
    lazy = restore(da.from_array(x), "super_resolution", factor=2, axes="TYX", batch_size=2, **FAST)
    assert lazy.shape == (2, 32, 32) and lazy.numblocks == (1, 1, 1)
    out = lazy.compute(scheduler="threads")
    assert out.shape == (2, 32, 32) and np.isfinite(out).all()
