"""The optimisation loop as a generator of progress events.

``iterate(observation, operator, config)`` fits ``G`` independent decoders (one per plane of
``observation``, shape ``(G, C, h, w)``, values in [0, 1]) and yields a :class:`ProgressEvent`
after every iteration. Sending a truthy value into the generator (``gen.send(True)``) cancels
the run at that point; the generator's return value (``StopIteration.value``) is a
:class:`SolveOutcome` in every case. :func:`solve` runs it to the end. What the fit carries
between iterations and how it steps, logs and stops is :class:`~.fit.Fit`.

Host synchronisation happens only on metric iterations (every ``metrics_every``) and on
preview iterations; other iterations queue GPU work and yield a bare event.
"""

from __future__ import annotations

from collections.abc import Generator

import torch

from .config import SolverConfig
from .driving import drive
from .fit import NO_NOISE, Fit, build_network, make_optimiser, psnr, total_variation
from .operators import ForwardOperator
from .progress import DeviceMemoryError, LogEntry, ProgressEvent, SolveOutcome

__all__ = [
    "NO_NOISE",
    "DeviceMemoryError",
    "Fit",
    "LogEntry",
    "ProgressEvent",
    "SolveOutcome",
    "build_network",
    "iterate",
    "make_optimiser",
    "psnr",
    "solve",
    "total_variation",
]


def iterate(
    observation: torch.Tensor,
    operator: ForwardOperator,
    config: SolverConfig,
    reference: torch.Tensor | None = None,
    start: dict[str, torch.Tensor] | None = None,
    keep_weights: bool = False,
) -> Generator[ProgressEvent, object, SolveOutcome]:
    """``start``: one plane's fitted decoder (``SolveOutcome.weights``) that every plane's
    decoder starts from instead of its random initialisation (a warm start).
    ``keep_weights``: return the last plane's decoder for the next fit to start from; only
    then is it copied off the device, at each new best result of that plane."""
    fit = Fit(observation, operator, config, reference, start, keep_weights)
    config = fit.config
    reason = "max_iterations"
    try:
        for t in range(1, config.iterations + 1):
            fit.step()
            event = ProgressEvent(iteration=t, total=config.iterations)
            if t % config.metrics_every == 0 or t == config.iterations:
                event.log = fit.log()
                event.stopped = fit.n_stopped
            if config.preview_every and t % config.preview_every == 0:
                event.preview = fit.preview()
            cancel = yield event
            if cancel:
                reason = "cancelled"
                break
            if fit.done:
                reason = "auto_stop"
                break
    except torch.cuda.OutOfMemoryError as error:  # pragma: no cover - needs a GPU
        raise fit.out_of_memory() from error
    return fit.outcome(reason)


def solve(observation, operator, config, reference=None, callback=None) -> SolveOutcome:
    """Run :func:`iterate` to the end. ``callback(event)`` returning ``False`` cancels."""
    return drive(iterate(observation, operator, config, reference), callback)
