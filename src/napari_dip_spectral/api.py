"""Public API: ``restore()`` one image, and ``RestorationJob`` for callers that want events.

Arrays in, :class:`RestoreResult` out. Intensities of any range are normalised to [0, 1]
before fitting and mapped back afterwards; the caller's arrays are never modified. Torch is
imported only when a job is built.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, fields

import numpy as np

from .core.driving import drive
from .core.config import PROFILES, TASKS, SolverConfig, task_defaults
from .noise_fit import photon_options, resolve_anscombe
from .normalization import Normalization, cast_output, fit_normalization

# the SolverConfig fields restore() accepts as keywords (extras is internal)
_CONFIG_KEYS = frozenset(f.name for f in fields(SolverConfig)) - {"extras"}


@dataclass
class RestoreResult:
    """What :func:`restore` returns.

    ``image``: float32, the input's spatial shape (times ``factor`` for super-resolution) and
    the input's intensity range. ``history``: the logged iterations (``.iteration``, ``.loss``,
    ``.fbc``, ``.ratio``, ``.psnr``). ``stop_reason``: ``"auto_stop"``, ``"max_iterations"`` or
    ``"cancelled"`` (a cancelled result is the last iterate, never a finished one).
    """

    image: np.ndarray
    history: list
    iterations: int
    stop_reason: str
    stop_iteration: int
    task: str
    config: SolverConfig
    seconds: float
    device: str
    normalization: Normalization
    parameters: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.stop_reason != "cancelled"

    def as_input_dtype(self, dtype) -> np.ndarray:
        """The image in an integer dtype (rounded and clipped to its range), or float32."""
        dtype = np.dtype(dtype)
        return cast_output(self.image, dtype if dtype.kind in "ui" else np.dtype(np.float32))

def _check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise ValueError(f"image must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 4:
        raise ValueError("image has 4 channels (RGBA?): drop the alpha channel first")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3)):
        raise ValueError(
            f"image must be 2-D (Y, X) or colour (Y, X, 3), got shape {arr.shape}; "
            "use restore_stack() for stacks")
    if min(arr.shape[:2]) < 8:
        raise ValueError(f"image is too small ({arr.shape[0]}x{arr.shape[1]}); both sides must be >= 8")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("image contains NaN or inf values")
    return arr


def _check_mask(mask, spatial: tuple[int, int]) -> np.ndarray:
    if mask is None:
        raise ValueError("task 'inpaint' needs a mask (True/1 = observed pixel)")
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] in (1, 3):
        m = m.any(-1) if m.dtype == bool else (m != 0).any(-1)
    if m.shape != tuple(spatial):
        raise ValueError(f"mask shape {np.asarray(mask).shape} does not match the image's spatial shape {spatial}")
    if m.dtype.kind == "f" and not np.isfinite(m).all():
        raise ValueError("mask contains NaN or inf values")
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
    if not float(gain) > 0:
        raise ValueError(f"gain must be > 0, got {gain!r}")
    return (int(factor) if factor is not None else None), float(gain), bool(signed)


def build_config(task: str, profile: str = "default", **options) -> SolverConfig:
    """The task's defaults with the given options (``None`` = keep the default) applied."""
    config = task_defaults(task, profile)
    changes = {}
    for key, value in options.items():
        if key not in _CONFIG_KEYS:
            raise TypeError(f"unknown option {key!r}")
        if value is not None:
            changes[key] = value
    if options.get("lipschitz") is not None:
        changes["lipschitz_by_size"] = False   # a lambda the user chose is used as given
        if options["lipschitz"] == float("inf") or options["lipschitz"] is False:
            changes["lipschitz"] = None        # no control
    config = config.replace(**changes)
    config.validate()
    return config


