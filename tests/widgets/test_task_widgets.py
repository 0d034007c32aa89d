"""The dock widgets in a real (headless, Xvfb) napari viewer: run, results, cancel, errors."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager

pytestmark = pytest.mark.gui

PLUGIN = "napari-dip-spectral"
WIDGETS = {
    "denoise": "Denoise",
    "deblock": "JPEG deblock",
    "inpaint": "Inpaint",
    "super_resolution": "Super-resolution",
    "enhance": "Enhance details",
}


def dock(viewer, task: str, iterations: int = 6):
    """Dock the task's widget through npe2 with a tiny, fast configuration."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGETS[task])
    widget.form.iterations.value = iterations
    widget.form.channels.value = 8
    widget.form.auto_stop.value = False
    widget.form.metrics_every.value = 2
    widget.form.preview_every.value = 2
    return widget


def finish(qtbot, widget, timeout_ms: int = 120_000) -> None:
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout_ms)


def errors_since(count: int) -> list[str]:
    return [str(n.message) for n in notification_manager.records[count:] if n.severity == NotificationSeverity.ERROR]


def smooth_image(size: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    clean = 0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy)
    return np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("task", list(WIDGETS))
def test_each_task_runs_and_writes_result_and_plot_layers(make_napari_viewer, qtbot, task):
    viewer = make_napari_viewer()
    image = smooth_image(24 if task == "super_resolution" else 40)
    if task == "deblock":
        image = (np.stack([image, image[::-1], image.T], -1) * 255).astype(np.uint8)
    layer = viewer.add_image(
        image, name="input", scale=(0.5, 0.25), translate=(3, 4), units=("um", "um"), axis_labels=("y", "x")
    )
    original = layer.data.copy()
    widget = dock(viewer, task)
    factor = 1
    if task == "inpaint":
        missing = np.zeros(image.shape, dtype=np.uint8)
        missing[10:20, 10:20] = 1
        viewer.add_labels(missing, name="holes")
        widget.mask.value = viewer.layers["holes"]
    if task == "super_resolution":
        factor = 2
        widget.form.factor.value = factor
    widget.image.value = layer

    before = len(notification_manager.records)
    assert widget.run() is not None
    finish(qtbot, widget)

    out = viewer.layers[f"input [{task}]"]
    expected = (image.shape[0] * factor, image.shape[1] * factor) + image.shape[2:]
    assert out.data.shape == expected
    assert out.data.dtype == image.dtype
    np.testing.assert_allclose(out.scale, np.array([0.5, 0.25]) / factor)
    assert [str(u) for u in out.units] == ["micrometer", "micrometer"]
    assert tuple(out.axis_labels) == ("y", "x")
    assert out.rgb == layer.rgb
    assert out.metadata["dip_spectral"]["finished"] is True
    assert out.metadata["dip_spectral"]["iterations"] == 6
    assert f"input [{task}] FBC" in viewer.layers
    assert f"input [{task}] stopping" in viewer.layers
    assert viewer.layers[f"input [{task}] FBC"].rgb
    assert f"input [{task}] (running)" not in viewer.layers
    np.testing.assert_array_equal(layer.data, original)
    assert not errors_since(before)


