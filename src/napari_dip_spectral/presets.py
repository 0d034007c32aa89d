"""Settings that last: one task's settings as a JSON preset, shared by the widgets and the CLI.

A preset file::

    {"format": "napari-dip-spectral preset", "version": 1, "task": "denoise",
     "settings": {"iterations": 2000, "seed": 3, "anscombe": "auto", ...}}

``settings`` holds ``restore()``'s keyword arguments by their names; a key left out (or
``null``) keeps the task's default, so a preset written by a newer default still means "the
default". Unknown keys are refused rather than dropped: a misspelt key would otherwise run
with a setting the user believes is changed. A run record the CLI writes (``<name>_<task>.json``)
is read as the preset of its ``options``, the record the plugin's writer saves beside a result
layer as the preset that result was made with. Nothing here imports napari, Qt or torch.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import tempfile
from pathlib import Path

from .core.config import PRECISIONS, PROFILES, STOP_RULES, TASKS, UPSAMPLERS
from .engine.intensity import NORMALIZE_PER
from .engine.layout import CHANNEL_MODES, STACK_PRIORS
from .engine.normalization import CHOICES
from .engine.tiling import MIN_TILE
from .noise.likelihood import LIKELIHOODS
from .refinement.nonlocal_share import check_share

FORMAT, VERSION = "napari-dip-spectral preset", 1
CONFIG_DIR_ENV = "NAPARI_DIP_SPECTRAL_CONFIG_DIR"  # overrides the user config folder (tests, portable installs)
NO_CONTROL = "none"  # lipschitz: no Lipschitz control (JSON has no infinity)
CAMERA_KEYS = ("gain", "offset", "read_noise")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(low: int, high: float = math.inf):
    def check(value):
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        bound = f">= {low}" if high == math.inf else f"from {low} to {high}"
        raise ValueError(f"an integer {bound}")

    return check


def _positive(value):
    if _number(value) and value > 0:
        return float(value)
    raise ValueError("a number > 0")


def _one_of(choices):
    def check(value):
        if isinstance(value, str) and value in choices:
            return value
        raise ValueError(f"one of {', '.join(map(repr, choices))}")

    return check


def _boolean(value):
    if isinstance(value, bool):
        return value
    raise ValueError("true or false")


def _device(value):
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError("a device name such as 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'")


def _lipschitz(value):
    # a run record keeps "no control" as the infinity the CLI passed (JSON Infinity)
    if value == NO_CONTROL or (isinstance(value, float) and value == math.inf):
        return NO_CONTROL
    if _number(value) and value > 0:
        return float(value)
    raise ValueError(f"a number > 0, or {NO_CONTROL!r} for no Lipschitz control")


def _anscombe(value):
    if value == "auto" or value is False:
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(CAMERA_KEYS))
        if unknown:
            raise ValueError(f"camera parameters {', '.join(CAMERA_KEYS)} only; unknown: {', '.join(unknown)}")
        camera = {"gain": 1.0, "offset": 0.0, "read_noise": 0.0}
        for key, given in value.items():
            if not _number(given) or (key == "gain" and given <= 0) or (key == "read_noise" and given < 0):
                raise ValueError(f"camera {key} must be a number (gain > 0, read_noise >= 0), got {given!r}")
            camera[key] = float(given)
        return camera
    raise ValueError("'auto' (estimate the noise model), false (none) or {'gain': .., 'offset': .., 'read_noise': ..}")


def _factor(value):
    if isinstance(value, int) and not isinstance(value, bool) and value in (2, 4, 8):
        return value
    raise ValueError("2, 4 or 8")


# every key a preset may hold, with its check; each check returns the value as stored
CHECKS = {
    "profile": _one_of(PROFILES),
    "iterations": _integer(1),
    "lipschitz": _lipschitz,
    "upsample": _one_of(UPSAMPLERS),
    "auto_stop": _boolean,
    "seed": _integer(0, 2**63 - 1),
    "device": _device,
    "learning_rate": _positive,
    "channels": _integer(1, 4096),
    "ensemble": _integer(1, 64),
    "metrics_every": _integer(1),
    "stop_rule": _one_of(STOP_RULES),
    "precision": _one_of(PRECISIONS),
    "preview_every": _integer(0),
    "factor": _factor,
    "gain": _positive,
    "normalize": _one_of(CHOICES),
    "normalize_per": _one_of(NORMALIZE_PER),
    "tile_size": _integer(MIN_TILE),
    "anscombe": _anscombe,
    "batch_size": _integer(1),
    "warm_start": _boolean,
    "stack_prior": _one_of(("auto", *STACK_PRIORS)),
    "channel_mode": _one_of(CHANNEL_MODES),
    "memory_limit": _positive,
    "output_dtype": _one_of(("input", "float32")),
    "nlm_share": check_share,
    "wiener": _boolean,
    "hot_pixels": _boolean,
    "likelihood": _one_of(LIKELIHOODS),
}


TASK_ONLY = {  # keys only one task uses
    "factor": "super_resolution",
    "gain": "enhance",
    "nlm_share": "denoise",
    "wiener": "denoise",
    "hot_pixels": "denoise",
    "likelihood": "denoise",
}


def check_settings(task: str, settings: dict) -> dict:
    """The settings as stored: each key known and of its kind, ``None`` values dropped
    (they mean "the default"). Raises ``ValueError`` naming the first bad key."""
    if task not in TASKS:
        raise ValueError(f"preset task must be one of {TASKS}, got {task!r}")
    if not isinstance(settings, dict):
        raise ValueError(f"preset 'settings' must be an object of key: value, got {type(settings).__name__}")
    checked = {}
    for key, value in settings.items():
        if key not in CHECKS:
            near = difflib.get_close_matches(str(key), CHECKS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f"; known keys: {', '.join(sorted(CHECKS))}"
            raise ValueError(f"unknown preset key {key!r}{hint}")
        if value is None:
            continue
        if key in TASK_ONLY and TASK_ONLY[key] != task:
            raise ValueError(f"preset key {key!r} is only used by task {TASK_ONLY[key]!r}, not {task!r}")
        try:
            checked[key] = CHECKS[key](value)
        except ValueError as error:
            raise ValueError(f"preset key {key!r} must be {error}, got {value!r}") from None
    return checked


def make_preset(task: str, settings: dict) -> dict:
    """A preset (the JSON object written to a file) from ``restore()``-style settings."""
    return {"format": FORMAT, "version": VERSION, "task": task, "settings": check_settings(task, settings)}


def check_preset(data) -> dict:
    """A preset or a CLI run record, read from JSON, as a checked preset."""
    if not isinstance(data, dict):
        raise ValueError("a preset must be a JSON object")
    if "format" not in data and isinstance(data.get("options"), dict) and "task" in data:
        return make_preset(data["task"], data["options"])  # a run record: replay its options
    run = data.get("run")
    if "format" not in data and isinstance(run, dict) and isinstance(run.get("settings"), dict):
        return check_preset(run["settings"])  # the record saved beside a result layer: the preset it ran with
    if data.get("format") != FORMAT:
        raise ValueError(
            f"not a preset (no \"format\": \"{FORMAT}\"), a run record of the CLI (no 'task' and 'options') "
            "nor the record of a saved result (no 'run' with 'settings')"
        )
    unknown = sorted(set(data) - {"format", "version", "task", "settings"})
    if unknown:
        raise ValueError(f"unknown preset key {unknown[0]!r} (a preset has format, version, task and settings)")
    if data.get("version") != VERSION:
        raise ValueError(f"preset version {data.get('version')!r} is not supported (this version reads {VERSION})")
    return make_preset(data.get("task"), data.get("settings", {}))


def read_preset(path, task: str | None = None) -> dict:
    """The checked preset in the file ``path`` (a preset or a run record); with ``task``,
    a preset of another task is refused."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name} is not valid JSON: {error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not a text (JSON) file") from None
    try:
        preset = check_preset(data)
    except ValueError as error:
        raise ValueError(f"{path.name}: {error}") from None
    if task is not None and preset["task"] != task:
        raise ValueError(f"{path.name} holds settings of task {preset['task']!r}, not {task!r}")
    return preset


