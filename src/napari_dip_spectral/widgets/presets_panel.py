"""Settings that last, in a task widget: the last settings come back in the next napari
session; **Save preset...** / **Load preset...** write and read JSON presets
(:mod:`napari_dip_spectral.presets`, the format ``dip-spectral --config`` reads); **Use settings
of selected result** applies the settings a result layer was made with.

A preset always gives the same widget, whatever was set before: fields it leaves out go back
to their defaults. Settings a widget does not offer are listed in the status line, never
dropped silently.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from magicgui.widgets import Container, PushButton
from napari.utils.notifications import show_warning

from ..presets import NO_CONTROL, check_preset, from_config, make_preset, read_preset, settings_path, write_preset
from .data_fields import PRESET_CHOICES
from .form import TASK_TITLES
from .result_layers import RESULT_KEY

# settings only the CLI and restore() offer, with the value the widgets use
NOT_IN_WIDGETS = {"channel_mode": "auto", "memory_limit": None, "output_dtype": "input"}
NOISE_CHOICES = {"auto": "estimated", False: "off"}


def widget_fields(widget) -> dict:
    """The fields a preset sets, by preset key (a task without a field has none here);
    ``profile`` first: choosing it reloads the solver fields' defaults."""
    form, data = widget.form, widget.form.data
    fields = {
        "profile": form.profile,
        "iterations": form.iterations,
        "lipschitz": form.lipschitz,
        "upsample": form.upsample,
        "auto_stop": form.auto_stop,
        "seed": form.seed,
        "device": form.device,
        "learning_rate": form.learning_rate,
        "channels": form.channels,
        "ensemble": form.ensemble,
        "precision": form.precision,
        "metrics_every": form.metrics_every,
        "preview_every": form.preview_every,
        "factor": form.factor,
        "gain": form.gain,
        "normalize": data.normalize,
        "normalize_per": data.normalize_per,
        "tile_size": data.tile_size,
        "batch_size": widget.batch_size,
        "warm_start": widget.warm_start,
        "stack_prior": widget.stack_prior,
    }
    if data.noise_model is not None:
        fields.update(
            noise_model=data.noise_model,
            camera_gain=data.camera_gain,
            camera_offset=data.camera_offset,
            camera_read_noise=data.read_noise,
            nlm_share=data.nlm_share,
            wiener=data.wiener,
            hot_pixels=data.hot_pixels,
            likelihood=data.likelihood,
        )
    return {key: field for key, field in fields.items() if field is not None}


def widget_settings(widget) -> dict:
    """The widget's settings as a preset: what Run would pass to the job (a lambda or width
    left at the profile's default stays out, as in ``form.options()``)."""
    settings = dict(widget.form.options())
    if widget.batch_size.value:
        settings["batch_size"] = int(widget.batch_size.value)
    if widget.warm_start.value is not None:
        settings["warm_start"] = widget.warm_start.value
    if widget.stack_prior is not None:
        settings["stack_prior"] = widget.stack_prior.value
    return make_preset(widget.task, settings)


def apply_settings(widget, settings: dict, defaults: dict) -> list[str]:
    """Set the widget's fields from checked settings, the others to ``defaults`` (field ->
    value); returns the settings that could not be applied, in words."""
    fields = widget_fields(widget)
    for field, value in defaults.items():
        field.value = value
    fields["profile"].value = settings.get("profile", "default")
    widget.form.load_defaults()  # also when the profile did not change: the solver fields' defaults
    skipped = []
    for key, value in settings.items():
        if key == "profile":
            continue
        if key in NOT_IN_WIDGETS:
            if value != NOT_IN_WIDGETS[key]:
                skipped.append(f"{key} {value!r} (command line only)")
            continue
        if key == "anscombe":
            skipped += _apply_noise_model(fields, value)
            continue
        if key == "lipschitz" and value == NO_CONTROL:
            value = 0.0  # the field's "no control"
        try:
            if key in PRESET_CHOICES:
                value = PRESET_CHOICES[key](value)
            fields[key].value = value
        except (KeyError, ValueError):  # not offered here (a device of another machine, a seed above 2**31...)
            skipped.append(f"{key} {value!r} (not offered here)")
    return skipped


def _apply_noise_model(fields: dict, value) -> list[str]:
    if "noise_model" not in fields:  # only Denoise fits a noise model; 'auto' and off mean none here
        return [] if value in NOISE_CHOICES else ["anscombe (camera parameters: Denoise only)"]
    if isinstance(value, dict):
        fields["noise_model"].value = "known parameters"
        for key, given in value.items():
            fields[f"camera_{key}"].value = given
    else:
        fields["noise_model"].value = NOISE_CHOICES[value]
    return []


