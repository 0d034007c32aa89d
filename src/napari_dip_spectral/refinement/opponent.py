"""Colour planes go through the passes after the fit in an opponent colour space.

The red, green and blue of a photo are strongly correlated: their sum carries the detail,
their differences vary slowly. CBM3D (Dabov et al., ICIP 2007) filters a luminance and two
colour-difference channels for that reason. Here the rotation is orthonormal (rows
``(1, 1, 1) / sqrt(3)``, ``(1, 0, -1) / sqrt(2)``, ``(1, -2, 1) / sqrt(6)``), so noise that
is white with one sigma in red, green and blue stays white with that sigma in each opponent
channel, and the share of non-local means and the Wiener passes (refinement/nonlocal_share.py,
refinement/wiener_pass.py) run there unchanged. Where the fit's result has no power in a colour
difference, the Wiener gains drop the data's noise in it instead of keeping it in every
channel (docs/beyond_the_paper.md section 11, "Colour planes in an opponent space").
Which units are colour planes is the layout's to say (``Layout.colour``).
"""

from __future__ import annotations

import numpy as np

_ROTATION = np.array(
    [
        [1.0, 1.0, 1.0],
        [1.0, 0.0, -1.0],
        [1.0, -2.0, 1.0],
    ]
) / np.sqrt([[3.0], [2.0], [6.0]])


def to_opponent(planes: np.ndarray) -> np.ndarray:
    """``(units, 3, H, W)`` red, green, blue -> luminance and two colour differences."""
    return np.einsum("ij,ujhw->uihw", _ROTATION, planes).astype(planes.dtype, copy=False)


def from_opponent(planes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_opponent` (the rotation's transpose)."""
    return np.einsum("ji,ujhw->uihw", _ROTATION, planes).astype(planes.dtype, copy=False)
