"""Settings that last in the widgets: presets saved and loaded, settings kept between
sessions, and the settings of a result layer applied again."""

from __future__ import annotations

import json

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager

from napari_dip_spectral.presets import make_preset, read_preset, write_preset
from napari_dip_spectral.widgets.presets_panel import widget_fields, widget_settings

from .test_task_widgets import PLUGIN, WIDGETS, dock, errors_since, smooth_image

pytestmark = pytest.mark.gui


def plain(viewer, task: str):
    """The task's widget as napari docks it, fields untouched."""
    return viewer.window.add_plugin_dock_widget(PLUGIN, WIDGETS[task])[1]


def field_values(widget) -> dict:
    return {key: field.value for key, field in widget_fields(widget).items()}


def change_everything(widget) -> None:
    """Set every field a preset holds away from its default (Denoise)."""
    form, data = widget.form, widget.form.data
    form.profile.value = "paper"
    form.iterations.value = 7
    form.lipschitz.value = 0.0  # no control
    form.upsample.value = "gaussian"
    form.auto_stop.value = False
    form.seed.value = 9
    form.device.value = "cpu"
    form.learning_rate.value = 0.002
    form.channels.value = 16
    form.ensemble.value = 3
    form.precision.value = "bf16"
    form.metrics_every.value = 3
    form.preview_every.value = 0
    data.noise_model.value = "known parameters"
    data.camera_gain.value, data.camera_offset.value, data.read_noise.value = 2.5, 100.0, 3.0
    data.nlm_share.value = "off"
    data.wiener.value = "off"
    data.hot_pixels.value = "keep"
    data.likelihood.value = "poisson"
    data.normalize.value = "percentile"
    data.normalize_per.value = "plane"
    data.tile_size.value = 64
    widget.batch_size.value = 2
    widget.warm_start.value = False
    widget.stack_prior.value = "volume"


def test_a_preset_round_trips_through_the_widget(make_napari_viewer, tmp_path):
    first = plain(make_napari_viewer(), "denoise")
    defaults = field_values(first)
    change_everything(first)
    changed = field_values(first)
    assert all(changed[key] != defaults[key] for key in changed)
    first.presets.save_preset(tmp_path / "mine.json")
    preset = read_preset(tmp_path / "mine.json", "denoise")
    assert preset["settings"]["lipschitz"] == "none" and preset["settings"]["profile"] == "paper"
    assert preset["settings"]["anscombe"] == {"gain": 2.5, "offset": 100.0, "read_noise": 3.0}
    assert preset["settings"]["nlm_share"] == 0
    assert preset["settings"]["wiener"] is False
    assert preset["settings"]["hot_pixels"] is False
    assert preset["settings"]["likelihood"] == "poisson"

    second = plain(make_napari_viewer(), "denoise")
    assert field_values(second) == defaults  # nothing kept yet: no run, no close
    assert second.presets.load_preset(tmp_path / "mine.json")
    assert field_values(second) == changed
    assert widget_settings(second) == widget_settings(first)
    assert second.status.value == "preset mine.json applied"

    # fields a preset leaves out go back to their defaults, whatever was set before
    write_preset(tmp_path / "seed.json", make_preset("denoise", {"seed": 4}))
    assert second.presets.load_preset(tmp_path / "seed.json")
    assert field_values(second) == dict(defaults, seed=4)


def test_settings_come_back_in_the_next_session(make_napari_viewer, settings_folder):
    viewer = make_napari_viewer()
    widget = plain(viewer, "denoise")
    change_everything(widget)
    changed, settings = field_values(widget), widget_settings(widget)
    assert not (settings_folder / "denoise.json").exists()
    viewer.close()  # the widget keeps its settings when its viewer closes
    assert read_preset(settings_folder / "denoise.json", "denoise") == settings

    again = plain(make_napari_viewer(), "denoise")
    assert field_values(again) == changed
    assert again.status.value == "settings of the last session applied"


def test_a_corrupt_settings_file_is_ignored_with_a_warning(make_napari_viewer, settings_folder):
    (settings_folder / "deblock.json").write_text("{ not json")
    (settings_folder / "denoise.json").write_text(json.dumps(make_preset("denoise", {}) | {"settings": {"x": 1}}))
    before = len(notification_manager.records)
    viewer = make_napari_viewer()
    deblock, denoise = dock(viewer, "deblock"), dock(viewer, "denoise")
    warnings = [
        str(n.message) for n in notification_manager.records[before:] if n.severity == NotificationSeverity.WARNING
    ]
    assert any("ignoring the saved settings" in w and "deblock.json is not valid JSON" in w for w in warnings)
    assert any("unknown preset key 'x'" in w for w in warnings)
    assert deblock.form.seed.value == 0 and denoise.form.profile.value == "default"


