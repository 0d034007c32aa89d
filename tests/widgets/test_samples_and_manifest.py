"""Sample data commands, the npe2 manifest, shapes masks and lazy torch import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

SAMPLES = ["noisy_camera", "jpeg_astronaut", "holey_camera", "small_astronaut", "cell_details", "fluorescence_stack"]


@pytest.mark.gui
@pytest.mark.parametrize("key", SAMPLES)
def test_each_sample_opens(make_napari_viewer, key):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-dip-spectral", key)
    assert len(viewer.layers) >= 1
    visible = [layer for layer in viewer.layers if layer.visible]
    assert visible and all(
        min(layer.data.shape[-3 if getattr(layer, "rgb", False) else -2 :][:2]) >= 8 for layer in visible
    )


def test_fluorescence_stack_is_noisy_uint16_with_pixel_size():
    from napari_dip_spectral.widgets.samples import fluorescence_stack

    (clean, clean_meta, _), (noisy, meta, kind) = fluorescence_stack()
    assert kind == "image" and noisy.shape == (5, 96, 96) and noisy.dtype == np.uint16
    assert meta["scale"] == (0.5, 0.1, 0.1) and meta["axis_labels"] == ("z", "y", "x")
    assert clean_meta["visible"] is False
    assert np.abs(noisy.astype(float) - clean).mean() > 1


def test_holey_camera_marks_missing_pixels_with_label_one():
    from napari_dip_spectral.widgets.samples import holey_camera

    (_, _, _), (image, _, _), (missing, _meta, kind) = holey_camera()
    assert kind == "labels" and set(np.unique(missing)) == {0, 1}
    assert np.all(image[missing == 1] == 0)


def test_manifest_validates():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-dip-spectral")
    assert manifest.name == "napari-dip-spectral"
    assert len(manifest.contributions.widgets) == 5
    assert len(manifest.contributions.sample_data) == len(SAMPLES)
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-dip-spectral"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_widgets_does_not_import_torch():
    code = (
        "import sys, napari_dip_spectral.widgets.task_widget, napari_dip_spectral.widgets.samples;"
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shapes_mask_follows_world_coordinates():
    from napari.layers import Image, Shapes

    from napari_dip_spectral.widgets.layers import observed_mask

    image = Image(np.zeros((20, 20)), scale=(2.0, 2.0))
    # a rectangle over image pixels 2..5 (world 4..10) drawn on a unit-scale shapes layer
    shapes = Shapes([np.array([[4, 4], [4, 10], [10, 10], [10, 4]])], shape_type="rectangle")
    observed = observed_mask(shapes, image, (), (20, 20))
    assert not observed[3, 3] and observed[0, 0] and observed[10, 10]
    assert 9 <= (~observed).sum() <= 25
