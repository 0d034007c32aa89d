"""A run's progress in napari's activity dock and its one-line status.

A plane: one bar of iterations. A stack: a bar of planes and, below it, one of the current
batch's iterations. The run's outer bar says how long the run has left at most
(``engine/remaining.py``). (Not napari's nested bars, ``progress(nest_under=...)``: in napari 0.9.2
the group they create outlives its bars and crashed the viewer when it was closed.)
"""

from __future__ import annotations

from napari.utils import progress

from ..engine.events import RunEvent
from ..engine.remaining import RemainingTime
from .stack_run import plane_list


class RunProgress:
    """The bars of one run; ``update(event)`` moves them and returns the status line."""

    def __init__(self, title: str, iterations: int, n_planes: int = 0, unit: str = "plane", auto_stop: bool = True):
        self.title, self.unit = title, unit
        self.planes = progress(total=n_planes, desc=f"{title}: {unit}s") if n_planes else None
        self.iterations = progress(total=iterations, desc=f"{title}: iterations")
        self.last: RunEvent | None = None
        self.iteration = 0
        # changes at most once a second: each new description is an event for the activity dock
        self.remaining = RemainingTime(auto_stop=auto_stop, every=1.0)
        self._described = ""

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
        self.remaining.update(event)
        left = self.remaining.text()
        self._describe(left)
        text = f"iteration {step.iteration} / {step.total}"
        if self.planes is not None:
            tiles = f", {event.tiles} tiles each" if event.tiles > 1 else ""
            text = (
                f"{self.unit}s {plane_list(list(event.planes))} of {event.n_planes}{tiles} "
                f"(batch {event.batch + 1} / {event.batches}): {text}"
            )
        return f"{text}; {left}" if left else text

    def _describe(self, left: str) -> None:
        """The remaining time on the run's outer bar (planes for a stack, else iterations)."""
        if left == self._described:
            return
        self._described = left
        bar, what = (self.iterations, "iterations") if self.planes is None else (self.planes, f"{self.unit}s")
        bar.set_description(f"{self.title}: {what}" + (f" ({left})" if left else ""))

    def close(self) -> None:
        self.iterations.close()
        if self.planes is not None:
            self.planes.close()
