"""Try before the whole run: restore only a region of the displayed plane (what the canvas
shows, or the first rectangle of a Shapes layer) with the widget's settings. The result has
the region's size and sits where the region is, so it overlays the source exactly; the same
settings then run on the whole image by choosing "whole image".

Regions follow a layer's scale and translate (as masks from Shapes layers do, ``layers.py``);
a rotated, sheared or affine-transformed layer is refused rather than cut in the wrong place.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container

from ..engine.job import RestoreJob
from ..engine.validate import MIN_SIDE
from .layers import Geometry, current_plane, matching_plane, observed_mask, result_geometry
from .request import RunRequest

WHOLE, VIEW, RECTANGLE = "whole image", "field of view", "rectangle of a Shapes layer"


def view_box(center, zoom: float, canvas_size) -> tuple[float, float, float, float]:
    """The world box ``(y0, y1, x0, x1)`` a 2-D canvas of ``canvas_size`` (height, width)
    screen pixels shows around ``center`` (its last two values are Y, X) at ``zoom`` screen
    pixels per world unit."""
    cy, cx = (float(c) for c in center[-2:])
    half_h, half_w = canvas_size[0] / zoom / 2, canvas_size[1] / zoom / 2
    return cy - half_h, cy + half_h, cx - half_w, cx + half_w


def canvas_box(viewer) -> tuple[float, float, float, float]:
    """The world box the viewer's canvas shows now (2-D display)."""
    if viewer.dims.ndisplay != 2:
        raise ValueError("switch the viewer to 2-D display to use the field of view as the region")
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9 / earlier
    size = viewer.canvas.size if hasattr(viewer.canvas, "size") else viewer._canvas_size
    return view_box(camera.center, camera.zoom, size)


def rectangle_box(shapes) -> tuple[float, float, float, float]:
    """The world box of the first rectangle of the Shapes layer ``shapes``."""
    if shapes is None:
        raise ValueError("choose the Shapes layer whose first rectangle is the region")
    rectangles = [v for v, kind in zip(shapes.data, shapes.shape_type) if kind == "rectangle"]
    if not rectangles:
        raise ValueError(f"Shapes layer {shapes.name!r} has no rectangle: draw one with its rectangle tool")
    world = np.asarray(rectangles[0])[:, -2:] * np.asarray(shapes.scale[-2:]) + np.asarray(shapes.translate[-2:])
    (y0, x0), (y1, x1) = world.min(0), world.max(0)
    return float(y0), float(y1), float(x0), float(x1)


def pixel_box(layer, world_box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The pixels ``(y0, y1, x0, x1)`` (end excluded) of ``layer``'s Y, X plane of ``shape``
    whose centres lie in the world box; refused when smaller than the job accepts."""
    ndim = len(layer.scale)
    if not (
        np.allclose(layer.rotate, np.eye(ndim))
        and np.allclose(layer.shear, 0)
        and np.allclose(layer.affine.affine_matrix, np.eye(ndim + 1))
    ):
        raise ValueError(f"layer {layer.name!r} is rotated, sheared or has an affine transform: restore it whole")
    scale, shift = np.asarray(layer.scale[-2:], dtype=float), np.asarray(layer.translate[-2:], dtype=float)
    ends = (np.array([[world_box[0], world_box[2]], [world_box[1], world_box[3]]]) - shift) / scale
    low, high = ends.min(0), ends.max(0)  # a negative scale flips the box
    start = np.clip(np.ceil(low), 0, shape).astype(int)
    stop = np.clip(np.ceil(high), 0, shape).astype(int)
    (y0, x0), (y1, x1) = start, stop
    if y1 <= y0 or x1 <= x0:
        raise ValueError(f"the region does not overlap layer {layer.name!r}")
    if min(y1 - y0, x1 - x0) < MIN_SIDE:
        raise ValueError(
            f"the region is {y1 - y0} x {x1 - x0} pixels of {layer.name!r}; it needs at least "
            f"{MIN_SIDE} x {MIN_SIDE} (zoom out, or draw a larger rectangle)"
        )
    return int(y0), int(y1), int(x0), int(x1)


def region_request(viewer, layer, task: str, options: dict, world_box, mask=None, reference=None) -> RunRequest:
    """A run on the part of the displayed plane inside ``world_box``; ``mask`` and ``reference``
    (layers or None) are cut to the same pixels (the reference at the output's scale)."""
    plane = current_plane(layer, viewer)
    y0, y1, x0, x1 = pixel_box(layer, world_box, plane.data.shape[:2])
    data = plane.data[y0:y1, x0:x1]
    if mask is not None:
        mask = observed_mask(mask, layer, plane.index, plane.data.shape[:2])[y0:y1, x0:x1]
    if reference is not None:
        f = options.get("factor") or 1
        reference = matching_plane(reference, layer, plane.index, "reference")[y0 * f : y1 * f, x0 * f : x1 * f]
    job = RestoreJob(data, task, mask=mask, reference=reference, **options)
    whole = result_geometry(layer, plane.index, job.factor or 1)
    translate = np.asarray(whole.translate)
    # the region's first pixel is y0, x0 input pixels from the plane's: shift by whole input pixels
    translate[-2:] += np.array([y0, x0]) * np.asarray(layer.scale[-2:], dtype=float)
    return RunRequest(
        job=job,
        base=f"{layer.name} [{task}] region{plane.label}",
        source=layer.name,
        index=plane.index,
        geometry=Geometry(whole.scale, tuple(translate), whole.units, whole.axis_labels),
        rgb=bool(layer.rgb),
        contrast_limits=None if layer.rgb else tuple(layer.contrast_limits),
    )


class RegionFields(Container):
    """The region a run restores: the whole image (default), the field of view, or a rectangle."""

    def __init__(self, shapes_choices):
        self.region = ComboBox(
            label="region",
            choices=(WHOLE, VIEW, RECTANGLE),
            value=WHOLE,
            tooltip=(
                "Try the settings on part of the image first: 'field of view' restores what the canvas "
                "shows, 'rectangle' the first rectangle of a Shapes layer (of the displayed plane of a "
                "stack). The result overlays the image where the region is; then choose 'whole image'."
            ),
        )
        self.shapes = ComboBox(
            label="rectangle from",
            choices=shapes_choices,
            nullable=True,
            tooltip="Shapes layer whose first rectangle is the region.",
        )
        super().__init__(widgets=[self.region, self.shapes], labels=True)
        self.region.changed.connect(self._chosen)
        self._chosen(self.region.value)

    def _chosen(self, choice: str) -> None:
        self.shapes.visible = choice == RECTANGLE

    def world_box(self, viewer) -> tuple[float, float, float, float] | None:
        """The region in world coordinates, or None for the whole image."""
        if self.region.value == VIEW:
            return canvas_box(viewer)
        if self.region.value == RECTANGLE:
            return rectangle_box(self.shapes.value)
        return None
