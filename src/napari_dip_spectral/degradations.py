"""Make test data for each task: seeded degradations of a clean image in [0, 1]."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .core.config import TASKS


@dataclass
class Degraded:
    """A degraded observation and what ``restore`` needs to undo it."""

    image: np.ndarray  # the observation, float32 in [0, 1]
    task: str
    mask: np.ndarray | None = None  # inpaint: True = observed
    factor: int | None = None  # super_resolution
    clean: np.ndarray | None = None  # the clean image the observation came from


def _as_unit_float(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("image contains NaN or inf values")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError("float images for degrade() must lie in [0, 1]")
    return arr


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Compress with PIL at ``quality`` (``optimize=True, progressive=True``, as the authors)
    and decode; float [0, 1] in and out, grey (Y, X) or colour (Y, X, 3)."""
    from PIL import Image

    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality!r}")
    pil = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(quality), optimize=True, progressive=True)
    buffer.seek(0)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255


def lanczos_downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """PIL Lanczos resize by ``1 / factor`` (the low-resolution input DIP used)."""
    from PIL import Image

    h, w = image.shape[:2]
    if h % factor or w % factor:
        raise ValueError(f"image sides {h}x{w} must be multiples of the factor {factor}")
    pil = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    small = pil.resize((w // factor, h // factor), Image.LANCZOS)
    return np.asarray(small, dtype=np.float32) / 255


def degrade(
    image,
    task: str = "denoise",
    *,
    sigma: float = 25 / 255,
    quality: int = 10,
    keep: float = 0.5,
    factor: int = 4,
    seed: int = 0,
) -> Degraded:
    """Degrade a clean image for ``task``.

    * denoise: ``clip(x + N(0, sigma^2), 0, 1)``
    * deblock: JPEG at ``quality``
    * inpaint: i.i.d. Bernoulli mask keeping a ``keep`` fraction; missing pixels set to 0
    * super_resolution: Lanczos downscaling by ``factor`` (the image is cropped to a multiple)
    * enhance: the image itself (enhancement fits the clean image)
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    clean = _as_unit_float(image)
    rng = np.random.default_rng(seed)
    if task == "denoise":
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
        return Degraded(np.clip(noisy, 0, 1).astype(np.float32), task, clean=clean)
    if task == "deblock":
        return Degraded(jpeg_roundtrip(clean, quality), task, clean=clean)
    if task == "inpaint":
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep!r}")
        mask = rng.random(clean.shape[:2]) < keep
        observed = clean * (mask[..., None] if clean.ndim == 3 else mask)
        return Degraded(observed.astype(np.float32), task, mask=mask, clean=clean)
    if task == "super_resolution":
        if factor not in (2, 4, 8):
            raise ValueError(f"factor must be 2, 4 or 8, got {factor!r}")
        h, w = clean.shape[:2]
        clean = clean[: h - h % factor, : w - w % factor]
        return Degraded(lanczos_downscale(clean, factor), task, factor=factor, clean=clean)
    return Degraded(clean.copy(), task, clean=clean)
