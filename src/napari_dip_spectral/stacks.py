"""nD images: axes, planes, batching, per-plane or per-stack normalisation, tiling.

An image with axes such as ``"ZYX"``, ``"TCYX"`` or ``"YXS"`` is cut into 2-D planes
``(channels, Y, X)``. Every plane is restored by its own decoder; planes (or tiles of large
planes, which all have one size) are fitted ``batch_size`` at a time as the ``G`` groups of
one grouped network (:func:`napari_dip_spectral.core.solver.iterate`).

Axes letters: ``T`` (time), ``Z`` (depth), ``C`` (channel), ``S`` (samples, e.g. RGB), ``Y``,
``X``. Channels (``C`` or ``S``) are restored either independently (``channel_mode=
"independent"``: each channel a grey plane) or jointly (``"joint"``: the channels are the
network's output channels, as for colour images). ``"auto"`` (default) fits a trailing RGB
axis (``YXS``, or ``YXC`` of size 3) jointly, as the 2-D colour path does, and any other
channel axis independently.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from .api import RestoreResult, _check_mask, build_config, check_task_options
from .core.config import PROFILES, TASKS
from .core.driving import drive
from .layout import (AXIS_LETTERS, CHANNEL_MODES, STACK_PRIORS, VOLUME_CHANNELS,  # noqa: F401
                     Layout, guess_axes, joint_axis, make_layout, parse_axes, stack_layout)
from .noise_fit import photon_options, resolve_anscombe
from .normalization import METHODS, Normalization, cast_output, fit_normalization
from .tiling import (
    Tile,
    auto_tile,
    blend_weights,
    memory_budget,
    plan_tiles,
    unit_bytes,
)

NORMALIZE_PER = ("stack", "plane")
DEFAULT_OVERLAP = 16
MAX_AUTO_BATCH = 32


def stack_ranges(data, layout: Layout, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-stack intensity range of ``data`` (numpy or dask), one per independent channel:
    arrays broadcastable to ``data`` (size 1 on every other axis). Dask reductions are
    computed here (one pass over the data)."""
    if method not in METHODS:
        raise ValueError(f"normalize must be one of {METHODS}, got {method!r}")
    independent = next((a for a in "CS" if a in layout.axes and a != layout.joint), None)
    keep = layout.axes.index(independent) if independent else None
    reduce = tuple(i for i in range(len(layout.axes)) if i != keep)
    lazy = not isinstance(data, np.ndarray)
    lo, hi = data.min(axis=reduce, keepdims=True), data.max(axis=reduce, keepdims=True)
    if lazy:
        import dask

        lo, hi = (np.asarray(v, dtype=np.float64) for v in dask.compute(lo, hi))
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if method == "percentile":
        q = (0.1, 99.9)
        if lazy:
            import dask.array as da

            moved = da.moveaxis(data, keep, 0) if keep is not None else data[None]
            pairs = [da.percentile(moved[i].ravel().astype(np.float64), q) for i in range(moved.shape[0])]
            values = np.array(dask_compute(pairs))
            lo, hi = (values[:, k].reshape(lo.shape) for k in (0, 1))
        else:
            lo, hi = np.percentile(np.asarray(data, dtype=np.float64), q, axis=reduce, keepdims=True)
    elif method in ("dtype", "none"):
        if method == "dtype" and np.dtype(data.dtype).kind in "ui":
            info = np.iinfo(data.dtype)
            return np.full_like(lo, info.min), np.full_like(hi, info.max)
        if lo.min() < 0 or hi.max() > 1:
            raise ValueError(f"normalize={method!r} on float data needs values in [0, 1]; "
                             "use 'minmax' or 'percentile'")
        return np.zeros_like(lo), np.ones_like(hi)
    return lo, hi


