"""What a run returns: :class:`RestoreResult`, and the merging of per-plane (or per-tile)
histories into one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from ..core.config import SolverConfig
from .normalization import Normalization, cast_output

if TYPE_CHECKING:
    from ..noise.anscombe import PoissonGaussian
    from ..noise.noise_fit import NoiseEstimate

# the fields that earlier versions returned in the ``extra`` dict, under the same names
EXTRA_KEYS = (
    "axes",
    "joint_channels",
    "plane_histories",
    "plane_stop_iterations",
    "plane_stop_reasons",
    "normalizations",
    "batch_size",
    "tile_size",
    "tiles_per_plane",
    "planes_done",
    "anscombe",
    "noise_estimate",
    "lipschitz_used",
    "plane_stop_rules",
    "stop_rules",
    "nlm_share",
)


@dataclass
class RestoreResult:
    """What :func:`restore` returns.

    ``image``: float32, the input's spatial shape (times ``factor`` for super-resolution) and
    the input's intensity range. ``history``: the logged iterations (``.iteration``, ``.loss``,
    ``.fbc``, ``.ratio``, ``.psnr``). ``stop_reason``: ``"auto_stop"``, ``"max_iterations"`` or
    ``"cancelled"`` (a cancelled result is the last iterate, never a finished one).

    Per plane (a plane of the input's layout, or a volume; docs/stacks.md) and about the run's
    layout, tiling and noise model: the fields after ``parameters``. :attr:`extra` shows them
    as the read-only dict earlier versions returned.
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
    axes: str = ""  # the input's axes, e.g. "ZYX"
    joint_channels: str | None = None  # the axis fitted as one decoder's channels, if any
    plane_histories: list[list] = field(default_factory=list)  # per plane; [] where none ran
    plane_stop_iterations: list[int] = field(default_factory=list)
    plane_stop_reasons: list[str] = field(default_factory=list)  # also "constant"
    plane_stop_rules: list[str | None] = field(default_factory=list)  # the rule that stopped each
    stop_rules: list[str] = field(default_factory=list)  # the distinct rules, sorted
    normalizations: list[Normalization | None] = field(default_factory=list)  # per plane
    batch_size: int = 1  # planes fitted at once
    warm_start: bool = False  # each batch started from the decoder fitted before it
    tile_size: int | None = None  # None: planes fitted whole
    tiles_per_plane: int = 1
    planes_done: list[int] = field(default_factory=list)  # planes that finished (not cancelled)
    anscombe: PoissonGaussian | None = None  # the variance-stabilising transform used
    noise_estimate: NoiseEstimate | None = None  # the noise model estimated from the data
    hot_pixels: int = 0  # hot pixels replaced by their neighbours' median before the fit (noise/hot_pixels.py)
    saturated: int = 0  # saturated pixels kept out of the fit and as recorded in the result (noise/saturation.py)
    lipschitz_used: float | None = None  # lambda after the image-size rule; None: no control
    nlm_share: float = 0.0  # the share of non-local means averaged in (refinement/nonlocal_share.py)
    wiener: bool = False  # whether the Wiener pass ran (refinement/wiener_pass.py; in 3-D for whole stacks)
    likelihood: str = "gaussian"  # the fit's data term (noise/likelihood.py): "gaussian" or "poisson"

    @property
    def extra(self) -> Mapping[str, object]:
        """The per-plane and run fields as a read-only mapping under their old ``extra`` keys,
        so scripts written for the dict keep working; new code reads the attributes."""
        return MappingProxyType({key: getattr(self, key) for key in EXTRA_KEYS})

    @property
    def finished(self) -> bool:
        return self.stop_reason != "cancelled"

    def as_input_dtype(self, dtype) -> np.ndarray:
        """The image in an integer dtype (rounded and clipped to its range), or float32."""
        dtype = np.dtype(dtype)
        return cast_output(self.image, dtype if dtype.kind in "ui" else np.dtype(np.float32))


def entry_of(entry, g: int):
    from ..core.solver import LogEntry

    return LogEntry(
        iteration=entry.iteration,
        loss=entry.loss_all[g],
        fbc=list(entry.fbc_all[g]),
        ratio=entry.ratio_all[g],
        psnr=None if entry.psnr_all is None else entry.psnr_all[g],
        fit_all=None if entry.fit_all is None else [entry.fit_all[g]],
        noise_level_all=None if entry.noise_level_all is None else [entry.noise_level_all[g]],
    )


def mean_history(histories: list[list]) -> list:
    """Per logged iteration, the mean over the histories that logged it."""
    from ..core.solver import LogEntry

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
        merged.append(
            LogEntry(
                iteration=it,
                loss=float(np.mean([e.loss for e in es])),
                fbc=np.mean([e.fbc for e in es], axis=0).tolist(),
                ratio=float(np.mean([e.ratio for e in es])),
                psnr=psnr,
                loss_all=[e.loss for e in es],
                fbc_all=[e.fbc for e in es],
                ratio_all=[e.ratio for e in es],
                psnr_all=None if psnr is None else [e.psnr for e in es],
                fit_all=[v for e in es for v in e.fit_all] if noise else None,
                noise_level_all=[v for e in es for v in e.noise_level_all] if noise else None,
            )
        )
    return merged


@dataclass
class PlanState:
    """What a job's batches left behind: the blended output planes in [0, 1] and, per unit
    (one plane, or one tile of a plane), its history, stop iteration and whether it stopped
    by its rule."""

    out: np.ndarray  # (planes, C, H, W)
    units: list  # (plane, Tile) per unit
    tiles: list
    tile: int | None
    batch_size: int
    warm_start: bool
    hist: dict[int, list]
    stop: dict[int, int]
    auto: dict[int, bool]
    iterations: dict[int, int]  # iterations each unit ran
    rules: dict[int, str]  # the stop rule that decided each unit (core.solver.SolveOutcome.rules)
    done: set[int]
    cancelled: bool
    seconds: float
    parameters: int
    device: str
    lipschitz: float | None
    precision: str  # the decoder's arithmetic the fits used ("auto" resolved by core)
    nlm_share: float = 0.0  # the share of non-local means mixed into ``out`` (refinement/nonlocal_share.py)
    wiener: bool = False  # whether ``out`` had the Wiener pass (refinement/wiener_pass.py)


def assemble_result(job, s: PlanState) -> RestoreResult:
    """The result of ``job`` (a :class:`~napari_dip_spectral.engine.job.RestoreJob`): planes back
    in the input's layout, intensity range and output dtype; per-plane stop reasons (a plane
    a cancel left unfinished is NaN, a constant plane passes through); merged histories."""
    n = job.layout.n_planes
    units_of: dict[int, list[int]] = {}
    for u, (p, _t) in enumerate(s.units):
        units_of.setdefault(p, []).append(u)
    plane_hist, plane_stop, plane_reason = [], [], []
    plane_rules: list[str | None] = []
    planes_done = []
    out = s.out
    for p in range(n):
        us = units_of.get(p, [])
        finished = bool(us) and all(u in s.done for u in us)
        plane_rules.append(", ".join(sorted({s.rules[u] for u in us if u in s.rules})) or None)
        if job.constant[p]:
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
        plane_hist.append(mean_history([s.hist[u] for u in us]))
        plane_stop.append(max(s.stop[u] for u in us))
        plane_reason.append("auto_stop" if all(s.auto[u] for u in us) else "max_iterations")
    if s.cancelled:
        plane_reason = ["cancelled" if r != "constant" else r for r in plane_reason]
    full = cast_output(job.to_output(out), job.output_dtype)
    real = [r for r in plane_reason if r != "constant"]
    if s.cancelled:
        reason = "cancelled"
    elif real and all(r == "auto_stop" for r in real):
        reason = "auto_stop"
    else:
        reason = "max_iterations"
    history = mean_history([h for h in plane_hist if h])
    first = next(x for x in job.normalizations if x is not None)
    return RestoreResult(
        image=full,
        history=history,
        iterations=max(s.iterations.values(), default=0),
        stop_reason=reason,
        stop_iteration=max(plane_stop),
        task=job.task,
        config=job.config.replace(precision=s.precision),  # the precision used, not "auto"
        seconds=s.seconds,
        device=s.device,
        normalization=first,
        parameters=s.parameters,
        axes=job.layout.axes,
        joint_channels=job.layout.joint,
        plane_histories=plane_hist,
        plane_stop_iterations=plane_stop,
        plane_stop_reasons=plane_reason,
        normalizations=job.normalizations,
        batch_size=s.batch_size,
        warm_start=s.warm_start,
        tile_size=s.tile,
        tiles_per_plane=len(s.tiles),
        planes_done=planes_done,
        anscombe=job.model,
        noise_estimate=job.noise_estimate,
        hot_pixels=job.hot_pixels,
        saturated=0 if job.saturated is None else int(job.saturated.sum()),
        lipschitz_used=s.lipschitz,
        nlm_share=s.nlm_share,
        wiener=s.wiener,
        likelihood=job.likelihood,
        plane_stop_rules=plane_rules,
        stop_rules=sorted({rule for rule in plane_rules if rule}),
    )