class RestorationJob:
    """A prepared restoration of one image: validated inputs, normalisation, operator and
    settings. ``run()`` is a generator of progress events that returns a
    :class:`RestoreResult`; ``gen.send(True)`` cancels it. Used by the napari widgets."""

    def __init__(self, image, task: str = "denoise", *, mask=None, factor=None, reference=None,
                 profile: str = "default", normalize: str = "minmax", gain: float = 1.0,
                 signed: bool = False, anscombe="auto", **options):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        arr = _check_image(image)
        self.task, self.input_shape, self.input_dtype = task, arr.shape, arr.dtype
        self.model, self.noise_estimate = resolve_anscombe(anscombe, arr, task, (0, 1))
        self.config = build_config(task, profile, **photon_options(options, self.model, profile))
        self.normalization = fit_normalization(
            arr, normalize, transform=None if self.model is None else self.model.forward)
        unit = self.normalization.forward(self._forward(arr))
        self.colour = arr.ndim == 3
        planes = unit[None] if self.colour else unit[None, ..., None]     # (1, Y, X, C)
        self.observation = np.ascontiguousarray(planes.transpose(0, 3, 1, 2))
        self.mask = None
        if task == "inpaint":
            self.mask = _check_mask(mask, arr.shape[:2])
            self.observation = self.observation * self.mask[None, None]
        elif mask is not None:
            raise ValueError(f"mask is only used by task 'inpaint', not {task!r}")
        self.factor, self.gain, self.signed = check_task_options(task, factor, gain, signed)
        self.reference = None
        if reference is not None:
            ref = np.asarray(reference)
            expected = self.output_shape
            if ref.shape != expected:
                raise ValueError(f"reference shape {ref.shape} does not match the output shape {expected}")
            ref_unit = np.clip(self.normalization.forward(self._forward(ref)), 0, 1)
            ref_planes = ref_unit[None] if self.colour else ref_unit[None, ..., None]
            self.reference = np.ascontiguousarray(ref_planes.transpose(0, 3, 1, 2))

    def _forward(self, values: np.ndarray) -> np.ndarray:
        """The variance-stabilised values (unchanged without a noise model)."""
        return values if self.model is None else self.model.forward(np.asarray(values))

    @property
    def output_shape(self) -> tuple[int, ...]:
        f = self.factor or 1
        return (self.input_shape[0] * f, self.input_shape[1] * f) + tuple(self.input_shape[2:])

    def operator(self):
        import torch

        from .core.operators import for_task

        mask = None if self.mask is None else torch.from_numpy(self.mask[None, None].astype(np.float32))
        return for_task(self.task, mask=mask, factor=self.factor, gain=self.gain, signed=self.signed)

    def to_output(self, planes: np.ndarray) -> np.ndarray:
        """(1, C, H, W) in [0, 1] -> the input's layout and intensity range, float32."""
        img = planes[0].transpose(1, 2, 0)
        if not self.colour:
            img = img[..., 0]
        values = self.normalization.inverse(img)
        if self.model is not None:
            values = self.model.inverse_transform(values)
        return values.astype(np.float32)

    def run(self) -> Generator:
        import torch

        from .core.solver import iterate

        obs = torch.from_numpy(self.observation.astype(np.float32))
        ref = None if self.reference is None else torch.from_numpy(self.reference.astype(np.float32))
        outcome = yield from iterate(obs, self.operator(), self.config, ref)
        return RestoreResult(
            image=self.to_output(outcome.image), history=outcome.history,
            iterations=outcome.iterations, stop_reason=outcome.stop_reason,
            stop_iteration=outcome.stop_iterations[0], task=self.task, config=self.config,
            seconds=outcome.seconds, device=outcome.device, normalization=self.normalization,
            parameters=outcome.parameters,
            extra={"lipschitz_used": outcome.lipschitz, "anscombe": self.model,
                   "noise_estimate": self.noise_estimate})


