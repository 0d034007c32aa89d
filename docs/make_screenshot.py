"""Make docs/images/napari_plugin.png: the Denoise widget after a run on the displayed plane of
the plugin's fluorescence stack sample (uint16, 5 x 96 x 96, photon and read noise), with the
restored plane and the FBC / stopping plots beside it.

Run from the repository root (needs a display; headless: ``xvfb-run -a python docs/make_screenshot.py``).
The run uses the widget's default settings (the noise model estimated from the layer, the
Anscombe transform and the held-out-pixel stop that it brings) except an iteration budget of
ITERATIONS, so that the picture is made in minutes on a laptop CPU; the stop usually comes
before it.
"""

from __future__ import annotations

import os
import tempfile

# no notification toasts below errors (a deprecation warning would cover the canvas), and a
# settings folder of its own so that neither the settings the widget remembers from a user's
# sessions are applied nor the ones of this run saved for them: environment overrides, so the
# user's napari and plugin settings are left as they are
os.environ["NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL"] = "error"
os.environ["NAPARI_DIP_SPECTRAL_CONFIG_DIR"] = tempfile.mkdtemp(prefix="dip-spectral-screenshot-")

from pathlib import Path

import napari
from PIL import Image
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent / "images" / "napari_plugin.png"
ITERATIONS = 600
NOISY, CLEAN = "blobs (noisy, uint16)", "blobs (clean)"


def main() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 800)  # the canvas no taller than the image and plots need
    viewer.open_sample("napari-dip-spectral", "fluorescence_stack")
    viewer.layers.selection.active = viewer.layers[NOISY]  # the widget starts on the selected layer
    dock, widget = viewer.window.add_plugin_dock_widget("napari-dip-spectral", "Denoise")
    viewer.window._qt_window.resizeDocks([dock], [430], Qt.Orientation.Horizontal)
    assert widget.image.value is viewer.layers[NOISY]
    assert widget.planes.value == "displayed plane only"
    widget.form.iterations.value = ITERATIONS
    widget.form.preview_every.value = 50
    widget.reference.value = viewer.layers[CLEAN]  # PSNR against the clean plane in the stopping plot
    widget.run(wait=True)
    viewer.layers[NOISY].visible = False
    (result,) = (
        layer
        for layer in viewer.layers
        if layer.name.startswith(f"{NOISY} [denoise]") and not layer.name.endswith((" FBC", " stopping"))
    )
    # the result keeps the input's contrast limits, set for the whole stack's brightest plane;
    # "auto-contrast: once" on the result, as a user would, shows the displayed plane's blobs
    viewer.layers.selection.active = result
    result.reset_contrast_limits()
    viewer.reset_view()
    for _ in range(5):  # let the status line wrap to its full height before the picture
        QApplication.processEvents()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(OUT)
    print(f"{OUT}: {widget.status.value}")
    viewer.close()


if __name__ == "__main__":
    main()