class PresetsPanel(Container):
    """Save / load preset buttons, "use settings of selected result", and the settings kept
    between sessions for the task widget ``widget``."""

    def __init__(self, widget):
        self.widget, self.task = widget, widget.task
        self.save_button = PushButton(text="Save preset...", tooltip="Save the settings to a JSON preset file.")
        self.load_button = PushButton(
            text="Load preset...",
            tooltip="Set every field from a JSON preset file (or a run record of dip-spectral); "
            "fields it leaves out go back to their defaults.",
        )
        self.use_button = PushButton(
            text="Use settings of selected result",
            tooltip="Set every field to the settings the result layer selected in the layer list was made with.",
        )
        buttons = Container(widgets=[self.save_button, self.load_button], layout="horizontal", labels=False)
        super().__init__(widgets=[buttons, self.use_button], labels=False)
        # the folder is fixed when the widget opens: a widget Qt deletes later writes where it read
        self.path = settings_path(self.task)
        self._defaults = {field: field.value for field in widget_fields(widget).values()}
        self._latest = widget_settings(widget)
        widget.changed.connect(self._remember)
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.use_button.changed.connect(lambda: self.use_result())

    # ----------------------------------------------------------------- kept between sessions
    def _remember(self, *_) -> None:
        """Keep the current settings in memory: when the viewer closes, the fields may already
        be deleted by the time the widget hears of it."""
        # a value no preset takes (a tile of 5 px: Run says why), or Qt objects already deleted
        with contextlib.suppress(ValueError, RuntimeError):
            self._latest = widget_settings(self.widget)

    def persist(self) -> dict:
        """Save the current settings for the next session (a failure is a warning) and return them."""
        self._remember()
        self._write(self._latest)
        return self._latest

    def persist_on_close(self) -> None:
        self._write(self._latest)

    def _write(self, preset: dict) -> None:
        try:
            write_preset(self.path, preset)
        except OSError as error:
            show_warning(f"{TASK_TITLES[self.task]}: could not keep the settings in {self.path}: {error}")

    def restore_persisted(self) -> None:
        """Apply the settings of the last session; a missing file is no settings, an unreadable
        or invalid one is ignored with a warning."""
        if not self.path.exists():
            return
        try:
            preset = read_preset(self.path, self.task)
        except (OSError, ValueError) as error:
            show_warning(f"{TASK_TITLES[self.task]}: ignoring the saved settings {self.path}: {error}")
            return
        self._apply(preset["settings"], "settings of the last session")

    # ----------------------------------------------------------------- presets and results
    def save_preset(self, path) -> None:
        write_preset(path, widget_settings(self.widget))
        self.widget.status.value = f"preset saved to {path}"

    def load_preset(self, path) -> bool:
        """Apply the preset (or run record) in ``path``; ``False`` if it was refused (the
        reason is shown)."""
        try:
            preset = read_preset(path, self.task)
        except (OSError, ValueError) as error:
            self.widget._fail(f"preset not loaded: {error}")
            return False
        self._apply(preset["settings"], f"preset {Path(path).name}")
        return True

    def use_result(self, layer=None) -> bool:
        """Apply the settings ``layer`` (default: the selected layer) was made with."""
        layer = self.widget.viewer.layers.selection.active if layer is None else layer
        summary = getattr(layer, "metadata", {}).get(RESULT_KEY)
        if not summary or "config" not in summary:
            self.widget._fail("select a finished result layer of this plugin in the layer list")
            return False
        if summary.get("task") != self.task:
            self.widget._fail(f"{layer.name!r} is a {summary.get('task')!r} result; use its own widget")
            return False
        try:
            if "settings" in summary:
                settings, note = check_preset(summary["settings"])["settings"], []
            else:  # made before results carried their preset: the solver settings only
                settings, note = from_config(self.task, summary["config"]), ["only its solver settings were recorded"]
        except ValueError as error:
            self.widget._fail(f"settings of {layer.name!r} not used: {error}")
            return False
        self._apply(settings, f"settings of {layer.name!r}", note)
        return True

    def _apply(self, settings: dict, what: str, notes: list[str] = ()) -> None:
        skipped = apply_settings(self.widget, settings, self._defaults)
        self._remember()
        message = f"{what} applied"
        if skipped:
            message += "; not applied: " + ", ".join(skipped)
        self.widget.status.value = "; ".join([message, *notes])

    def _save_dialog(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        start = str(Path.home() / f"{self.task}_preset.json")
        path, _ = QFileDialog.getSaveFileName(self.native, "Save preset", start, "JSON preset (*.json)")
        if path:
            try:
                self.save_preset(path)
            except OSError as error:
                self.widget._fail(f"preset not saved: {error}")

    def _load_dialog(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Load preset", str(Path.home()), "JSON (*.json)")
        if path:
            self.load_preset(path)
