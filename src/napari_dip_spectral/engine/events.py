"""The progress event every run yields (for a 2-D image as for a stack), and the time a run
is expected to take."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunEvent:
    """Progress of a run: batch ``batch`` of ``batches`` fits the planes ``planes`` (0-based
    indices of ``n_planes``; a 2-D image is plane 0 of 1); ``event`` is the core solver's
    :class:`~napari_dip_spectral.core.solver.ProgressEvent` of that batch. Its fields
    (``iteration``, ``total``, ``log``, ``preview``, ``stopped``) read through, so a callback
    written for the solver's events works unchanged."""

    batch: int
    batches: int
    planes: tuple[int, ...]
    n_planes: int
    event: object
    tiles: int = 1  # tiles per plane (1 = untiled)
    groups: int = 0  # planes (or tiles) fitted together in this batch; 0 = not told

    @property
    def plane(self) -> int:
        """The first plane in this batch (0-based)."""
        return self.planes[0]

    def __getattr__(self, name):
        # only called for names the dataclass does not have: the solver event's fields
        if name.startswith("__") or name == "event":
            raise AttributeError(name)
        return getattr(self.event, name)


StackEvent = RunEvent  # the name earlier releases used for a stack's events


@dataclass
class RunEstimate:
    """How long a run should take, from iterations timed on its own device
    (:meth:`~napari_dip_spectral.engine.job.RestoreJob.estimate`)."""

    seconds_per_iteration: float
    iterations: int  # the budget of each batch
    batches: int
    device: str
    auto_stop: bool

    @property
    def max_seconds(self) -> float:
        """The whole budget: every batch running all its iterations."""
        return self.seconds_per_iteration * self.iterations * self.batches

    def text(self) -> str:
        batches = f" in {self.batches} batches" if self.batches > 1 else ""
        stop = "; the automatic stop usually ends it sooner" if self.auto_stop else ""
        return (
            f"about {format_seconds(self.seconds_per_iteration)} per iteration on {self.device}: "
            f"at most {format_seconds(self.max_seconds)} for {self.iterations} iterations{batches}{stop}"
        )


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
