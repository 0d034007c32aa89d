"""Make docs/images/napari_plugin.png: the Denoise widget after a run on a 128 px crop of the
noisy camera sample, with the restored image and the FBC / stopping plots beside it.

Run from the repository root (needs a display; headless: ``xvfb-run -a python docs/make_screenshot.py``).
The run uses the task's default settings (core.config.task_defaults) except 800 iterations at
most and 64 channels (the widget fits with one torch thread; a few minutes on a 2-core CPU).
"""

from __future__ import annotations

import os

# no notification toasts below errors (napari's PyQt5 deprecation warning would cover the
# canvas); an environment override, so the user's napari settings are left as they are
os.environ["NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL"] = "error"

from pathlib import Path

import napari
from PIL import Image
from qtpy.QtCore import Qt

OUT = Path(__file__).parent / "images" / "napari_plugin.png"
CROP = (slice(64, 192), slice(64, 192))  # 128 x 128 from the 256 px sample


def main() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open_sample("napari-dip-spectral", "noisy_camera")
    for name, crop in (
        ("camera (clean)", "camera crop (clean)"),
        ("camera (noisy, sigma 25)", "camera crop (noisy, sigma 25)"),
    ):
        layer = viewer.layers[name]
        viewer.add_image(layer.data[CROP], name=crop, visible=layer.visible)
        viewer.layers.remove(name)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-dip-spectral", "Denoise")
    viewer.window._qt_window.resizeDocks([dock], [430], Qt.Orientation.Horizontal)
    widget.image.value = viewer.layers["camera crop (noisy, sigma 25)"]
    widget.form.iterations.value = 800
    widget.form.channels.value = 64
    widget.form.preview_every.value = 50
    widget.reference.value = viewer.layers["camera crop (clean)"]
    widget.run(wait=True)
    viewer.layers["camera crop (noisy, sigma 25)"].visible = False
    viewer.reset_view()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(OUT)
    print(f"{OUT}: {widget.status.value}")
    viewer.close()


if __name__ == "__main__":
    main()
