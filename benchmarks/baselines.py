"""Classical baselines run next to ours on the same observation.

* denoising: scikit-image non-local means (``h = 0.8 sigma``, the known sigma) and BM3D;
* JPEG deblocking: total variation (Chambolle, weight = the RMS JPEG error) and BM3D with
  that RMS error as its noise level (both oracle noise levels: they see the clean image's
  error magnitude, nothing else);
* inpainting: biharmonic inpainting;
* super-resolution: bicubic interpolation (``skimage.transform.resize``, order 3);
* enhancement: unsharp masking (Gaussian radius 2, amount 1).

BM3D is used only where the ``bm3d`` package imports (it is not on the GPU machine).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

try:
    import bm3d as _bm3d
except ImportError:  # pragma: no cover - depends on the machine
    _bm3d = None

BM3D_AVAILABLE = _bm3d is not None


def _colour_axis(image: np.ndarray) -> int | None:
    return -1 if image.ndim == 3 else None


def nl_means(observed: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(
        observed,
        h=0.8 * sigma,
        sigma=sigma,
        fast_mode=True,
        patch_size=5,
        patch_distance=6,
        channel_axis=_colour_axis(observed),
    )


def total_variation(observed: np.ndarray, weight: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(observed, weight=weight, channel_axis=_colour_axis(observed))


def bm3d(observed: np.ndarray, sigma: float) -> np.ndarray:
    if _bm3d is None:
        raise RuntimeError("the bm3d package is not installed")
    if observed.ndim == 3:
        return np.asarray(_bm3d.bm3d_rgb(observed, sigma_psd=sigma))
    return np.asarray(_bm3d.bm3d(observed, sigma_psd=sigma))


def biharmonic(observed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    return inpaint_biharmonic(observed, ~mask, channel_axis=_colour_axis(observed))


def bicubic(observed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from skimage.transform import resize

    return resize(observed, shape, order=3, mode="reflect", anti_aliasing=False)


def unsharp(observed: np.ndarray, radius: float = 2.0, amount: float = 1.0) -> np.ndarray:
    """``x + amount * (x - G_radius * x)`` per channel, clipped to [0, 1]. (Written out with
    scipy: scikit-image 0.26's ``unsharp_mask`` with ``channel_axis`` returned images with a
    mean of 0.02 for a [0, 1] input with mean 0.44 here.)"""
    from scipy.ndimage import gaussian_filter

    sigma = (radius, radius, 0) if observed.ndim == 3 else radius
    blurred = gaussian_filter(observed.astype(np.float64), sigma=sigma)
    return np.clip(observed + amount * (observed - blurred), 0, 1)


def baselines_for(case) -> dict[str, Callable[[], np.ndarray]]:
    """Name -> zero-argument function returning the baseline's restoration of ``case``."""
    y = case.observed
    if case.task == "denoise":
        sigma = case.params["sigma"]
        methods = {"NL-means (skimage, oracle sigma)": lambda: nl_means(y, sigma)}
        if BM3D_AVAILABLE:
            methods["BM3D (oracle sigma)"] = lambda: bm3d(y, sigma)
        return methods
    if case.task == "deblock":
        rms = float(np.sqrt(np.mean((y - case.clean) ** 2)))
        methods = {"TV (skimage, weight = RMS error)": lambda: total_variation(y, rms)}
        if BM3D_AVAILABLE:
            methods["BM3D (sigma = RMS error)"] = lambda: bm3d(y, rms)
        return methods
    if case.task == "inpaint":
        return {"biharmonic (skimage)": lambda: biharmonic(y, case.mask)}
    if case.task == "super_resolution":
        return {"bicubic (skimage)": lambda: bicubic(y, case.clean.shape)}
    if case.task == "enhance":
        return {"unsharp mask (scipy, radius 2)": lambda: unsharp(y)}
    raise ValueError(f"no baseline for task {case.task!r}")
