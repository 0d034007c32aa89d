"""Image-quality metrics of the benchmark (the protocol stated in docs/benchmarks.md).

* PSNR and SSIM on float images in [0, 1] (data range 1), over all channels, no border crop:
  the authors' protocol (``compare_psnr`` on float32 [0, 1] arrays).
* Super-resolution also: PSNR on the BT.601 luma (studio range, Y in [16, 235]) with a
  4-pixel border removed, as in DIP's SR evaluation.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(image: np.ndarray, clean: np.ndarray) -> float:
    return float(
        peak_signal_noise_ratio(clean.astype(np.float64), np.clip(image, 0, 1).astype(np.float64), data_range=1.0)
    )


def ssim(image: np.ndarray, clean: np.ndarray) -> float:
    colour = clean.ndim == 3
    return float(
        structural_similarity(
            clean.astype(np.float64),
            np.clip(image, 0, 1).astype(np.float64),
            data_range=1.0,
            channel_axis=-1 if colour else None,
        )
    )


def luma_bt601(image: np.ndarray) -> np.ndarray:
    """Studio-range BT.601 luma scaled to [0, 1] (``Y / 255``); grey images pass through."""
    if image.ndim == 2:
        return image.astype(np.float64)
    rgb = np.clip(image, 0, 1).astype(np.float64)
    return (16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def psnr_y(image: np.ndarray, clean: np.ndarray, border: int = 4) -> float:
    """Y-channel PSNR with ``border`` pixels removed on every side."""
    crop = (slice(border, -border or None), slice(border, -border or None))
    return psnr(luma_bt601(image)[crop], luma_bt601(clean)[crop])