def test_rerun_updates_layers_and_reference_gives_psnr(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    noisy = smooth_image(32)
    viewer.add_image(smooth_image(32, seed=5), name="clean")
    layer = viewer.add_image(noisy, name="noisy")
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    widget.form.show_advanced.value = True
    widget.reference.value = viewer.layers["clean"]
    widget.run(wait=True, timeout=120)
    assert widget.last_result.history[-1].psnr is not None
    names = [lay.name for lay in viewer.layers]
    first = viewer.layers["noisy [denoise]"].data.copy()

    widget.form.seed.value = 3
    widget.run(wait=True, timeout=120)
    assert [lay.name for lay in viewer.layers] == names
    assert not np.array_equal(viewer.layers["noisy [denoise]"].data, first)
    assert viewer.layers["noisy [denoise]"].metadata["dip_spectral"]["config"]["seed"] == 3


def test_cancel_button_stops_a_long_run_and_labels_the_result(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(32), name="x")
    widget = dock(viewer, "denoise", iterations=100_000)
    widget.form.preview_every.value = 1
    widget.run()
    qtbot.waitUntil(lambda: "x [denoise] (running)" in viewer.layers, timeout=60_000)
    widget.cancel_button.clicked()
    finish(qtbot, widget)
    assert widget.last_result.stop_reason == "cancelled"
    assert widget.last_result.iterations < 100_000
    assert "x [denoise]" not in viewer.layers
    assert "x [denoise] (running)" not in viewer.layers
    cancelled = viewer.layers["x [denoise] (cancelled)"]
    assert cancelled.metadata["dip_spectral"]["finished"] is False
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_quitting_the_worker_keeps_only_a_labelled_preview(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(32), name="x")
    widget = dock(viewer, "denoise", iterations=100_000)
    widget.form.preview_every.value = 1
    worker = widget.run()
    qtbot.waitUntil(lambda: "x [denoise] (running)" in viewer.layers, timeout=60_000)
    worker.quit()  # what napari's activity dock does
    finish(qtbot, widget)
    assert widget.last_result is None
    assert "x [denoise]" not in viewer.layers
    assert "x [denoise] (running)" not in viewer.layers
    assert viewer.layers["x [denoise] (cancelled)"].metadata["dip_spectral"]["finished"] is False


@pytest.mark.parametrize("problem", ["all_missing", "wrong_shape", "no_mask"])
def test_bad_mask_is_a_notification_not_an_exception(make_napari_viewer, qtbot, problem):
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(32), name="x")
    shape = (32, 32) if problem != "wrong_shape" else (20, 32)
    if problem != "no_mask":
        viewer.add_labels(np.ones(shape, dtype=np.uint8), name="holes")
    widget = dock(viewer, "inpaint")
    widget.image.value = viewer.layers["x"]
    widget.mask.value = viewer.layers["holes"] if problem != "no_mask" else None
    before = len(notification_manager.records)
    assert widget.run() is None
    errors = errors_since(before)
    assert len(errors) == 1 and "mask" in errors[0]
    assert widget.status.value.startswith("error:")
    assert not widget.running and widget.run_button.enabled
    assert [lay.name for lay in viewer.layers] == ["x"] + (["holes"] if problem != "no_mask" else [])


def test_stack_restores_the_displayed_plane_in_place(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = (np.stack([smooth_image(32, seed=s) for s in range(3)]) * 1000).astype(np.uint16)
    layer = viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5), axis_labels=("z", "y", "x"))
    viewer.dims.set_current_step(0, 1)
    widget = dock(viewer, "denoise")
    widget.image.value = layer
    widget.run(wait=True, timeout=120)
    out = viewer.layers["stack [denoise] plane 1"]
    assert out.data.shape == (1, 32, 32)
    assert out.data.dtype == np.uint16
    assert out.translate[0] == pytest.approx(2.0)
    assert out.metadata["dip_spectral"]["plane"] == (1,)
    np.testing.assert_array_equal(layer.data, stack)


def test_stack_in_3d_view_is_refused_with_a_notification(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((4, 16, 16)), name="stack")
    viewer.dims.ndisplay = 3
    widget = dock(viewer, "denoise")
    before = len(notification_manager.records)
    assert widget.run() is None
    assert "2-D display" in errors_since(before)[0]


def photon_counts(size: int = 96, seed: int = 0) -> np.ndarray:
    """uint16 camera counts of a smooth scene: gain 12, offset 100, read noise 4."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    scene = gaussian_filter(rng.random((size, size)), 3)
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    counts = 100 + 12 * rng.poisson(40 * scene) + rng.normal(0, 4, scene.shape)
    return np.round(counts).astype(np.uint16)


@pytest.mark.parametrize("choice", ["estimated", "off"])
def test_denoise_shows_the_noise_model_it_used(make_napari_viewer, qtbot, choice):
    viewer = make_napari_viewer()
    layer = viewer.add_image(photon_counts(), name="counts")
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    assert widget.form.noise_model.value == "estimated"  # the default
    widget.form.noise_model.value = choice
    widget.run()
    finish(qtbot, widget)
    summary = viewer.layers["counts [denoise]"].metadata["dip_spectral"]
    if choice == "estimated":
        assert summary["noise_model"]["source"] == "estimated"
        assert summary["noise_model"]["transform"]["gain"] == pytest.approx(12, rel=0.3)
        assert "Anscombe transform used" in widget.status.value
        assert summary["nlm_share"] == 0.3 and "30% non-local means averaged in" in widget.status.value
    else:
        assert summary["noise_model"] is None
        assert "noise model: none" in widget.status.value


def test_large_plane_tiles_through_the_same_job_as_restore(make_napari_viewer, qtbot, monkeypatch):
    """The widget runs restore()'s job: a plane over the memory budget is restored in tiles,
    and the result equals restore()'s with the same settings."""
    from napari_dip_spectral import restore
    from napari_dip_spectral.engine import job
    from napari_dip_spectral.engine.tiling import unit_bytes

    budget = unit_bytes(8, 5, 1, 64, 64) + 1  # room for a 64 x 64 tile, not the plane
    monkeypatch.setattr(job, "memory_budget", lambda device: budget)
    viewer = make_napari_viewer()
    image = smooth_image(112)
    viewer.add_image(image, name="big")
    widget = dock(viewer, "denoise", iterations=4)
    widget.run()
    finish(qtbot, widget)
    result = widget.last_result
    assert result is not None and result.finished
    assert result.tiles_per_plane > 1 and result.tile_size == 64
    expected = restore(image, "denoise", **widget.form.options())
    assert expected.tiles_per_plane == result.tiles_per_plane
    # (threads may sum in another order: 1e-3 of the range allows for that, not for other tiles)
    np.testing.assert_allclose(viewer.layers["big [denoise]"].data, expected.image, rtol=0, atol=1e-3)


