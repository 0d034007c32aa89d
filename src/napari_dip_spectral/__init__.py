"""napari-dip-spectral: the spectral-bias-controlled deep image prior (Shi et al., IJCV 2022)
for napari and Python scripts.

``import napari_dip_spectral`` imports neither napari nor Qt, and torch only when a
restoration runs.
"""

from __future__ import annotations

try:
    from ._version import __version__  # written from the git tag when the package is built
except ImportError:  # a source tree that was never built or installed
    __version__ = "0.0.0"

__all__ = ["RestorationJob", "RestoreJob", "RestoreResult", "__version__", "degrade", "restore"]


def __getattr__(name):
    if name in ("restore", "RestoreJob", "RestoreResult", "RestorationJob", "StackJob"):
        from . import api

        return getattr(api, name)
    if name == "degrade":
        from .degradations import degrade

        return degrade
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
