"""Try before the whole run: a run on the field of view or on a rectangle of a Shapes layer
gives a result of the region's size that overlays the source where the region is."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

from napari_dip_spectral.widgets.region import RECTANGLE, VIEW, WHOLE, canvas_box, pixel_box, view_box

from .test_task_widgets import dock, errors_since, smooth_image

pytestmark = pytest.mark.gui


def test_view_box_is_the_canvas_around_the_camera_centre():
    # 800 x 600 screen pixels at 4 screen pixels per world unit: 200 x 150 world units
    assert view_box((0.0, 30.0, 50.0), 4.0, (800, 600)) == (-70.0, 130.0, -25.0, 125.0)
    assert view_box((10.0, 20.0), 2.0, (40, 80)) == (0.0, 20.0, 0.0, 40.0)


def test_pixel_box_keeps_the_pixels_whose_centres_are_inside():
    layer = Image(np.zeros((40, 60)), scale=(0.5, 0.25), translate=(3.0, 4.0))
    # world y 5..10 -> data 4..14; world x 5..8 -> data 4..16
    assert pixel_box(layer, (5.0, 10.0, 5.0, 8.0), (40, 60)) == (4, 14, 4, 16)
    assert pixel_box(layer, (-100.0, 100.0, 6.0, 9.0), (40, 60)) == (0, 40, 8, 20)  # clipped to the image
    with pytest.raises(ValueError, match="does not overlap"):
        pixel_box(layer, (50.0, 60.0, 5.0, 8.0), (40, 60))
    with pytest.raises(ValueError, match=r"the region is 2 x 12 pixels of 'Image'; it needs at least 8 x 8"):
        pixel_box(layer, (5.0, 6.0, 5.0, 8.0), (40, 60))
    rotated = Image(np.zeros((40, 60)), rotate=30)
    with pytest.raises(ValueError, match="rotated"):
        pixel_box(rotated, (5.0, 10.0, 5.0, 8.0), (40, 60))


def test_a_rectangle_region_of_a_stack_plane_overlays_the_source(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.stack([smooth_image(40, seed=s) for s in range(3)])
    layer = viewer.add_image(stack, name="cells", scale=(2.0, 0.5, 0.25), translate=(1.0, 3.0, 4.0))
    viewer.dims.set_point(0, 1.0 + 2.0 * 2)  # plane 2
    # world y 5..10 -> rows 4..14 of the plane; world x 5..8 -> columns 4..16
    viewer.add_shapes([[[5.0, 5.0], [10.0, 8.0]]], shape_type="rectangle", name="try here")
    widget = dock(viewer, "denoise", iterations=4)
    widget.image.value = layer
    assert widget.region.shapes.native.isHidden()
    widget.region.region.value = RECTANGLE
    assert not widget.region.shapes.native.isHidden()  # shown with the rectangle choice only
    widget.region.shapes.value = viewer.layers["try here"]
    widget.run(wait=True, timeout=120)
    assert widget.last_result.finished, widget.status.value

    out = viewer.layers["cells [denoise] region plane 2"]
    assert out.data.shape == (1, 10, 12)
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, (1.0 + 2 * 2.0, 3.0 + 4 * 0.5, 4.0 + 4 * 0.25))
    # its first pixel lies on the source's pixel (2, 4, 4), its last on (2, 13, 15)
    np.testing.assert_allclose(out.data_to_world((0, 0, 0)), layer.data_to_world((2, 4, 4)))
    np.testing.assert_allclose(out.data_to_world((0, 9, 11)), layer.data_to_world((2, 13, 15)))
    assert out.metadata["dip_spectral"]["settings"]["settings"]["iterations"] == 4

    # the same settings on the whole plane: a separate result, the region's stays
    widget.region.region.value = WHOLE
    widget.run(wait=True, timeout=120)
    assert viewer.layers["cells [denoise] plane 2"].data.shape == (1, 40, 40)
    assert "cells [denoise] region plane 2" in viewer.layers


def test_the_field_of_view_region_is_what_the_canvas_shows(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layer = viewer.add_image(smooth_image(64), name="x")
    height, width = viewer.canvas.size
    camera = viewer.scene.camera
    camera.center, camera.zoom = (0.0, 30.0, 34.0), height / 20  # 20 world units tall
    y0, y1, x0, x1 = canvas_box(viewer)
    assert (y0, y1) == pytest.approx((20.0, 40.0)) and x1 - x0 == pytest.approx(20.0 * width / height)
    rows, cols = 20, int(np.ceil(x1) - np.ceil(x0))
    widget = dock(viewer, "deblock", iterations=3)
    widget.image.value = layer
    widget.region.region.value = VIEW
    widget.run(wait=True, timeout=120)
    out = viewer.layers["x [deblock] region"]
    assert out.data.shape == (rows, cols)
    np.testing.assert_allclose(out.translate, (20.0, np.ceil(x0)))


def test_a_bad_region_is_a_notification(make_napari_viewer):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    viewer.add_image(smooth_image(32), name="x")
    widget = dock(viewer, "denoise")
    widget.region.region.value = RECTANGLE
    before = len(notification_manager.records)
    assert widget.run() is None
    viewer.add_shapes([[[0, 0], [5, 5], [0, 5]]], shape_type="polygon", name="no rectangle")
    widget.region.shapes.value = viewer.layers["no rectangle"]
    assert widget.run() is None
    messages = errors_since(before)
    assert "choose the Shapes layer" in messages[0] and "has no rectangle" in messages[1]
    assert not widget.running and "x [denoise] region" not in viewer.layers
