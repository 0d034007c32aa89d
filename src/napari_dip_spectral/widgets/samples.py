"""Offline sample data: degraded versions of scikit-image's bundled images and a synthetic
fluorescence stack. Each command returns napari ``LayerDataTuple``s: the degraded image, and
the clean image (hidden) to use as the PSNR reference."""

from __future__ import annotations

import numpy as np

from ..degradations import degrade, lanczos_downscale


def _unit(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255


def _camera() -> np.ndarray:
    from skimage import data

    return lanczos_downscale(_unit(data.camera()), 2)  # 256 x 256


def _astronaut() -> np.ndarray:
    from skimage import data

    return lanczos_downscale(_unit(data.astronaut()), 2)  # 256 x 256 x 3


def _pair(degraded, stem: str, how: str, rgb: bool = False) -> list:
    return [
        (degraded.clean, {"name": f"{stem} (clean)", "visible": False, "rgb": rgb}, "image"),
        (degraded.image, {"name": f"{stem} ({how})", "rgb": rgb}, "image"),
    ]


def noisy_camera() -> list:
    """Cameraman, 256 px, Gaussian noise sigma = 25/255."""
    return _pair(degrade(_camera(), "denoise", sigma=25 / 255, seed=1), "camera", "noisy, sigma 25")


def jpeg_astronaut() -> list:
    """Astronaut, 256 px RGB, JPEG quality 10."""
    return _pair(degrade(_astronaut(), "deblock", quality=10), "astronaut", "JPEG q10", rgb=True)


def holey_camera() -> list:
    """Cameraman with half of its pixels missing, and a Labels layer marking them (1 = missing)."""
    degraded = degrade(_camera(), "inpaint", keep=0.5, seed=2)
    return _pair(degraded, "camera", "50% missing") + [
        ((~degraded.mask).astype(np.uint8), {"name": "missing pixels", "opacity": 0.4}, "labels")
    ]


def small_astronaut() -> list:
    """Astronaut downscaled 4x (64 px RGB, Lanczos) with the 256 px original as reference."""
    return _pair(degrade(_astronaut(), "super_resolution", factor=4), "astronaut", "4x smaller", rgb=True)


def cell_details() -> list:
    """scikit-image's cell image, 256 px, for detail enhancement."""
    from skimage import data

    cell = _unit(data.cell())[:512, :512]
    return [(lanczos_downscale(cell, 2), {"name": "cell"}, "image")]


def fluorescence_stack(planes: int = 5, size: int = 96, seed: int = 0) -> list:
    """A synthetic widefield-like uint16 stack (Z, Y, X): blurred blobs on a camera offset,
    Poisson shot noise (about 40 photons at the brightest) plus Gaussian read noise (sigma 3),
    with pixel size 0.1 um and z step 0.5 um."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    volume = np.zeros((planes, size, size), dtype=np.float32)
    points = rng.integers(0, (planes, size, size), size=(40, 3))
    volume[tuple(points.T)] = rng.uniform(0.5, 1.0, len(points))
    volume = gaussian_filter(volume, sigma=(1.0, 3.0, 3.0))
    photons = 40 * volume / volume.max()
    counts = rng.poisson(photons) + rng.normal(0, 3, volume.shape) + 100
    clean = (photons + 100).round().astype(np.uint16)
    noisy = np.clip(counts, 0, 65535).round().astype(np.uint16)
    meta = dict(scale=(0.5, 0.1, 0.1), units=("um", "um", "um"), axis_labels=("z", "y", "x"))
    limits = (float(clean.min()), float(clean.max()))
    return [
        (clean, dict(meta, name="blobs (clean)", visible=False, contrast_limits=limits), "image"),
        (noisy, dict(meta, name="blobs (noisy, uint16)", contrast_limits=limits), "image"),
    ]
