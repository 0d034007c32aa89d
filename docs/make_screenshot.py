"""Make docs/images/napari_plugin.png: the Denoise widget after a run on the noisy camera
sample, with the restored image and the FBC / stopping plots beside it.

Run from the repository root (needs a display; headless: ``xvfb-run -a python docs/make_screenshot.py``).
A short, narrow run (150 iterations, 16 channels) keeps it to a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import napari
from PIL import Image
from qtpy.QtCore import Qt

OUT = Path(__file__).parent / "images" / "napari_plugin.png"


def main() -> None:
    warnings.filterwarnings("ignore", message="napari support for the PyQt5")
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 950)
    viewer.open_sample("napari-dip-spectral", "noisy_camera")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-dip-spectral", "Denoise")
    viewer.window._qt_window.resizeDocks([dock], [430], Qt.Orientation.Horizontal)
    widget.image.value = viewer.layers["camera (noisy, sigma 25)"]
    widget.form.iterations.value = 150
    widget.form.show_advanced.value = True
    widget.form.channels.value = 16
    widget.form.preview_every.value = 25
    widget.reference.value = viewer.layers["camera (clean)"]
    widget.run(wait=True)
    viewer.layers["camera (noisy, sigma 25)"].visible = False
    viewer.reset_view()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(OUT)
    print(f"{OUT}: {widget.status.value}")
    viewer.close()


if __name__ == "__main__":
    main()
