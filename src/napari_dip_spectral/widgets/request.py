"""A run prepared from layers: the job (or how to build it) and what its events and result
need to become layers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..engine.job import RestoreJob
from ..engine.layout import stack_layout
from .layers import (
    Geometry,
    current_plane,
    full_data,
    layer_shape,
    matching_plane,
    observed_mask,
    observed_stack_mask,
    result_geometry,
    stack_geometry,
)


@dataclass
class RunRequest:
    """Everything a started run needs to turn its events and result into layers."""

    base: str  # "<input> [<task>]" (+ " plane i,j" for a stack plane)
    source: str
    index: tuple[int, ...]
    geometry: Geometry
    rgb: bool
    contrast_limits: tuple | None
    job: RestoreJob | None = None
    build: Callable[[], RestoreJob] | None = None  # all planes: builds the job in the worker
    n_planes: int = 0  # all planes: how many units
    unit: str = "plane"  # all planes: "plane" or "volume"
    settings: dict | None = None  # the preset the run started with, kept in the result's metadata

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


def plane_request(viewer, layer, task: str, options: dict, mask=None, reference=None) -> RunRequest:
    """A run on the plane the viewer shows (the whole layer when it is 2-D); ``mask`` and
    ``reference`` are layers or None."""
    plane = current_plane(layer, viewer)
    if mask is not None:
        mask = observed_mask(mask, layer, plane.index, plane.data.shape[:2])
    if reference is not None:
        reference = matching_plane(reference, layer, plane.index, "reference")
    job = RestoreJob(plane.data, task, mask=mask, reference=reference, **options)
    return RunRequest(
        job=job,
        base=f"{layer.name} [{task}]{plane.label}",
        source=layer.name,
        index=plane.index,
        geometry=result_geometry(layer, plane.index, job.factor or 1),
        rgb=bool(layer.rgb),
        contrast_limits=None if layer.rgb else tuple(layer.contrast_limits),
    )


def stack_request(
    layer, task: str, options: dict, *, axes: str, prior: str, batch_size: int | None, mask=None, reference=None
) -> RunRequest:
    """A run on all planes: axes, mask and reference are checked here; the layer's data is
    read (a dask array computed) only in the worker, when the job is built."""
    if not axes:
        raise ValueError("axes: give one letter per dimension of the layer, e.g. ZYX")
    data = full_data(layer)
    layout = stack_layout(layer_shape(layer), axes, "auto", prior, task, options.get("profile", "default"))
    if mask is not None:
        mask = observed_stack_mask(mask, layer, layout.axes)
    if reference is not None:
        reference = np.asarray(full_data(reference))

    def build() -> RestoreJob:
        return RestoreJob(
            np.asarray(data),
            task,
            axes=layout.axes,
            mask=mask,
            reference=reference,
            batch_size=batch_size,
            stack_prior=prior,
            **options,
        )

    return RunRequest(
        base=f"{layer.name} [{task}]",
        source=layer.name,
        index=(),
        geometry=stack_geometry(layer, layout.axes, options.get("factor") or 1),
        rgb=bool(layer.rgb),
        contrast_limits=None if layer.rgb else tuple(layer.contrast_limits),
        build=build,
        n_planes=layout.n_planes,
        unit="volume" if layout.whole_stack else "plane",
    )
