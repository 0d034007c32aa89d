"""Stacks in the dock widgets (real headless viewer): all planes in one run, its cancel,
axes from the layer, and dask-backed layers that are read only when a run starts."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager

from .test_task_widgets import dock, errors_since, finish, smooth_image

pytestmark = pytest.mark.gui


def small_stack() -> np.ndarray:
    return (np.stack([smooth_image(24, seed=s) for s in range(3)]) * 1000 + 100).astype(np.uint16)


def test_all_planes_gives_one_layer_with_the_stack_shape_and_geometry(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = small_stack()
    layer = viewer.add_image(
        stack,
        name="stack",
        scale=(2.0, 0.5, 0.25),
        translate=(1, 2, 3),
        units=("um", "um", "um"),
        axis_labels=("z", "y", "x"),
    )
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    assert not widget.stack_fields.native.isHidden() and widget.axes.value == "ZYX"
    widget.planes.value = "all planes"
    widget.stack_prior.value = "planes"
    before = len(notification_manager.records)
    assert widget.run() is not None
    finish(qtbot, widget)

    assert not errors_since(before)
    out = viewer.layers["stack [denoise]"]
    assert out.data.shape == stack.shape and out.data.dtype == np.uint16
    np.testing.assert_allclose(out.scale, (2.0, 0.5, 0.25))
    np.testing.assert_allclose(out.translate, (1, 2, 3))
    assert [str(u) for u in out.units] == ["micrometer"] * 3
    assert tuple(out.axis_labels) == ("z", "y", "x")
    meta = out.metadata["dip_spectral"]
    assert meta["finished"] is True and meta["axes"] == "ZYX"
    assert meta["planes"]["finished"] == [0, 1, 2] and meta["planes"]["not_started"] == []
    assert widget.last_result.plane_stop_iterations == [4, 4, 4]
    # every plane restored: each differs from its input plane, none is left blank
    assert all(not np.array_equal(out.data[z], stack[z]) for z in range(3))
    assert "stack [denoise] FBC (mean over planes)" in viewer.layers
    assert "stack [denoise] stopping (mean over planes)" in viewer.layers
    assert "stack [denoise] (running)" not in viewer.layers
    np.testing.assert_array_equal(layer.data, small_stack())
    # "auto": on the CPU the Z planes start each from the last; the choice reaches the job
    assert widget.last_result.warm_start and meta["warm_start"] is True
    widget.warm_start.value = False
    assert widget.run() is not None
    finish(qtbot, widget)
    assert widget.last_result.warm_start is False and widget.last_result.batch_size >= 3


def test_cancel_all_planes_marks_unstarted_planes_nan(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = small_stack()
    layer = viewer.add_image(stack, name="stack")
    widget = dock(viewer, "denoise", iterations=100_000)
    widget.form.preview_every.value = 1
    widget.image.value = layer
    widget.planes.value = "all planes"
    widget.batch_size.value = 1  # one plane per batch: planes 1, 2 never start
    widget.stack_prior.value = "planes"
    widget.run()
    qtbot.waitUntil(lambda: "stack [denoise] (running)" in viewer.layers, timeout=60_000)
    running = viewer.layers["stack [denoise] (running)"].data
    assert running.shape == stack.shape and np.isnan(running[1:]).all()
    widget.cancel_button.clicked()
    finish(qtbot, widget)

    assert widget.last_result.stop_reason == "cancelled"
    assert widget.last_result.iterations < 100_000
    assert "stack [denoise]" not in viewer.layers
    assert "stack [denoise] (running)" not in viewer.layers
    out = viewer.layers["stack [denoise] (cancelled)"]
    meta = out.metadata["dip_spectral"]
    assert meta["finished"] is False
    assert meta["planes"] == {"finished": [], "interrupted": [0], "not_started": [1, 2], "constant": []}
    assert out.data.shape == stack.shape
    assert np.isfinite(out.data[0]).all() and np.isnan(out.data[1:]).all()
    assert "CANCELLED" in widget.status.value and "never started (NaN): 1-2" in widget.status.value
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    np.testing.assert_array_equal(layer.data, stack)


class CountingArray:
    """A numpy-like array that records the Z planes read from it."""

    def __init__(self, data: np.ndarray):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.planes_read: list[int] = []

    def __getitem__(self, key):
        first = key[0] if isinstance(key, tuple) else key
        if isinstance(first, slice):
            self.planes_read.extend(range(*first.indices(self.shape[0])))
        else:  # dask may fuse an integer index in
            self.planes_read.append(int(first))
        return self.data[key]


@pytest.fixture
def no_dask_cache():
    """Turn napari's dask chunk cache off, so that every read reaches the array."""
    from napari.utils import resize_dask_cache

    size = resize_dask_cache().cache.available_bytes
    resize_dask_cache(0)
    yield
    resize_dask_cache(size)