def restore(image, task: str = "denoise", mask=None, factor=None, iterations=None,
            lipschitz=None, upsample=None, channels=None, sigma_estimator=None,
            auto_stop: bool | None = None, seed: int = 0, device: str = "auto", reference=None,
            callback: Callable | None = None, *, profile: str = "default",
            normalize: str = "minmax", gain: float = 1.0, signed: bool = False,
            axes: str | None = None, batch_size: int | None = None,
            normalize_per: str = "stack", tile_size: int | None = None, anscombe="auto",
            output_dtype="float32", channel_mode: str = "auto", stack_prior: str = "auto",
            **options) -> RestoreResult:
    """Restore a 2-D grey ``(Y, X)`` or colour ``(Y, X, 3)`` image, or every plane of an nD
    image (``axes`` such as ``"ZYX"``, ``"TCYX"``, ``"YXS"``).

    See docs/api.md for every parameter and docs/stacks.md for ``axes``, ``batch_size``,
    ``normalize_per``, ``tile_size``, ``anscombe``, ``output_dtype``, ``channel_mode`` and
    ``stack_prior``.
    ``callback(event)`` is called after each iteration (a :class:`~.stacks.StackEvent` for
    nD images); returning ``False`` cancels (``stop_reason == "cancelled"``). A dask array
    comes back as a lazy dask array of the restored image.
    """
    if type(image).__module__.split(".")[0] == "dask":
        from .lazy import restore_dask

        return restore_dask(image, task, mask=mask, factor=factor, reference=reference,
                            callback=callback, profile=profile, normalize=normalize, gain=gain,
                            signed=signed, axes=axes, batch_size=batch_size,
                            normalize_per=normalize_per, tile_size=tile_size, anscombe=anscombe,
                            output_dtype=output_dtype, channel_mode=channel_mode,
                            stack_prior=stack_prior, iterations=iterations, lipschitz=lipschitz,
                            upsample=upsample,
                            channels=channels, sigma_estimator=sigma_estimator,
                            auto_stop=auto_stop, seed=seed, device=device, **options)
    from . import stacks

    stack_options = dict(axes=axes, batch_size=batch_size, normalize_per=normalize_per,
                         tile_size=tile_size, anscombe=anscombe, output_dtype=output_dtype,
                         channel_mode=channel_mode, stack_prior=stack_prior)
    if not stacks.needs_stack_path(image, task, factor=factor, channels=channels,
                                   device=device, levels=options.get("levels"), **stack_options):
        from .core.solver import DeviceMemoryError

        try:
            return _restore_image(image, task, mask, factor, iterations, lipschitz, upsample,
                                  channels, sigma_estimator, auto_stop, seed, device, reference,
                                  callback, profile, normalize, gain, signed, anscombe=anscombe,
                                  **options)
        except DeviceMemoryError:       # the whole plane does not fit: restore it in tiles
            stack_options["tile_size"] = stacks.half_tile(np.shape(image))
    return stacks.restore_stack(image, task, callback, mask=mask, factor=factor,
                                reference=reference, profile=profile, normalize=normalize,
                                gain=gain, signed=signed, iterations=iterations,
                                lipschitz=lipschitz, upsample=upsample, channels=channels,
                                sigma_estimator=sigma_estimator, auto_stop=auto_stop, seed=seed,
                                device=device, **stack_options, **options)


def _restore_image(image, task, mask, factor, iterations, lipschitz, upsample, channels,
                   sigma_estimator, auto_stop, seed, device, reference, callback, profile,
                   normalize, gain, signed, **options) -> RestoreResult:
    """One 2-D grey or colour image through :class:`RestorationJob`."""
    job = RestorationJob(image, task, mask=mask, factor=factor, reference=reference,
                         profile=profile, normalize=normalize, gain=gain, signed=signed,
                         iterations=iterations, lipschitz=lipschitz, upsample=upsample,
                         channels=channels, sigma_estimator=sigma_estimator,
                         auto_stop=auto_stop, seed=seed, device=device, **options)
    return drive(job.run(), callback)

