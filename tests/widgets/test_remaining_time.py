"""The remaining-time figure during a run, in the status line and the activity-dock bar."""

from __future__ import annotations

import numpy as np
import pytest

from .test_task_widgets import dock, finish, smooth_image

pytestmark = pytest.mark.gui


def test_a_running_plane_says_at_most_how_long_it_has_left(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(16), name="x")
    widget = dock(viewer, "denoise", iterations=100_000)  # a budget no test waits for
    widget.form.auto_stop.value = True
    widget.form.preview_every.value = 0
    widget.run()
    qtbot.waitUntil(lambda: "left" in widget.status.value, timeout=60_000)
    status = widget.status.value
    bar = widget._progress.iterations
    qtbot.waitUntil(lambda: "left" in bar.desc, timeout=10_000)
    widget.cancel()
    finish(qtbot, widget)
    assert "; at most " in status and status.startswith("iteration ")
    assert bar.desc.startswith("Denoise: x: iterations (at most ") and " left)" in bar.desc


def test_a_running_stack_counts_the_planes_not_started(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.stack([smooth_image(16, seed=s) for s in range(3)])
    viewer.add_image(stack, name="stack")
    widget = dock(viewer, "denoise", iterations=100_000)  # automatic stop off: an estimate
    widget.form.preview_every.value = 0
    widget.planes.value = "all planes"
    widget.stack_prior.value = "planes"
    widget.batch_size.value = 1
    widget.run()
    qtbot.waitUntil(lambda: "left" in widget.status.value, timeout=60_000)
    status = widget.status.value
    bar = widget._progress.planes
    qtbot.waitUntil(lambda: "left" in bar.desc, timeout=10_000)
    widget.cancel()
    finish(qtbot, widget)
    assert "(batch 1 / 3)" in status and "; about " in status
    assert bar.desc.startswith("Denoise: stack: planes (about ")
