"""A run's progress in napari's activity dock and its one-line status.

A plane: one bar of iterations. A stack: a bar of planes and, below it, one of the current
batch's iterations. (Not napari's nested bars, ``progress(nest_under=...)``: in napari 0.9.2
the group they create outlives its bars and crashed the viewer when it was closed.)
"""

from __future__ import annotations

from napari.utils import progress

from ..events import RunEvent
from .stack_run import plane_list


class RunProgress:
    """The bars of one run; ``update(event)`` moves them and returns the status line."""

    def __init__(self, title: str, iterations: int, n_planes: int = 0, unit: str = "plane"):
        self.title, self.unit = title, unit
        self.planes = progress(total=n_planes, desc=f"{title}: {unit}s") if n_planes else None
        self.iterations = progress(total=iterations, desc=f"{title}: iterations")
        self.last: RunEvent | None = None
        self.iteration = 0

    def update(self, event) -> str:
        """Move the bars to ``event`` (a RunEvent); the plane bar and the plane account
        only for a run over all planes of a stack."""
        step = event.event
        self.iteration = step.iteration
        if self.iterations.total != step.total:
            self.iterations.total = step.total
        if self.planes is not None:
            if self.last is None or self.last.batch != event.batch:
                self.iterations.set_description(f"{self.title}: batch {event.batch + 1} / {event.batches}, iterations")
                self.planes.update(event.plane - self.planes.n)
            self.last = event
        self.iterations.update(step.iteration - self.iterations.n)
        text = f"iteration {step.iteration} / {step.total}"
        if self.planes is not None:
            tiles = f", {event.tiles} tiles each" if event.tiles > 1 else ""
            text = (
                f"{self.unit}s {plane_list(list(event.planes))} of {event.n_planes}{tiles} "
                f"(batch {event.batch + 1} / {event.batches}): {text}"
            )
        return text

    def close(self) -> None:
        self.iterations.close()
        if self.planes is not None:
            self.planes.close()