@pytest.mark.parametrize("how", ["dock closed", "viewer closed"])
def test_closing_the_dock_or_the_viewer_ends_the_run(make_napari_viewer, qtbot, how):
    """A run never outlives the widget that started it: its worker stops within an
    iteration or so, nothing is written afterwards, and no preview is left behind."""
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(32), name="x")
    widget = dock(viewer, "denoise", iterations=100_000)
    widget.form.preview_every.value = 4
    worker = widget.run()
    qtbot.waitUntil(lambda: "x [denoise] (running)" in viewer.layers, timeout=60_000)
    assert worker.is_running
    if how == "dock closed":
        viewer.window.remove_dock_widget(widget.native)  # what the dock's close button calls
    else:
        viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=30_000)
    assert widget.last_result is None
    if how == "dock closed":
        qtbot.wait(200)
        names = [layer.name for layer in viewer.layers]
        assert names == ["x"], names


def test_out_of_memory_in_the_widget_falls_back_to_tiles_or_says_so(make_napari_viewer, qtbot, monkeypatch):
    from napari_dip_spectral.core import solver

    real = solver.iterate

    def picky(observation, *args, **kwargs):  # a device that holds 32 x 32 at most
        if observation.shape[-1] > 32:
            raise solver.DeviceMemoryError("fake: too big")
        return (yield from real(observation, *args, **kwargs))

    monkeypatch.setattr(solver, "iterate", picky)
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(64), name="x")
    widget = dock(viewer, "denoise", iterations=2)
    widget.run()
    finish(qtbot, widget)
    result = widget.last_result
    assert result is not None and result.finished and result.tile_size <= 32
    assert viewer.layers["x [denoise]"].data.shape == (64, 64)

    def never(observation, *args, **kwargs):
        raise solver.DeviceMemoryError("fake: no memory")
        yield

    monkeypatch.setattr(solver, "iterate", never)
    count = len(notification_manager.records)
    widget.run()
    finish(qtbot, widget)
    assert widget.last_result is None
    assert any("memory" in message for message in errors_since(count))
    assert widget.status.value.startswith("error:")


def test_the_widget_starts_on_the_selected_layer_and_names_its_device(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(16), name="first")
    second = viewer.add_image(smooth_image(16), name="second")
    viewer.add_image(smooth_image(16), name="third")
    viewer.layers.selection.active = second
    widget = dock(viewer, "denoise")
    assert widget.image.value is second
    import torch

    info = widget.form.device_info.value
    if torch.cuda.is_available():
        assert info.startswith("GPU")
    else:
        assert info.startswith("CPU")
    widget.form.device.value = "cpu"
    assert widget.form.device_info.value == "CPU"


def test_estimate_before_run_times_the_settings_on_their_device(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(32), name="x")
    widget = dock(viewer, "denoise", iterations=500)
    widget.estimate(wait=True, timeout=120)
    status = widget.status.value
    assert status.startswith("estimate: about") and "for 500 iterations" in status, status
    assert "CPU" in status or "GPU" in status
    assert not widget.running and list(viewer.layers) == [viewer.layers["x"]]  # nothing was run


