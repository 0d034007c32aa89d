"""What a run ran with: the versions recorded beside every result the CLI and the demo write."""

from __future__ import annotations

import platform

import numpy as np


def versions() -> dict:
    import tifffile
    import torch

    from . import __version__

    return {
        "napari_dip_spectral": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "tifffile": tifffile.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
