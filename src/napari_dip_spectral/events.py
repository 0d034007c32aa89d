"""The progress event every run yields, for a 2-D image as for a stack."""

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