def _widget_storm(viewer, qtbot, runs: int, seed: int) -> None:
    """Runs cancelled at random moments, one after the other, half through the Cancel button
    and half through the worker's quit (what napari's activity dock does): each ends labelled
    as cancelled, no preview layer is left, no pool thread is still working, the input is
    untouched, the finished result from before the storm is not overwritten, and a run after
    the storm equals the same run before it."""
    from qtpy.QtCore import QThreadPool

    rng = np.random.default_rng(seed)
    layer = viewer.add_image(smooth_image(32), name="x")
    before = layer.data.tobytes()
    widget = dock(viewer, "denoise", iterations=6)
    widget.run(wait=True, timeout=120)
    clean = widget.last_result.image.copy()
    widget.form.iterations.value = 100_000
    quits = 0
    for _ in range(runs):
        worker = widget.run()
        qtbot.waitUntil(lambda w=widget: w._received is not None, timeout=60_000)
        qtbot.wait(int(rng.integers(0, 60)))
        through_worker = bool(rng.random() < 0.5)
        quits += through_worker
        if through_worker:
            worker.quit()
        else:
            widget.cancel()
        finish(qtbot, widget)
        qtbot.waitUntil(lambda w=worker: not w.is_running, timeout=30_000)
        if through_worker:
            assert widget.last_result is None  # nothing passed off as a result
        else:
            assert widget.last_result.stop_reason == "cancelled" and not widget.last_result.finished
        assert "x [denoise] (running)" not in viewer.layers
        np.testing.assert_array_equal(viewer.layers["x [denoise]"].data, clean)  # the finished one stays
    assert 0 < quits < runs
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30_000)
    assert sorted(
        layer.name for layer in viewer.layers if "FBC" not in layer.name and "stopping" not in layer.name
    ) == ["x", "x [denoise]", "x [denoise] (cancelled)"]
    assert layer.data.tobytes() == before
    widget.form.iterations.value = 6
    widget.run(wait=True, timeout=120)
    np.testing.assert_array_equal(widget.last_result.image, clean)


def test_a_cancel_storm_in_one_widget_leaves_nothing_half_written(make_napari_viewer, qtbot):
    _widget_storm(make_napari_viewer(), qtbot, runs=6, seed=0)


@pytest.mark.slow
def test_a_long_cancel_storm_in_one_widget(make_napari_viewer, qtbot):
    _widget_storm(make_napari_viewer(), qtbot, runs=200, seed=1)


def test_the_widget_offers_what_restore_offers_for_camera_data(make_napari_viewer, qtbot):
    """Known noise parameters, normalisation, per-plane ranges and tile size reach the job."""
    viewer = make_napari_viewer()
    layer = viewer.add_image(photon_counts(48), name="counts")
    widget = dock(viewer, "denoise", iterations=2)
    widget.image.value = layer
    data = widget.form.data
    assert not data.camera_gain.native.isVisibleTo(widget.form.advanced.native)  # hidden until chosen
    data.noise_model.value = "known parameters"
    assert data.camera_gain.native.isVisibleTo(widget.form.advanced.native)
    data.camera_gain.value, data.camera_offset.value, data.read_noise.value = 12.0, 100.0, 4.0
    data.normalize.value = "percentile"
    data.tile_size.value = 32
    widget.run()
    finish(qtbot, widget)
    result = widget.last_result
    model = result.anscombe
    assert (model.gain, model.offset, model.read_noise) == (12.0, 100.0, 4.0)
    assert result.noise_estimate is None  # given, not estimated
    assert result.normalization.method == "percentile"
    assert result.tile_size == 32 and result.tiles_per_plane > 1


def test_two_widgets_running_at_once_each_give_their_own_result(make_napari_viewer, qtbot):
    """Two runs at the same time (Denoise and Deblock on two layers) each finish with the
    image restore() gives for its own settings, and neither writes into the other's layers."""
    from napari_dip_spectral import restore

    viewer = make_napari_viewer()
    first = smooth_image(40, seed=1)
    second = (np.stack([smooth_image(40, seed=2)] * 3, -1) * 255).astype(np.uint8)
    viewer.add_image(first, name="a")
    viewer.add_image(second, name="b", rgb=True)
    denoise, deblock = dock(viewer, "denoise", iterations=8), dock(viewer, "deblock", iterations=8)
    denoise.image.value, deblock.image.value = viewer.layers["a"], viewer.layers["b"]
    denoise.run()
    deblock.run()
    assert denoise.running and deblock.running
    finish(qtbot, denoise)
    finish(qtbot, deblock)
    for widget, data, name in ((denoise, first, "a [denoise]"), (deblock, second, "b [deblock]")):
        assert widget.last_result.finished
        expected = restore(data, widget.task, **widget.form.options())
        # threads may sum in another order (1e-4 of the range); a network built from another
        # run's random draws is off by about 1 % of the range
        tolerance = 1e-3 * float(np.ptp(data))
        np.testing.assert_allclose(widget.last_result.image, expected.image, rtol=0, atol=tolerance)
        assert viewer.layers[name].data.shape == data.shape
