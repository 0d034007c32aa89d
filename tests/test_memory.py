"""Memory returns to its baseline after each run: no growth over 20 consecutive runs."""

from __future__ import annotations

import gc

import numpy as np
import psutil

from napari_dip_spectral import restore

FAST = dict(iterations=5, channels=16, auto_stop=False, device="cpu")


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def test_twenty_runs_do_not_grow_memory():
    rng = np.random.default_rng(0)
    image = rng.random((64, 64)).astype(np.float32)
    stack = rng.random((3, 48, 48)).astype(np.float32)

    def twenty() -> float:
        """The floor of resident memory over the last ten of twenty runs: from one run to the
        next it swings by up to ~120 MB as the C allocator takes and returns memory, but a
        leak lifts the floor."""
        seen = []
        for _ in range(20):
            restore(image, **FAST)
            restore(stack, axes="ZYX", **FAST)
            seen.append(rss_mb())
        return min(seen[10:])

    for _ in range(3):  # warm-up: torch's allocator pools and kernel caches fill here
        restore(image, **FAST)
        restore(stack, axes="ZYX", **FAST)
    first = twenty()
    growth = twenty() - first
    # a leak of one run's network and activations per call would add them forty times over
    assert growth < 30, f"resident memory grew by {growth:.0f} MB over 40 runs after 40 others"
