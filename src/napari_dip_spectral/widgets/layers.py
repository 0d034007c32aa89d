"""Layers <-> arrays: the plane to restore, the mask, and writing results as layers.

Input layers are only read. Results are written into layers named after the input, so a
re-run updates its layers instead of adding new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from napari.layers import Image, Labels, Layer, Shapes


@dataclass
class Plane:
    """The 2-D (or 2-D RGB) plane of a layer that a run restores.

    ``index``: the position along the layer's leading (non-spatial) axes, ``()`` for a 2-D
    layer. ``data``: a numpy copy of the plane (the layer is never written to).
    """

    data: np.ndarray
    index: tuple[int, ...]

    @property
    def label(self) -> str:
        return "" if not self.index else " plane " + ",".join(str(i) for i in self.index)


def full_data(layer: Layer):
    """The data of ``layer`` (its full-resolution level; a multiscale layer is refused)."""
    if getattr(layer, "multiscale", False):
        raise ValueError(
            f"layer {layer.name!r} is multiscale; open its full-resolution level as a separate layer to restore it"
        )
    return layer.data


def current_plane(layer: Image, viewer) -> Plane:
    """The plane of ``layer`` shown in the viewer: Y, X are the layer's last two (non-RGB)
    axes; leading axes (T, Z, C...) are taken at the viewer's current position."""
    data = full_data(layer)
    lead = layer.ndim - 2
    if lead < 0:
        raise ValueError(f"layer {layer.name!r} has {layer.ndim} dimension(s); need at least Y and X")
    index: tuple[int, ...] = ()
    if lead:
        if viewer.dims.ndisplay != 2:
            raise ValueError("switch the viewer to 2-D display to choose the plane to restore")
        shown = {viewer.dims.ndim - layer.ndim + axis for axis in (layer.ndim - 2, layer.ndim - 1)}
        if set(viewer.dims.displayed) != shown:
            raise ValueError(
                f"layer {layer.name!r}: the viewer must display its last two axes "
                "(Y, X); undo the axis transpose/roll to restore a plane"
            )
        position = layer.world_to_data(viewer.dims.point[-layer.ndim :])
        shape = layer.data.shape
        index = tuple(int(np.clip(round(float(position[a])), 0, shape[a] - 1)) for a in range(lead))
    return Plane(np.array(data[index], copy=True), index)


def matching_plane(layer: Layer, like: Image, index: tuple[int, ...], role: str) -> np.ndarray:
    """The plane of ``layer`` (a mask or reference) at ``index``: it must have the image
    layer's dimensionality (then the same plane is used) or be 2-D."""
    data = full_data(layer)
    spatial_ndim = getattr(layer, "ndim", np.ndim(data))
    if spatial_ndim == 2:
        return np.array(data, copy=True)
    if spatial_ndim == like.ndim:
        return np.array(data[index], copy=True)
    raise ValueError(
        f"{role} layer {layer.name!r} has {spatial_ndim} dimensions; use a 2-D layer "
        f"or one with the same {like.ndim} dimensions as {like.name!r}"
    )


def observed_mask(mask_layer: Layer, image: Image, index: tuple[int, ...], spatial: tuple[int, int]) -> np.ndarray:
    """The API's mask (True = observed) from a layer whose labelled / nonzero pixels, or
    pixels inside its shapes, are the missing ones."""
    if isinstance(mask_layer, Shapes):
        return ~shapes_mask(mask_layer, image, spatial)
    if not isinstance(mask_layer, (Labels, Image)):
        raise ValueError(f"mask layer {mask_layer.name!r} must be a Labels, Shapes or Image layer")
    missing = matching_plane(mask_layer, image, index, "mask")
    if missing.ndim == 3 and isinstance(mask_layer, Image) and mask_layer.rgb:
        missing = missing.any(-1)
    if missing.shape != tuple(spatial):
        raise ValueError(
            f"mask layer {mask_layer.name!r} has shape {missing.shape}; it must match the image plane {tuple(spatial)}"
        )
    return missing == 0


def shapes_mask(shapes: Shapes, image: Image, spatial: tuple[int, int]) -> np.ndarray:
    """Pixels of ``image``'s plane inside any shape (their Y, X vertices mapped through world
    coordinates, so shapes drawn over the image line up with its pixels)."""
    if not len(shapes.data):
        return np.zeros(spatial, dtype=bool)
    s_scale, s_shift = np.asarray(shapes.scale[-2:]), np.asarray(shapes.translate[-2:])
    i_scale, i_shift = np.asarray(image.scale[-2:]), np.asarray(image.translate[-2:])
    vertices = [((np.asarray(v)[:, -2:] * s_scale + s_shift) - i_shift) / i_scale for v in shapes.data]
    projected = Shapes(vertices, shape_type=shapes.shape_type)
    return projected.to_labels(labels_shape=spatial) > 0


@dataclass
class Geometry:
    """Where a result plane sits in world coordinates, and its axis metadata."""

    scale: tuple[float, ...]
    translate: tuple[float, ...]
    units: tuple
    axis_labels: tuple

    def as_kwargs(self) -> dict:
        return dict(scale=self.scale, translate=self.translate, units=self.units, axis_labels=self.axis_labels)