def write_preset(path, preset: dict) -> None:
    """Write ``preset`` as JSON, atomically (a temporary file in the same folder, then
    ``os.replace``), so that a crash never leaves half a settings file."""
    path = Path(path)
    text = json.dumps(check_preset(preset), indent=1, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_options(settings: dict) -> dict:
    """``restore()`` keyword arguments from checked settings."""
    options = dict(settings)
    if options.get("lipschitz") == NO_CONTROL:
        options["lipschitz"] = math.inf
    return options


def settings_dir() -> Path:
    """Where the widgets keep each task's last settings: ``$NAPARI_DIP_SPECTRAL_CONFIG_DIR``,
    else the user config folder of this platform."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-dip-spectral"))


def settings_path(task: str) -> Path:
    return settings_dir() / f"{task}.json"


def from_config(task: str, config: dict) -> dict:
    """Settings from a result's solver configuration (``dataclasses.asdict`` of a
    ``SolverConfig``), for results that carry no preset: only what the configuration records.
    A lambda the default profile scaled to the image size is left to the profile."""
    keys = (
        "iterations",
        "upsample",
        "auto_stop",
        "seed",
        "device",
        "learning_rate",
        "channels",
        "ensemble",
        "metrics_every",
    )
    settings = {key: config[key] for key in (*keys, "preview_every") if key in config}
    if config.get("lipschitz") is None and "lipschitz" in config:
        settings["lipschitz"] = NO_CONTROL
    elif not config.get("lipschitz_by_size", False) and "lipschitz" in config:
        settings["lipschitz"] = config["lipschitz"]
    return check_settings(task, settings)