def stabilised_ranges(data, layout: Layout, method: str, model) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stack_ranges` of ``data`` after the noise model's transform (None: none): the
    dtype's range is carried through the transform, the other methods measure the
    transformed data."""
    if model is None:
        return stack_ranges(data, layout, method)
    if method == "dtype":
        return tuple(model.forward(np.asarray(r)) for r in stack_ranges(data, layout, method))
    return stack_ranges(model.forward(data), layout, method)


def dask_compute(values: list) -> list:
    import dask

    return list(dask.compute(*values))


@dataclass
class StackEvent:
    """Progress of a stack: batch ``batch`` of ``batches`` fits the planes ``planes`` (0-based
    indices of ``n_planes``); ``event`` is the core solver's ProgressEvent of that batch."""

    batch: int
    batches: int
    planes: tuple[int, ...]
    n_planes: int
    event: object
    tiles: int = 1                     # tiles per plane (1 = untiled)

    @property
    def plane(self) -> int:
        """The first plane in this batch (0-based)."""
        return self.planes[0]

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]."""
        return (self.batch + self.event.iteration / self.event.total) / self.batches


class _ShrinkTiles(Exception):
    """Out of device memory with one tile per batch: retry with smaller tiles."""


def _check_output_dtype(output_dtype, input_dtype: np.dtype) -> np.dtype:
    if isinstance(output_dtype, str) and output_dtype == "input":
        return input_dtype if input_dtype.kind in "ui" else np.dtype(np.float32)
    try:
        dtype = np.dtype(output_dtype)
    except TypeError as error:
        raise ValueError(f"output_dtype must be 'float32', 'input' or a numpy dtype, "
                         f"got {output_dtype!r}") from error
    if dtype.kind not in "uif":
        raise ValueError(f"output_dtype must be numeric, got {output_dtype!r}")
    return dtype


class StackJob:
    """A prepared restoration of an nD image. ``run()`` yields :class:`StackEvent` and
    returns a :class:`~napari_dip_spectral.api.RestoreResult` whose image has the input's
    shape (Y, X times ``factor`` for super-resolution); ``gen.send(True)`` cancels.

    ``ranges``: precomputed per-stack ``(low, high)`` (see :func:`stack_ranges`), used by the
    dask path so that every block is normalised alike.
    """

    def __init__(self, image, task: str = "denoise", *, axes: str | None = None, mask=None,
                 factor=None, reference=None, profile: str = "default", normalize: str = "minmax",
                 normalize_per: str = "stack", channel_mode: str = "auto", gain: float = 1.0,
                 signed: bool = False, batch_size: int | None = None, tile_size: int | None = None,
                 tile_overlap: int | None = None, anscombe="auto", output_dtype="float32",
                 ranges: tuple | None = None, stack_prior: str = "auto", **options):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        arr = np.asarray(image)
        if arr.dtype == bool or arr.dtype.kind not in "uif":
            raise ValueError(f"image must be a numeric array, got dtype {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError("image contains NaN or inf values")
        profile_name = profile if profile in PROFILES else "default"
        self.layout = stack_layout(arr.shape, axes, channel_mode, stack_prior, task, profile_name)
        if self.layout.volume:
            options["decoder"] = "volume"
            if options.get("channels") is None:
                options["channels"] = VOLUME_CHANNELS
        if min(self.layout.spatial) < 8:
            raise ValueError(f"planes are too small {self.layout.spatial}; Y and X must be >= 8")
        if normalize_per not in NORMALIZE_PER:
            raise ValueError(f"normalize_per must be one of {NORMALIZE_PER}, got {normalize_per!r}")
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
        if tile_size is not None:
            plan_tiles((64, 64), tile_size, self._overlap(tile_size, tile_overlap))   # validates
        self.task, self.input_shape, self.input_dtype = task, arr.shape, arr.dtype
        self.output_dtype = _check_output_dtype(output_dtype, arr.dtype)
        yx = (self.layout.axes.index("Y"), self.layout.axes.index("X"))
        self.model, self.noise_estimate = resolve_anscombe(anscombe, arr, task, yx)
        self.config = build_config(task, profile, **photon_options(options, self.model, profile))
        if self.model is not None and normalize == "none":
            raise ValueError("normalize='none' cannot be combined with anscombe (the transform "
                             "changes the range)")
        self.factor, self.gain, self.signed = check_task_options(task, factor, gain, signed)
        self.batch_size, self.tile_size, self.tile_overlap = batch_size, tile_size, tile_overlap

        planes = self.layout.to_planes(arr)
        data = planes if self.model is None else self.model.forward(planes)
        self.normalizations, self.constant = self._normalizations(arr, planes, normalize,
                                                                  normalize_per, ranges)
        self.constant_values = planes.reshape(len(planes), -1)[:, 0].astype(np.float32)
        if all(self.constant):
            raise ValueError("image is constant: nothing to restore")
        self.unit = np.empty(data.shape, dtype=np.float32)
        for i, norm in enumerate(self.normalizations):
            self.unit[i] = norm.forward(data[i]) if norm is not None else 0
        self.masks = self._masks(mask, arr)
        if self.masks is not None:
            self.unit *= self.masks
        self.reference = None
        if reference is not None:
            self.reference = self._reference(reference)

    # -- preparation ---------------------------------------------------------------------
    def _normalizations(self, arr, planes, method, per, ranges):
        n = self.layout.n_planes
        norms: list[Normalization | None] = []
        constant = []
        if per == "stack":
            if ranges is None:
                ranges = stabilised_ranges(arr, self.layout, method, self.model)
            lows, highs = (self.layout.plane_values(r) for r in ranges)
            for i in range(n):
                ok = highs[i] > lows[i]
                norms.append(Normalization(float(lows[i]), float(highs[i]), method) if ok else None)
                constant.append(not ok)
        else:
            for i in range(n):
                try:
                    norms.append(fit_normalization(
                        planes[i], method,
                        transform=None if self.model is None else self.model.forward))
                    constant.append(False)
                except ValueError as error:
                    if "constant" not in str(error):
                        raise
                    norms.append(None)
                    constant.append(True)
        return norms, constant

    def _masks(self, mask, arr):
        if self.task != "inpaint":
            if mask is not None:
                raise ValueError(f"mask is only used by task 'inpaint', not {self.task!r}")
            return None
        m = None if mask is None else np.asarray(mask)
        if m is not None and m.shape == arr.shape and arr.ndim > 2:
            per_plane = self.layout.to_planes(m != 0).any(1, keepdims=True)
            if not per_plane.any():
                raise ValueError("mask has no observed pixel (True/1 = observed)")
            return per_plane.astype(np.float32)
        shared = _check_mask(mask, self.layout.spatial)
        return np.broadcast_to(shared.astype(np.float32), (self.layout.n_planes, 1) + shared.shape)

    def _reference(self, reference):
        ref = np.asarray(reference)
        expected = self.output_shape
        if ref.shape != expected:
            raise ValueError(f"reference shape {ref.shape} does not match the output shape {expected}")
        planes = self.layout.to_planes(ref)
        if self.model is not None:
            planes = self.model.forward(planes)
        out = np.zeros(planes.shape, dtype=np.float32)
        for i, norm in enumerate(self.normalizations):
            if norm is not None:
                out[i] = np.clip(norm.forward(planes[i]), 0, 1)
        return out

    @property
    def output_shape(self) -> tuple[int, ...]:
        f = self.factor or 1
        return tuple(s * f if a in "YX" else s for a, s in zip(self.layout.axes, self.input_shape))

    def operator(self, masks: np.ndarray | None):
        import torch

        from .core.operators import for_task

        mask = None if masks is None else torch.from_numpy(np.ascontiguousarray(masks))
        return for_task(self.task, mask=mask, factor=self.factor, gain=self.gain, signed=self.signed)

    # -- planning ------------------------------------------------------------------------
    def plan(self, device) -> tuple[int | None, int]:
        """(tile side or None, batch size) from the options and the device's memory budget."""
        scale = self.factor or 1
        c = self.layout.channels
        budget = memory_budget(device)
        tile = self.tile_size
        if tile is None:
            tile = auto_tile(self.layout.spatial, budget, self.config.channels,
                             self.config.levels, c, scale)
        side = self.layout.spatial if tile is None else tuple(min(tile, s) for s in self.layout.spatial)
        if self.batch_size is not None:
            return tile, int(self.batch_size)
        per_unit = unit_bytes(self.config.channels, self.config.levels, c,
                              side[0] * scale, side[1] * scale)
        if self.config.decoder == "volume":     # every feature map holds all Z planes
            per_unit *= c
        return tile, int(max(1, min(MAX_AUTO_BATCH, budget // max(per_unit, 1))))

    @staticmethod
    def _overlap(tile: int | None, overlap: int | None) -> int:
        """The given overlap, or by default a quarter of the tile (at most 16 pixels)."""
        if overlap is not None:
            return overlap
        return 0 if tile is None else min(DEFAULT_OVERLAP, tile // 4)

    def units(self, tile: int | None) -> tuple[list[tuple[int, Tile]], list[Tile], list]:
        h, w = self.layout.spatial
        overlap = self._overlap(tile, self.tile_overlap)
        tiles = [Tile(0, 0, h, w)] if tile is None else plan_tiles((h, w), tile, overlap)
        weights = blend_weights((h, w), tiles, overlap, self.factor or 1)
        units = [(p, t) for p in range(self.layout.n_planes) if not self.constant[p] for t in tiles]
        return units, tiles, weights

    # -- running -------------------------------------------------------------------------
    def run(self) -> Generator:
        from .core.devices import resolve_device

        device = resolve_device(self.config.device)
        tile, batch = self.plan(device)
        while True:
            try:
                state = yield from self._run_plan(tile, batch)
                break
            except _ShrinkTiles:
                h, w = self.layout.spatial
                current = tile or max(h, w)
                tile = 16 * (current // 2 // 16)
                if tile < 32:
                    from .core.solver import DeviceMemoryError

                    raise DeviceMemoryError(
                        f"out of device memory even for one {current}x{current} tile; use "
                        "device='cpu', fewer channels or a smaller image") from None
                batch = 1
        return self._result(state)

    def _run_plan(self, tile: int | None, batch_size: int) -> Generator:
        import torch

        from .core.solver import DeviceMemoryError, iterate

        units, tiles, weights = self.units(tile)
        tile_index = {t: k for k, t in enumerate(tiles)}
        scale = self.factor or 1
        n, c = self.layout.n_planes, self.layout.channels
        h, w = self.layout.spatial
        out = np.zeros((n, c, h * scale, w * scale), dtype=np.float32)
        unit_hist: dict[int, list] = {}
        unit_stop: dict[int, int] = {}
        unit_auto: dict[int, bool] = {}
        done: set[int] = set()
        cancelled = False
        seconds, parameters, device_name = 0.0, 0, str(self.config.device)
        start = 0
        n_batches = math.ceil(len(units) / batch_size)
        batch_no = 0
        while start < len(units) and not cancelled:
            chunk = list(range(start, min(start + batch_size, len(units))))
            obs = np.stack([self.unit[units[u][0]][(slice(None),) + units[u][1].slices()] for u in chunk])
            masks = None if self.masks is None else np.stack(
                [self.masks[units[u][0]][(slice(None),) + units[u][1].slices()] for u in chunk])
            ref = None
            if self.reference is not None:
                ref = torch.from_numpy(np.stack(
                    [self.reference[units[u][0]][(slice(None),) + units[u][1].slices(scale)]
                     for u in chunk]))
            planes = tuple(dict.fromkeys(units[u][0] for u in chunk))
            gen = iterate(torch.from_numpy(obs), self.operator(masks), self.config, ref)
            message = None
            try:
                while True:
                    try:
                        event = gen.send(message)
                    except StopIteration as stop:
                        outcome = stop.value
                        break
                    message = yield StackEvent(batch_no, n_batches, planes, n, event, len(tiles))
            except DeviceMemoryError:
                if batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    n_batches = batch_no + math.ceil((len(units) - start) / batch_size)
                    continue
                raise _ShrinkTiles() from None
            cancelled = outcome.stop_reason == "cancelled"
            seconds += outcome.seconds
            parameters = max(parameters, outcome.parameters // len(chunk))
            device_name = outcome.device
            for g, u in enumerate(chunk):
                p, t = units[u]
                ys, xs = t.slices(scale)
                out[p][:, ys, xs] += weights[tile_index[t]] * outcome.image[g]
                unit_hist[u] = [_entry_of(e, g) for e in outcome.history]
                unit_stop[u] = outcome.stop_iterations[g]
                unit_auto[u] = (outcome.stop_reason == "auto_stop"
                                or outcome.stop_iterations[g] < outcome.iterations)
                done.add(u)
            start = chunk[-1] + 1
            batch_no += 1
        return dict(out=out, units=units, tiles=tiles, tile=tile, batch_size=batch_size,
                    hist=unit_hist, stop=unit_stop, auto=unit_auto, done=done, cancelled=cancelled,
                    seconds=seconds, parameters=parameters, device=device_name)

    def _result(self, s: dict):
        n = self.layout.n_planes
        units_of: dict[int, list[int]] = {}
        for u, (p, _t) in enumerate(s["units"]):
            units_of.setdefault(p, []).append(u)
        plane_hist, plane_stop, plane_reason = [], [], []
        planes_done = []
        out = s["out"]
        for p in range(n):
            us = units_of.get(p, [])
            finished = bool(us) and all(u in s["done"] for u in us)
            if self.constant[p]:
                plane_hist.append([])
                plane_stop.append(0)
                plane_reason.append("constant")
                continue
            if not finished:
                out[p] = np.nan
                plane_hist.append([])
                plane_stop.append(0)
                plane_reason.append("cancelled")
                continue
            planes_done.append(p)
            plane_hist.append(_mean_history([s["hist"][u] for u in us]))
            plane_stop.append(max(s["stop"][u] for u in us))
            plane_reason.append("auto_stop" if all(s["auto"][u] for u in us) else "max_iterations")
        if s["cancelled"]:
            plane_reason = ["cancelled" if r != "constant" else r for r in plane_reason]
        image = np.empty(out.shape, dtype=np.float32)
        for p in range(n):
            norm = self.normalizations[p]
            if norm is None:      # constant plane: passed through unchanged
                image[p] = self.constant_values[p]
                continue
            values = norm.inverse(out[p])
            image[p] = values if self.model is None else self.model.inverse_transform(values)
        full = cast_output(self.layout.from_planes(image), self.output_dtype)
        real = [r for r in plane_reason if r != "constant"]
        if s["cancelled"]:
            reason = "cancelled"
        elif real and all(r == "auto_stop" for r in real):
            reason = "auto_stop"
        else:
            reason = "max_iterations"
        history = _mean_history([h for h in plane_hist if h])
        first = next(x for x in self.normalizations if x is not None)
        return RestoreResult(
            image=full, history=history,
            iterations=max((h[-1].iteration for h in plane_hist if h), default=0),
            stop_reason=reason, stop_iteration=max(plane_stop), task=self.task,
            config=self.config, seconds=s["seconds"], device=s["device"], normalization=first,
            parameters=s["parameters"],
            extra={"axes": self.layout.axes, "joint_channels": self.layout.joint,
                   "plane_histories": plane_hist, "plane_stop_iterations": plane_stop,
                   "plane_stop_reasons": plane_reason, "normalizations": self.normalizations,
                   "batch_size": s["batch_size"], "tile_size": s["tile"],
                   "tiles_per_plane": len(s["tiles"]), "planes_done": planes_done,
                   "anscombe": self.model, "noise_estimate": self.noise_estimate})

    def restore(self, callback=None):
        """Run to the end; ``callback(StackEvent)`` returning False cancels."""
        return drive(self.run(), callback)


def _entry_of(entry, g: int):
    from .core.solver import LogEntry

    return LogEntry(iteration=entry.iteration, loss=entry.loss_all[g], fbc=list(entry.fbc_all[g]),
                    ratio=entry.ratio_all[g],
                    psnr=None if entry.psnr_all is None else entry.psnr_all[g],
                    fit_all=None if entry.fit_all is None else [entry.fit_all[g]],
                    noise_level_all=None if entry.noise_level_all is None
                    else [entry.noise_level_all[g]])


def _mean_history(histories: list[list]) -> list:
    """Per logged iteration, the mean over the histories that logged it."""
    from .core.solver import LogEntry

    if len(histories) == 1:
        return histories[0]
    by_it: dict[int, list] = {}
    for hist in histories:
        for e in hist:
            by_it.setdefault(e.iteration, []).append(e)
    merged = []
    for it in sorted(by_it):
        es = by_it[it]
        psnr = None if any(e.psnr is None for e in es) else float(np.mean([e.psnr for e in es]))
        noise = all(e.fit_all and e.noise_level_all for e in es)
        merged.append(LogEntry(
            iteration=it, loss=float(np.mean([e.loss for e in es])),
            fbc=np.mean([e.fbc for e in es], axis=0).tolist(),
            ratio=float(np.mean([e.ratio for e in es])), psnr=psnr,
            loss_all=[e.loss for e in es], fbc_all=[e.fbc for e in es],
            ratio_all=[e.ratio for e in es],
            psnr_all=None if psnr is None else [e.psnr for e in es],
            fit_all=[v for e in es for v in e.fit_all] if noise else None,
            noise_level_all=[v for e in es for v in e.noise_level_all] if noise else None))
    return merged


def needs_stack_path(image, task: str, *, factor=None, channels=None, device="auto",
                     levels=None, axes=None, batch_size=None, normalize_per="stack",
                     tile_size=None, anscombe="auto", output_dtype="float32",
                     channel_mode="auto", stack_prior="auto") -> bool:
    """False when ``restore()`` can take the plain single-image path: a 2-D or ``(Y, X, 3)``
    image, no nD option set, and a plane that fits the device's memory budget."""
    shape = np.shape(image)
    if axes is None and len(shape) == 3 and shape[-1] == 4:
        return False                    # the plain path explains RGBA
    if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] == 3)):
        return True
    simple_dtype = isinstance(output_dtype, str) and output_dtype == "float32"
    if (axes is not None or batch_size is not None or tile_size is not None
            or not simple_dtype or channel_mode != "auto" or stack_prior == "volume"):
        return True
    if min(shape[:2]) < 8:
        return False                    # the plain path explains the size limit
    from .core.devices import resolve_device

    scale = factor if task == "super_resolution" and factor in (2, 4, 8) else 1
    defaults = build_config(task)
    tile = auto_tile(shape[:2], memory_budget(resolve_device(device)), channels or defaults.channels,
                     levels or defaults.levels, 3 if len(shape) == 3 else 1, scale)
    return tile is not None


def half_tile(shape: tuple[int, ...]) -> int:
    """A tile half the larger side of a plane (a multiple of 16, at least 32)."""
    return max(32, 16 * (max(shape[:2]) // 2 // 16))


def restore_stack(image, task: str = "denoise", callback=None, **kwargs):
    """Restore every plane of an nD image; see :class:`StackJob` for the options."""
    return StackJob(image, task, **kwargs).restore(callback)