def test_run_keeps_the_settings_and_a_result_gives_them_back(make_napari_viewer, qtbot, settings_folder, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_image(smooth_image(32), name="x")
    widget = dock(viewer, "denoise", iterations=4)
    widget.form.seed.value = 5
    widget.form.lipschitz.value = 0.0
    widget.form.data.normalize.value = "percentile"
    widget.form.data.noise_model.value = "off"
    widget.image.value = layer
    widget.run(wait=True, timeout=120)
    assert widget.last_result.finished
    used = field_values(widget)
    kept = read_preset(settings_folder / "denoise.json", "denoise")  # written by Run
    result = viewer.layers["x [denoise]"]
    assert result.metadata["dip_spectral"]["settings"] == kept == widget_settings(widget)
    assert kept["settings"]["anscombe"] is False and kept["settings"]["seed"] == 5

    widget.form.seed.value, widget.form.iterations.value = 1, 99
    widget.form.data.normalize.value = "dtype"
    viewer.layers.selection.active = result
    widget.presets.use_button.clicked()
    assert field_values(widget) == used
    assert widget.status.value == "settings of 'x [denoise]' applied"

    # a result saved with the plugin's writer: its record loads as the preset it was made with
    viewer.layers.selection.active = result
    viewer.layers.save(str(tmp_path / "saved.tif"), selected=True, plugin=PLUGIN)
    widget.form.seed.value = 1
    assert widget.presets.load_preset(tmp_path / "saved.json")
    assert field_values(widget) == used

    # a result made before results carried their preset: the solver configuration is used
    del result.metadata["dip_spectral"]["settings"]
    widget.form.seed.value = 1
    assert widget.presets.use_result(result)
    assert widget.form.seed.value == 5 and widget.form.iterations.value == 4
    assert "only its solver settings were recorded" in widget.status.value

    before = len(notification_manager.records)
    assert not widget.presets.use_result(layer)  # the input is no result
    assert not dock(viewer, "deblock").presets.use_result(result)  # nor for another task
    assert len(errors_since(before)) == 2


def test_bad_or_foreign_presets_are_refused_and_change_nothing(make_napari_viewer, tmp_path):
    widget = dock(make_napari_viewer(), "denoise")
    widget.form.seed.value = 3
    before = field_values(widget)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(make_preset("denoise", {}) | {"settings": {"iterations": -1}}))
    count = len(notification_manager.records)
    assert not widget.presets.load_preset(bad)
    assert "preset key 'iterations' must be an integer >= 1, got -1" in widget.status.value
    write_preset(tmp_path / "sr.json", make_preset("super_resolution", {"factor": 2}))
    assert not widget.presets.load_preset(tmp_path / "sr.json")
    assert "task 'super_resolution', not 'denoise'" in widget.status.value
    assert len(errors_since(count)) == 2
    assert field_values(widget) == before


def test_settings_the_widget_lacks_are_named_not_dropped(make_napari_viewer, tmp_path):
    widget = dock(make_napari_viewer(), "deblock")
    preset = make_preset("deblock", {"seed": 2, "channel_mode": "joint", "output_dtype": "input", "device": "cuda:7"})
    write_preset(tmp_path / "cli.json", preset)
    assert widget.presets.load_preset(tmp_path / "cli.json")
    assert widget.form.seed.value == 2 and widget.form.device.value == "auto"
    status = widget.status.value
    assert "channel_mode 'joint' (command line only)" in status and "device 'cuda:7' (not offered here)" in status
    assert "output_dtype" not in status  # what the widgets do anyway
    denoise = dock(make_napari_viewer(), "denoise")
    write_preset(tmp_path / "share.json", make_preset("denoise", {"nlm_share": 0.25}))
    assert denoise.presets.load_preset(tmp_path / "share.json")
    assert "nlm_share 0.25 (not offered here)" in denoise.status.value
    assert denoise.form.data.nlm_share.value == "auto"


def test_a_run_record_of_the_cli_loads_into_the_widget(make_napari_viewer, tmp_path):
    record = {"task": "enhance", "options": {"gain": 2.5, "iterations": 40, "lipschitz": None, "seed": 0}}
    (tmp_path / "cells_enhance.json").write_text(json.dumps(record))
    widget = dock(make_napari_viewer(), "enhance")
    assert widget.presets.load_preset(tmp_path / "cells_enhance.json")
    assert widget.form.gain.value == 2.5 and widget.form.iterations.value == 40
    assert np.isclose(widget.form.lipschitz.value, 1.0)  # the task's default


def test_engine_defaults_left_to_the_engine_unless_changed(make_napari_viewer):
    # a photon-noise Z stack averages several decoders unless the user sets a number; the
    # form must not pin the profile's 1 and so hide that default (as for the width)
    form = plain(make_napari_viewer(), "denoise").form
    assert "ensemble" not in form.options() and "channels" not in form.options()
    assert "nlm_share" not in form.options()  # the engine's: 0.3 for the default profile only
    form.data.nlm_share.value = "0.5"
    assert form.options()["nlm_share"] == 0.5
    assert "wiener" not in form.options()  # the engine's: on with the default profile
    form.data.wiener.value = "off"
    assert form.options()["wiener"] is False
    assert "hot_pixels" not in form.options()  # the engine's: replaced in photon counts
    form.data.hot_pixels.value = "replace"
    assert form.options()["hot_pixels"] is True
    assert "likelihood" not in form.options()  # the engine's choice
    form.data.likelihood.value = "gaussian"
    assert form.options()["likelihood"] == "gaussian"
    form.ensemble.value = 2
    assert form.options()["ensemble"] == 2
