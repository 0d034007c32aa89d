"""The one job every face runs: a 2-D image is one plane, a stack many; planes (or tiles of
large planes, all of one size) are fitted ``batch_size`` at a time (core/fitting.py).

``RestoreJob(image, task, ...)`` validates and prepares everything up front; ``run()`` plans
batches and tiles from the device's memory, yields ``RunEvent`` and returns a
``RestoreResult``, falling back to smaller batches, then tiles, when memory runs out.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np

from ..core.driving import drive
from ..noise.hot_pixels import resolve_noise
from ..noise.likelihood import fit_operator, photon_scales, resolve_likelihood
from ..noise.noise_fit import photon_options, stabilised_sigma
from ..noise.saturation import lower_saturated_for, restore_saturated
from ..refinement.nonlocal_share import resolve_share
from ..refinement.refine import refine
from ..refinement.wiener_pass import resolve_wiener
from .events import RunEstimate, RunEvent
from .intensity import NORMALIZE_PER, plane_normalizations
from .layout import photon_stack, stack_layout
from .normalization import resolve_normalize
from .result import PlanState, assemble_result, entry_of
from .tiling import (
    Tile,
    auto_tile,
    blend_weights,
    check_tiling,
    memory_budget,
    plan_tiles,
    unit_bytes,
)
from .validate import (
    build_config,
    check_batch_size,
    check_image,
    check_mask,
    check_memory_limit,
    check_output_dtype,
    check_plane_size,
    check_task_options,
    check_task_profile,
    check_warm_start,
)
from .widths import with_default_width

DEFAULT_OVERLAP = 16
MAX_AUTO_BATCH = 32


class _ShrinkTiles(Exception):
    """Out of device memory with one tile per batch: retry with smaller tiles."""


class RestoreJob:
    """A prepared restoration of a 2-D image or an nD stack (``axes`` such as ``"ZYX"``;
    guessed when not given, a 2-D or ``(Y, X, 3)`` image needs none). ``run()`` yields
    :class:`~napari_dip_spectral.engine.events.RunEvent` and returns a
    :class:`~napari_dip_spectral.engine.result.RestoreResult` whose image has the input's shape
    (Y, X times ``factor`` for super-resolution); ``gen.send(True)`` cancels.

    ``ranges``: precomputed per-stack ``(low, high)`` (see :func:`stack_ranges`), used by the
    dask path so that every block is normalised alike.
    """

    def __init__(
        self,
        image,
        task: str = "denoise",
        *,
        axes: str | None = None,
        mask=None,
        factor=None,
        reference=None,
        profile: str = "default",
        normalize: str = "auto",
        normalize_per: str = "stack",
        channel_mode: str = "auto",
        gain: float = 1.0,
        signed: bool = False,
        batch_size: int | None = None,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        anscombe="auto",
        output_dtype="float32",
        ranges: tuple | None = None,
        stack_prior: str = "auto",
        memory_limit: float | None = None,
        warm_start: bool | None = None,
        nlm_share: float | None = None,
        wiener: bool | None = None,
        hot_pixels: bool | None = None,
        likelihood: str | None = None,
        **options,
    ):
        check_task_profile(task, profile)
        arr = check_image(image, axes)
        normalize = resolve_normalize(normalize, profile, arr)
        if axes is None and arr.ndim == 3 and arr.shape[-1] == 3:
            axes = "YXS"  # a colour image: its channels fitted jointly
        self.layout = stack_layout(arr.shape, axes, channel_mode, stack_prior, task, profile)
        noise = resolve_noise(anscombe, arr, task, profile, self.layout.axes, hot_pixels)
        arr, self.model, self.noise_estimate, self.hot_pixels = noise
        # after the noise model, which leaves saturated pixels out by their level
        photon = self.model is not None
        arr, self.saturated, self.saturation_level = lower_saturated_for(arr, task, profile, photon_noise=photon)
        self.nlm_share = resolve_share(nlm_share, task, profile)
        joint_stack = stack_prior == "auto" and self.layout.volume and self.model is not None
        if joint_stack:
            self.layout = photon_stack(self.layout)
        self.wiener = resolve_wiener(wiener, task, profile)
        self.likelihood = resolve_likelihood(likelihood, task, profile, self.model)
        if self.layout.volume:
            options["decoder"] = "volume"
        check_plane_size(self.layout.spatial)
        if normalize_per not in NORMALIZE_PER:
            raise ValueError(f"normalize_per must be one of {NORMALIZE_PER}, got {normalize_per!r}")
        check_batch_size(batch_size)
        if tile_size is not None:
            check_tiling(tile_size)  # the tile itself, before its default overlap is derived from it
            check_tiling(tile_size, self._overlap(tile_size, tile_overlap))
        self.task, self.input_shape, self.input_dtype = task, arr.shape, arr.dtype
        self.output_dtype = check_output_dtype(output_dtype, arr.dtype)
        self.config = build_config(task, profile, **photon_options(options, self.model, profile, joint_stack))
        if self.model is not None and normalize == "none":
            raise ValueError("normalize='none' cannot be combined with anscombe (the transform changes the range)")
        self.factor, self.gain, self.signed = check_task_options(task, factor, gain, signed)
        self.batch_size, self.tile_size, self.tile_overlap = batch_size, tile_size, tile_overlap
        self.memory_limit = check_memory_limit(memory_limit)
        check_warm_start(warm_start, self.config.stop_rule)
        self.warm_start, self.profile = warm_start, profile

        planes = self.layout.to_planes(arr)
        data = planes if self.model is None else self.model.forward(planes)
        self.normalizations, self.constant = plane_normalizations(
            arr, planes, self.layout, normalize, normalize_per, ranges, self.model
        )
        self.config = stabilised_sigma(self.config, self.model, self.normalizations)
        if options.get("channels") is None:  # the width for this data and device (engine/widths.py)
            self.config = with_default_width(self.config, task, profile, self.model, self.layout, self.normalizations)
        self.constant_values = planes.reshape(len(planes), -1)[:, 0].astype(np.float32)
        if all(self.constant):
            raise ValueError("image is constant: nothing to restore")
        self.unit = np.empty(data.shape, dtype=np.float32)
        for i, norm in enumerate(self.normalizations):
            self.unit[i] = norm.forward(data[i]) if norm is not None else 0
        self.masks = self._masks(mask, arr)
        if self.masks is not None:
            self.unit *= self.masks
        elif self.saturated is not None:  # unobserved in the fit's data term (noise/saturation.py)
            self.masks = (~self.layout.to_planes(self.saturated)).astype(np.float32)
        self.photon_scales = photon_scales(self)
        self.reference = None if reference is None else self._reference(reference)

    # -- preparation ---------------------------------------------------------------------
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
        shared = check_mask(mask, self.layout.spatial)
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

    def operator(self, masks: np.ndarray | None, planes: list[int]):
        """The operator of a batch: its units' masks and the plane of each unit."""
        return fit_operator(self, masks, planes)

    def to_output(self, unit: np.ndarray) -> np.ndarray:
        """Planes ``(n_planes, C, H, W)`` in [0, 1] (a finished run's, or a preview of a job
        whose one batch holds every plane) -> the input's layout and intensity range, float32.
        Constant planes pass through unchanged."""
        image = np.empty(unit.shape, dtype=np.float32)
        for p, norm in enumerate(self.normalizations):
            if norm is None:
                image[p] = self.constant_values[p]
                continue
            values = norm.inverse(unit[p])
            image[p] = values if self.model is None else self.model.inverse_transform(values)
        return restore_saturated(self.layout.from_planes(image), self.saturated, self.saturation_level)

    # -- planning ------------------------------------------------------------------------
    def plan(self, device) -> tuple[int | None, int]:
        """(tile side or None, batch size) from the options and the device's memory budget."""
        scale = self.factor or 1
        c = self.layout.channels
        budget = memory_budget(device)
        if self.memory_limit is not None:  # the caller's cap on one batch, in GiB
            budget = min(budget, int(self.memory_limit * 2**30))
        tile = self.tile_size
        if tile is None:
            tile = auto_tile(
                self.layout.spatial, budget // self.config.ensemble, self.config.channels, self.config.levels, c, scale
            )
        side = self.layout.spatial if tile is None else tuple(min(tile, s) for s in self.layout.spatial)
        if self.batch_size is not None:
            return tile, int(self.batch_size)
        if self.warm(device, tile):  # each plane (or tile) starts from the one fitted before it
            return tile, 1
        per_unit = unit_bytes(self.config.channels, self.config.levels, c, side[0] * scale, side[1] * scale)
        if self.config.decoder == "volume":  # every feature map holds all Z planes
            per_unit *= c
        per_unit *= self.config.ensemble  # each plane's members are groups of its batch
        return tile, int(max(1, min(MAX_AUTO_BATCH, budget // max(per_unit, 1))))

    def warm(self, device, tile: int | None) -> bool:
        """Whether each batch starts from the decoder fitted last. ``warm_start=None``: for
        denoising with the default profile on the CPU (where a batch of planes is no faster
        than its planes one by one) a stack's planes along Z or T, fitted whole, start from
        their neighbour: along a fluorescence stack as good as one cold batch or better, in a
        fraction of the time; from an unrelated image (tiles, channels) no better than a cold
        start and no sooner (docs/speed.md, warm starts)."""
        if self.warm_start is not None:
            return bool(self.warm_start)
        loop = [a for a, n in zip(self.layout.loop_axes, self.layout.loop_shape) if n > 1]
        return (
            getattr(device, "type", str(device)) == "cpu"
            and tile is None
            and bool(loop)
            and loop[-1] in "ZT"
            and self.task == "denoise"
            and self.profile == "default"
            and self.config.stop_rule != "sure"
        )

    @staticmethod
    def _overlap(tile: int | None, overlap: int | None) -> int:
        """The given overlap, or by default a quarter of the tile (at most 16 pixels)."""
        return overlap if overlap is not None else 0 if tile is None else min(DEFAULT_OVERLAP, tile // 4)

    def units(self, tile: int | None) -> tuple[list[tuple[int, Tile]], list[Tile], list]:
        h, w = self.layout.spatial
        overlap = self._overlap(tile, self.tile_overlap)
        tiles = [Tile(0, 0, h, w)] if tile is None else plan_tiles((h, w), tile, overlap)
        weights = blend_weights((h, w), tiles, overlap, self.factor or 1)
        units = [(p, t) for p in range(self.layout.n_planes) if not self.constant[p] for t in tiles]
        return units, tiles, weights

    def batch(self, units: list[tuple[int, Tile]]):
        """The observation (a tensor), masks (numpy or None) and reference (a tensor or None)
        of one batch of (plane, tile) units."""
        import torch

        scale = self.factor or 1

        def cut(planes: np.ndarray, unit, s: int = 1) -> np.ndarray:
            return planes[unit[0]][(slice(None),) + unit[1].slices(s)]

        obs = torch.from_numpy(np.stack([cut(self.unit, u) for u in units]))
        masks = None if self.masks is None else np.stack([cut(self.masks, u) for u in units])
        ref = None
        if self.reference is not None:
            ref = torch.from_numpy(np.stack([cut(self.reference, u, scale) for u in units]))
        return obs, masks, ref

    def estimate(self, probe: int | None = None) -> RunEstimate:
        """The run's expected time from a few timed iterations (engine/estimate.py)."""
        from .estimate import estimate_run  # torch only once a run is planned

        return estimate_run(self, probe)

    # -- running -------------------------------------------------------------------------
    def run(self) -> Generator:
        from ..core.devices import resolve_device

        device = resolve_device(self.config.device)
        tile, batch = self.plan(device)
        while True:
            try:
                state = yield from self._run_plan(tile, batch, self.warm(device, tile))
                break
            except _ShrinkTiles:
                h, w = self.layout.spatial
                current = tile or max(h, w)
                tile = 16 * (current // 2 // 16)
                if tile < 32:
                    from ..core.solver import DeviceMemoryError

                    raise DeviceMemoryError(
                        f"out of device memory even for one {current}x{current} tile; use "
                        "device='cpu', fewer channels or a smaller image"
                    ) from None
                batch = 1
        refine(self, state)  # the share of non-local means, the Wiener pass
        return assemble_result(self, state)

    def _run_plan(self, tile: int | None, batch_size: int, warm: bool) -> Generator:
        from ..core.fitting import fit
        from ..core.solver import DeviceMemoryError

        units, tiles, weights = self.units(tile)
        tile_index = {t: k for k, t in enumerate(tiles)}
        scale = self.factor or 1
        n, c = self.layout.n_planes, self.layout.channels
        h, w = self.layout.spatial
        out = np.zeros((n, c, h * scale, w * scale), dtype=np.float32)
        unit_hist: dict[int, list] = {}
        unit_stop: dict[int, int] = {}
        unit_auto: dict[int, bool] = {}
        unit_iterations: dict[int, int] = {}
        unit_rules: dict[int, str] = {}
        done: set[int] = set()
        cancelled = False
        seconds, parameters, device_name = 0.0, 0, str(self.config.device)
        lipschitz, precision = self.config.lipschitz, self.config.precision
        start = 0
        fitted = None  # the last fitted decoder: the next batch's warm start
        n_batches = math.ceil(len(units) / batch_size)
        batch_no = 0
        while start < len(units) and not cancelled:
            chunk = list(range(start, min(start + batch_size, len(units))))
            obs, masks, ref = self.batch([units[u] for u in chunk])
            unit_planes = [units[u][0] for u in chunk]
            planes = tuple(dict.fromkeys(unit_planes))
            gen = fit(obs, self.operator(masks, unit_planes), self.config, ref, fitted, keep_weights=warm)
            message = None
            try:
                while True:
                    try:
                        event = gen.send(message)
                    except StopIteration as stop:
                        outcome = stop.value
                        break
                    message = yield RunEvent(batch_no, n_batches, planes, n, event, len(tiles), len(chunk))
            except DeviceMemoryError:
                if batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    n_batches = batch_no + math.ceil((len(units) - start) / batch_size)
                    continue
                raise _ShrinkTiles() from None
            cancelled = outcome.stop_reason == "cancelled"
            fitted = outcome.weights
            seconds += outcome.seconds
            parameters = max(parameters, outcome.parameters // len(chunk))
            device_name, lipschitz, precision = outcome.device, outcome.lipschitz, outcome.precision
            for g, u in enumerate(chunk):
                p, t = units[u]
                ys, xs = t.slices(scale)
                out[p][:, ys, xs] += weights[tile_index[t]] * outcome.image[g]
                unit_hist[u] = [entry_of(e, g) for e in outcome.history]
                unit_stop[u] = outcome.stop_iterations[g]
                unit_iterations[u] = outcome.iterations
                unit_rules[u] = outcome.rules[g]
                unit_auto[u] = outcome.stop_reason == "auto_stop" or outcome.stop_iterations[g] < outcome.iterations
                done.add(u)
            start = chunk[-1] + 1
            batch_no += 1
        return PlanState(
            out=out,
            units=units,
            tiles=tiles,
            tile=tile,
            batch_size=batch_size,
            warm_start=warm,
            hist=unit_hist,
            stop=unit_stop,
            auto=unit_auto,
            iterations=unit_iterations,
            rules=unit_rules,
            done=done,
            cancelled=cancelled,
            seconds=seconds,
            parameters=parameters,
            device=device_name,
            lipschitz=lipschitz,
            precision=precision,
        )

    def restore(self, callback=None):
        """Run to the end; ``callback(event)`` returning False cancels."""
        return drive(self.run(), callback)
