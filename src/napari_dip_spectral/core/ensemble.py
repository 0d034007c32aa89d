"""An ensemble: several decoders fitted to each plane, their results averaged.

A decoder stopped early (the held-out rule stops fluorescence fits after tens of
iterations) depends on its random start: different starts learn different parts of the
image first, and what they fit of the noise differs too. Their average keeps what they
agree on (docs/beyond_the_paper.md section 9). With ``config.ensemble = m`` each plane of
the observation is repeated ``m`` times as consecutive groups of one grouped fit
(core/fit.py): each member has its own initial weights, input and held-out pixels, and its
own stop. The events and the outcome are those of a fit of the planes themselves: images
and logged metrics are means over each plane's members (the logged PSNR is that of the
members' mean), a plane's stop iteration is its last member's.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch

from . import solver
from .config import SolverConfig
from .fit import psnr
from .operators import ForwardOperator
from .progress import LogEntry, ProgressEvent, SolveOutcome


def _per_plane(values: list | None, m: int) -> list | None:
    """A per-group list (planes x members) -> the mean over each plane's members."""
    if values is None:
        return None
    array = np.asarray(values, dtype=float)
    return array.reshape(-1, m, *array.shape[1:]).mean(1).tolist()


def _mean_members(image: np.ndarray, m: int) -> np.ndarray:
    return image.reshape(-1, m, *image.shape[1:]).mean(1, dtype=np.float64).astype(np.float32)


def _merged_entry(entry: LogEntry, m: int, psnr_all: list[float] | None) -> LogEntry:
    loss_all = _per_plane(entry.loss_all, m)
    fbc_all = _per_plane(entry.fbc_all, m)
    return LogEntry(
        iteration=entry.iteration,
        loss=float(np.mean(loss_all)),
        fbc=np.mean(fbc_all, axis=0).tolist(),
        ratio=float(np.mean(entry.ratio_all)),
        psnr=None if psnr_all is None else float(np.mean(psnr_all)),
        loss_all=loss_all,
        fbc_all=fbc_all,
        ratio_all=_per_plane(entry.ratio_all, m),
        psnr_all=psnr_all,
        fit_all=_per_plane(entry.fit_all, m),
        noise_level_all=_per_plane(entry.noise_level_all, m),
    )


def iterate_ensemble(
    observation: torch.Tensor,
    operator: ForwardOperator,
    config: SolverConfig,
    reference: torch.Tensor | None = None,
    start: dict[str, torch.Tensor] | None = None,
    keep_weights: bool = False,
) -> Generator[ProgressEvent, object, SolveOutcome]:
    """``solver.iterate`` of ``config.ensemble`` members per plane: the same events and
    outcome as one decoder per plane (``start`` and ``SolveOutcome.weights``: every member
    of one plane, see core/warm_start.py)."""
    m = config.ensemble
    groups = observation.shape[0]
    ref = None if reference is None else reference.detach().cpu().float()
    # the PSNR of the members' mean (not each member's, so the members get no reference) needs
    # their results on every metric iteration
    inner = config if ref is None else config.replace(preview_every=config.metrics_every)
    gen = solver.iterate(
        observation.repeat_interleave(m, 0), operator.repeat_groups(m), inner, None, start, keep_weights
    )
    psnr_at: dict[int, list[float]] = {}
    message = None
    try:
        while True:
            try:
                event = gen.send(message)
            except StopIteration as end:
                outcome = end.value
                break
            preview = None if event.preview is None else _mean_members(event.preview, m)
            psnr_all = None
            if ref is not None and preview is not None:
                psnr_all = psnr_at[event.iteration] = psnr(torch.from_numpy(preview), ref).tolist()
            shown = config.preview_every and event.iteration % config.preview_every == 0
            message = yield ProgressEvent(
                iteration=event.iteration,
                total=event.total,
                log=None if event.log is None else _merged_entry(event.log, m, psnr_all),
                preview=preview if shown else None,
                stopped=event.stopped // m,  # members' stops in plane units (for progress only)
            )
    finally:
        gen.close()
    stops = np.asarray(outcome.stop_iterations).reshape(groups, m)
    rules = np.asarray(outcome.rule_iterations).reshape(groups, m)
    fired = np.where((rules > 0).all(1), rules.max(1), 0)
    history = [_merged_entry(e, m, psnr_at.get(e.iteration)) for e in outcome.history]
    return SolveOutcome(
        image=_mean_members(outcome.image, m),
        history=history,
        iterations=outcome.iterations,
        stop_reason=outcome.stop_reason,
        stop_iterations=stops.max(1).tolist(),
        seconds=outcome.seconds,
        device=outcome.device,
        parameters=outcome.parameters,
        lipschitz=outcome.lipschitz,
        precision=outcome.precision,
        rule_iterations=fired.tolist(),
        rules=outcome.rules[::m],
        weights=outcome.weights,
    )
