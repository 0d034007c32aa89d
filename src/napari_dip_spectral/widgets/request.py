"""What a started run needs to turn its events and result into layers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..job import RestoreJob
from .layers import Geometry


@dataclass
class RunRequest:
    """Everything a started run needs to turn its events and result into layers."""

    base: str                       # "<input> [<task>]" (+ " plane i,j" for a stack plane)
    source: str
    index: tuple[int, ...]
    geometry: Geometry
    rgb: bool
    contrast_limits: tuple | None
    job: RestoreJob | None = None
    build: Callable[[], RestoreJob] | None = None     # all planes: builds the job in the worker
    n_planes: int = 0                                # all planes: how many units
    unit: str = "plane"                              # all planes: "plane" or "volume"

    @property
    def stack(self) -> bool:
        return self.build is not None

    def make_job(self) -> RestoreJob:
        """The job to run (an all-planes job is built here, in the worker thread)."""
        if self.build is not None:
            self.job = self.build()
        return self.job

    def layer_kwargs(self) -> dict:
        kwargs = dict(self.geometry.as_kwargs(), rgb=self.rgb)
        if self.contrast_limits is not None:
            kwargs["contrast_limits"] = self.contrast_limits
        return kwargs
