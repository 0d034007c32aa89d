"""The expected time of a job before it runs: a few iterations of its first batch, timed on
the job's own device with its own settings, scaled to the whole run."""

from __future__ import annotations

import math
import time

from ..core.devices import describe_device, resolve_device
from ..core.fitting import fit
from .events import RunEstimate


def estimate_run(job, probe: int | None = None) -> RunEstimate:
    """Time ``probe`` iterations (default: one metrics iteration and three more) of the first
    batch of ``job`` (a :class:`~napari_dip_spectral.engine.job.RestoreJob`) and scale to the whole
    run: at most ``iterations`` per batch; the automatic stop usually ends sooner."""
    config = job.config
    device = resolve_device(config.device)
    tile, batch = job.plan(device)
    units = job.units(tile)[0]
    batch = max(1, min(batch, len(units)))
    probe = probe or config.metrics_every + 3
    obs, masks, _ = job.batch(units[:batch])
    short = config.replace(iterations=probe, auto_stop=False, preview_every=0)
    stamps = [time.perf_counter()]
    for _event in fit(obs, job.operator(masks, [u[0] for u in units[:batch]]), short, None):
        stamps.append(time.perf_counter())
    timed = stamps[3:] if len(stamps) > 4 else stamps[1:]  # the first steps warm up
    per_iteration = (timed[-1] - timed[0]) / max(len(timed) - 1, 1)
    return RunEstimate(
        seconds_per_iteration=per_iteration,
        iterations=config.iterations,
        batches=math.ceil(len(units) / batch),
        device=describe_device(config.device),
        auto_stop=config.auto_stop,
    )
