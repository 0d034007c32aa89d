"""Cancel storms through the API callback: every cancelled run says so, leaves no thread or
file behind, and a run after a cancel equals a clean run with the same seed. The long
storm is opt-in (``-m slow``); a short one runs with the suite."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from napari_dip_spectral import restore

FAST = dict(channels=8, levels=3, auto_stop=False, device="cpu", anscombe=False)


def _storm(runs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.random((24, 24)).astype(np.float32)
    stack = rng.random((3, 24, 24)).astype(np.float32)
    before = digest = image.tobytes() + stack.tobytes()
    clean = restore(image, iterations=12, seed=5, **FAST).image
    threads = threading.active_count()
    for _ in range(runs):
        stop_at = int(rng.integers(1, 12))
        data, axes = (stack, "ZYX") if rng.random() < 0.5 else (image, None)
        result = restore(
            data,
            axes=axes,
            iterations=12,
            seed=5,
            batch_size=1,
            stack_prior="planes",
            callback=lambda e, s=stop_at: e.iteration < s,
            **FAST,
        )
        assert result.stop_reason == "cancelled" and not result.finished
        if axes is None:
            assert result.iterations == stop_at
        else:  # the first plane stops at stop_at; later planes never start and are NaN
            assert np.isnan(result.image[1:]).all()
            assert result.plane_stop_reasons == ["cancelled"] * 3
    gc.collect()
    assert threading.active_count() <= threads
    assert image.tobytes() + stack.tobytes() == digest == before
    again = restore(image, iterations=12, seed=5, **FAST).image
    np.testing.assert_array_equal(again, clean)


def test_a_short_cancel_storm():
    _storm(runs=8, seed=0)


@pytest.mark.slow
def test_a_long_cancel_storm():
    _storm(runs=1000, seed=1)
