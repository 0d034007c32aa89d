"""Every check of the caller's input in one place: task and profile, the image, the mask, the
task's own options, the output dtype and the solver options.

Each check raises a ``ValueError`` (or ``TypeError`` for an unknown keyword) that names the
problem; none modifies its argument.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from ..core.config import PROFILES, TASKS, SolverConfig, task_defaults

# the SolverConfig fields restore() accepts as keywords
CONFIG_KEYS = frozenset(f.name for f in fields(SolverConfig))
MIN_SIDE = 8
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_task_profile(task: str, profile: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")


def check_image(image, axes: str | None = None) -> np.ndarray:
    """The image as an array: numeric, finite, not RGBA when its axes are guessed."""
    arr = np.asarray(image)
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise ValueError(f"image must be a numeric array, got dtype {arr.dtype}")
    if axes is None and arr.ndim == 3 and arr.shape[-1] == 4:
        raise ValueError(
            "image has 4 channels (RGBA?): drop the alpha channel first, or give "
            "axes (e.g. 'YXC') to restore them as channels"
        )
    if arr.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (Y, X), got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("image contains NaN or inf values")
    if arr.dtype.itemsize > 4 and arr.size and np.abs(arr).max() > FLOAT32_MAX:
        raise ValueError(
            "image values exceed float32's range (about 3.4e38), in which the result is returned: scale the image first"
        )
    return arr


def check_plane_size(spatial: tuple[int, int]) -> None:
    if min(spatial) < MIN_SIDE:
        raise ValueError(f"image is too small ({spatial[0]}x{spatial[1]}); both sides (Y and X) must be >= {MIN_SIDE}")


def check_mask(mask, spatial: tuple[int, int]) -> np.ndarray:
    """One observed-pixel mask for every plane: bool ``spatial``, with something observed."""
    if mask is None:
        raise ValueError("task 'inpaint' needs a mask (True/1 = observed pixel)")
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise ValueError(f"mask must be a boolean or numeric array, got dtype {m.dtype}")
    if m.dtype.kind == "f" and not np.isfinite(m).all():
        raise ValueError("mask contains NaN or inf values")
    if m.ndim == 3 and m.shape[-1] in (1, 3):
        m = m.any(-1) if m.dtype == bool else (m != 0).any(-1)
    if m.shape != tuple(spatial):
        raise ValueError(
            f"mask shape {np.asarray(mask).shape} does not match the image's spatial shape {tuple(spatial)}"
        )
    m = m != 0
    if not m.any():
        raise ValueError("mask has no observed pixel (True/1 = observed)")
    return m


def check_task_options(task: str, factor, gain, signed) -> tuple[int | None, float, bool]:
    """Validated (factor, gain, signed): a factor only for super-resolution (2, 4 or 8)."""
    if task == "super_resolution":
        if factor not in (2, 4, 8):
            raise ValueError(f"factor must be 2, 4 or 8 for super_resolution, got {factor!r}")
    elif factor is not None:
        raise ValueError(f"factor is only used by task 'super_resolution', not {task!r}")
    try:
        gain_value = float(gain)
    except (TypeError, ValueError):
        raise ValueError(f"gain must be a number > 0, got {gain!r}") from None
    if not (gain_value > 0 and np.isfinite(gain_value)):
        raise ValueError(f"gain must be a finite number > 0, got {gain!r}")
    return (int(factor) if factor is not None else None), gain_value, bool(signed)


def check_output_dtype(output_dtype, input_dtype: np.dtype) -> np.dtype:
    if output_dtype is None:
        return np.dtype(np.float32)
    if isinstance(output_dtype, str) and output_dtype == "input":
        return input_dtype if input_dtype.kind in "ui" else np.dtype(np.float32)
    try:
        dtype = np.dtype(output_dtype)
    except TypeError as error:
        raise ValueError(f"output_dtype must be 'float32', 'input' or a numpy dtype, got {output_dtype!r}") from error
    if dtype.kind not in "uif":
        raise ValueError(f"output_dtype must be numeric, got {output_dtype!r}")
    return dtype


def check_batch_size(batch_size) -> None:
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")


def check_memory_limit(limit) -> float | None:
    """The memory one batch may use, in GiB (None: the device's own budget)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, float, np.integer, np.floating)):
        raise ValueError(f"memory_limit must be a number of GiB > 0, got {limit!r}")
    if not (np.isfinite(limit) and limit > 0):
        raise ValueError(f"memory_limit must be a number of GiB > 0, got {limit!r}")
    return float(limit)


def check_warm_start(warm_start, stop_rule: str) -> None:
    """ValueError unless ``warm_start`` is None, True or False, and usable with ``stop_rule``."""
    if warm_start is not None and not isinstance(warm_start, (bool, np.bool_)):
        raise ValueError(f"warm_start must be True or False, got {warm_start!r}")
    if warm_start and stop_rule == "sure":
        # its twin fit keeps no decoder at the kept result, and a decoder from the end of
        # a fit carries its plane's noise into the next (docs/stacks.md, warm starts)
        raise ValueError("warm_start cannot be combined with stop_rule='sure'")


def build_config(task: str, profile: str = "default", **options) -> SolverConfig:
    """The task's defaults with the given options (``None`` = keep the default) applied."""
    config = task_defaults(task, profile)
    changes = {}
    for key, value in options.items():
        if key not in CONFIG_KEYS:
            raise TypeError(f"unknown option {key!r}")
        if value is not None:
            changes[key] = value
    if options.get("lipschitz") is not None:
        changes["lipschitz_by_size"] = False  # a lambda the user chose is used as given
        if options["lipschitz"] == float("inf") or options["lipschitz"] is False:
            changes["lipschitz"] = None  # no control
    config = config.replace(**changes)
    config.validate()
    return config