def result_geometry(layer: Image, index: tuple[int, ...], factor: int = 1) -> Geometry:
    """Geometry of a restored plane of ``layer``: leading axes become length-1 axes
    translated to the plane's position; for super-resolution the Y, X pixel size is divided
    by ``factor`` and the origin moved so the result covers the same field of view."""
    scale = np.asarray(layer.scale, dtype=float)
    translate = np.asarray(layer.translate, dtype=float)
    lead = len(index)
    translate[:lead] += np.asarray(index, dtype=float) * scale[:lead]
    if factor > 1:
        # the first input pixel's centre is at translate; its first sub-pixel's centre is half
        # an input pixel minus half an output pixel earlier
        translate[lead:] -= scale[lead:] * (1 - 1 / factor) / 2
        scale[lead:] /= factor
    return Geometry(tuple(scale), tuple(translate), tuple(layer.units), tuple(layer.axis_labels))


def with_leading_axes(plane: np.ndarray, index: tuple[int, ...]) -> np.ndarray:
    """``plane`` with one length-1 axis per leading axis of the source layer."""
    return plane.reshape((1,) * len(index) + plane.shape)


def write_image(viewer, name: str, data: np.ndarray, **kwargs) -> Image:
    """Update the Image layer called ``name`` (data, geometry, metadata...) or add it."""
    if (
        name in viewer.layers
        and isinstance(viewer.layers[name], Image)
        and viewer.layers[name].rgb == bool(kwargs.get("rgb", False))
        and viewer.layers[name].ndim == data.ndim - bool(kwargs.get("rgb", False))
    ):
        layer = viewer.layers[name]
        kwargs.pop("rgb", None)
        layer.data = data
        for key, value in kwargs.items():
            setattr(layer, key, value)
        return layer
    if name in viewer.layers:
        viewer.layers.remove(name)
    return viewer.add_image(data, name=name, **kwargs)


def remove_layer(viewer, name: str) -> None:
    if name in viewer.layers:
        viewer.layers.remove(name)


# ---------------------------------------------------------------------- whole stacks
LABEL_LETTERS = {
    "t": "T",
    "time": "T",
    "z": "Z",
    "depth": "Z",
    "c": "C",
    "channel": "C",
    "channels": "C",
    "s": "S",
    "y": "Y",
    "x": "X",
}


def layer_shape(layer: Layer) -> tuple[int, ...]:
    """The full-resolution shape of ``layer``'s data (no data is read or computed)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return tuple(int(s) for s in data.shape)


def layer_axes(layer: Image) -> str:
    """Axes letters for ``layer``: from its axis labels when each reads as T/Z/C/Y/X (``"z"``,
    ``"time"``...; an RGB layer adds ``S``), else :func:`~napari_dip_spectral.engine.layout.guess_axes`
    of its shape ("" when neither works)."""
    from ..engine.layout import guess_axes

    shape = layer_shape(layer)
    labelled = labelled_axes(layer.axis_labels, shape, layer.rgb)
    if labelled:
        return labelled
    try:
        return guess_axes(shape)
    except ValueError:
        return ""


def labelled_axes(labels, shape: tuple[int, ...], rgb: bool) -> str:
    """Axes letters read from a layer's axis labels ("" unless every label names an axis)."""
    from ..engine.layout import parse_axes

    letters = "".join(LABEL_LETTERS.get(str(label).strip().lower(), "?") for label in labels)
    try:
        return parse_axes(letters + ("S" if rgb else ""), shape)
    except ValueError:
        return ""


def stack_geometry(layer: Image, axes: str, factor: int = 1) -> Geometry:
    """Geometry of a whole restored stack: the input's, with the Y and X pixel size divided
    by ``factor`` (super-resolution) and their origin moved to cover the same field of view."""
    scale = np.asarray(layer.scale, dtype=float)
    translate = np.asarray(layer.translate, dtype=float)
    if factor > 1:
        for axis in (axes.index("Y"), axes.index("X")):
            translate[axis] -= scale[axis] * (1 - 1 / factor) / 2
            scale[axis] /= factor
    return Geometry(tuple(scale), tuple(translate), tuple(layer.units), tuple(layer.axis_labels))


def observed_stack_mask(mask_layer: Layer, image: Image, axes: str) -> np.ndarray:
    """The API's mask (True = observed) for a whole stack: 2-D (shared by every plane) from a
    Shapes layer or a 2-D layer, or one per plane from a layer with the image's shape (for an
    RGB image, its shape without the colour axis). Labelled / nonzero / inside = missing."""
    shape = layer_shape(image)
    spatial = (shape[axes.index("Y")], shape[axes.index("X")])
    if isinstance(mask_layer, Shapes):
        return ~shapes_mask(mask_layer, image, spatial)
    if not isinstance(mask_layer, (Labels, Image)):
        raise ValueError(f"mask layer {mask_layer.name!r} must be a Labels, Shapes or Image layer")
    missing = np.asarray(full_data(mask_layer))
    if isinstance(mask_layer, Image) and mask_layer.rgb:
        missing = missing.any(-1)
    if image.rgb and missing.shape == shape[:-1]:
        missing = np.broadcast_to(missing[..., None], shape)
    if missing.shape not in (spatial, shape):
        raise ValueError(
            f"mask layer {mask_layer.name!r} has shape {missing.shape}; use a 2-D "
            f"layer {spatial} or one with the image's shape {shape}"
        )
    return missing == 0