def test_a_z_stack_is_restored_as_one_volume_by_default(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = small_stack()
    layer = viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.25))
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    widget.planes.value = "all planes"
    assert widget.stack_prior.value == "auto"
    before = len(notification_manager.records)
    widget.run()
    finish(qtbot, widget)
    assert not errors_since(before)
    out = viewer.layers["stack [denoise]"]
    assert out.data.shape == stack.shape and out.data.dtype == np.uint16
    np.testing.assert_allclose(out.scale, (2.0, 0.5, 0.25))
    assert all(not np.array_equal(out.data[z], stack[z]) for z in range(3))
    meta = out.metadata["dip_spectral"]
    assert meta["unit"] == "volume" and meta["planes"]["finished"] == [0]
    assert meta["config"]["decoder"] == "volume"
    assert "volumes finished: 0" in widget.status.value
    assert meta["wiener"] is True and "Wiener pass (3-D over the stack)" in widget.status.value
    np.testing.assert_array_equal(layer.data, small_stack())


def test_z_planes_fitted_as_joint_channels_count_as_one_stack(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layer = viewer.add_image(small_stack(), name="stack")
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    widget.planes.value = "all planes"
    widget.stack_prior.value = "joint"
    widget.run()
    finish(qtbot, widget)
    meta = viewer.layers["stack [denoise]"].metadata["dip_spectral"]
    # one 2-D decoder whose output channels are the Z planes: the whole stack is one unit
    assert meta["unit"] == "volume" and meta["planes"]["finished"] == [0]
    assert meta["config"]["decoder"] == "plane"


def test_dask_layer_is_read_only_when_a_run_starts(make_napari_viewer, qtbot, no_dask_cache):
    import dask.array as da

    viewer = make_napari_viewer()
    source = CountingArray(small_stack())
    lazy = da.from_array(source, chunks=(1, 24, 24))
    layer = viewer.add_image(lazy, name="lazy", contrast_limits=(0, 1200))
    viewer.dims.set_current_step(0, 1)
    qtbot.wait(50)
    shown = len(source.planes_read)  # what napari read to draw the layer
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    assert widget.axes.value == "ZYX"  # guessed from the shape; nothing read
    assert len(source.planes_read) == shown

    widget.run(wait=True, timeout=120)  # displayed plane: only plane 1 is read
    assert set(source.planes_read[shown:]) == {1}
    assert viewer.layers["lazy [denoise] plane 1"].data.shape == (1, 24, 24)

    widget.planes.value = "all planes"
    read = len(source.planes_read)
    widget.run(wait=True, timeout=120)
    assert set(source.planes_read[read:]) == {0, 1, 2}
    assert viewer.layers["lazy [denoise]"].data.shape == (3, 24, 24)
    assert viewer.layers["lazy [denoise]"].metadata["dip_spectral"]["finished"] is True
    assert layer.data is lazy


def test_axes_come_from_labels_or_shape_and_bad_axes_are_refused(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((24, 24)), name="flat")
    viewer.add_image(np.zeros((2, 3, 24, 24)), name="tc", axis_labels=("time", "c", "y", "x"))
    viewer.add_image(np.random.default_rng(0).random((2, 3, 24, 24)), name="unlabelled")
    widget = dock(viewer, "denoise")
    widget.image.value = viewer.layers["flat"]
    assert widget.stack_fields.native.isHidden()
    widget.image.value = viewer.layers["tc"]
    assert not widget.stack_fields.native.isHidden() and widget.axes.value == "TCYX"
    widget.image.value = viewer.layers["unlabelled"]
    assert widget.axes.value == "TZYX"
    widget.planes.value = "all planes"
    widget.axes.value = "ZYX"
    before = len(notification_manager.records)
    assert widget.run() is None
    errors = [str(n.message) for n in notification_manager.records[before:] if n.severity == NotificationSeverity.ERROR]
    assert len(errors) == 1 and "axes" in errors[0]
    assert not widget.running


def test_super_resolution_stack_geometry_divides_only_y_and_x():
    from napari.layers import Image

    from napari_dip_spectral.widgets.layers import stack_geometry

    layer = Image(np.zeros((3, 24, 24)), scale=(2.0, 0.5, 0.5), translate=(1, 0, 0))
    geometry = stack_geometry(layer, "ZYX", factor=2)
    assert geometry.scale == (2.0, 0.25, 0.25)
    assert geometry.translate == (1.0, -0.125, -0.125)
