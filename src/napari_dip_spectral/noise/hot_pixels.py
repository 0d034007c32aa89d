"""Hot pixels: single pixels far brighter than all their neighbours, replaced before denoising.

A camera's hot (stuck-bright) pixel is one pixel, while whatever the optics deliver is spread
by the point-spread function over several: at or above Nyquist sampling no pixel of a real
structure stands more than about twice as far above the background as its brightest
neighbour. Left in the data, a hot pixel widens the range the fit is normalised to, pulls the
noise model's fit off and, as a pixel no prior can predict, misleads the held-out stop
(docs/beyond_the_paper.md section 12). So before denoising with the default profile a pixel
counts as hot when both

* it exceeds the median of its eight neighbours by more than ``DEVIATIONS`` robust noise
  deviations of the image's square root (which roughly evens out photon noise), and
* it stands ``RATIO`` times further above the plane's background (its 1st percentile) than
  its brightest neighbour does,

and it is replaced by the median of its neighbours, in a copy of the input (the input itself
is never changed). Automatic for denoising camera counts with photon noise
(:func:`resolve_noise`). The count is reported with the result (``RestoreResult.hot_pixels``).
Pixels darker than their neighbours are left alone: a dead pixel does not distort the range
or the noise fit the way a bright one does (measured, docs/beyond_the_paper.md section 12).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter, rank_filter

from .noise_fit import resolve_anscombe

DEVIATIONS = 8.0
RATIO = 2.0
BACKGROUND_PERCENTILE = 1.0

# the eight neighbours of a pixel, itself left out
_RING = np.ones((3, 3), bool)
_RING[1, 1] = False


def _ring_median(plane: np.ndarray) -> np.ndarray:
    """The median of each pixel's eight neighbours (the mean of the middle two), borders
    mirrored."""
    low = rank_filter(plane, 3, footprint=_RING, mode="mirror")
    return (low + rank_filter(plane, 4, footprint=_RING, mode="mirror")) / 2


def resolve_hot_pixels(value, task: str, profile: str) -> bool | None:
    """Whether to look for hot pixels: ``True`` / ``False`` as given, for any data and task;
    ``None`` (automatic) gives None for denoising with the default profile, meaning "look,
    and keep the replacement only if the data turn out to be photon counts" (see
    :func:`resolve_noise`), else False."""
    if value is None:
        return None if task == "denoise" and profile == "default" else False
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"hot_pixels must be True, False or None (automatic), got {value!r}")
    return bool(value)


def find_hot_pixels(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask of the hot pixels of one 2-D plane and the median of each pixel's
    neighbours (the replacement value), both ``(H, W)``."""
    x = np.asarray(plane, dtype=np.float64)
    if min(x.shape) < 3 or not np.all(np.isfinite(x)):
        return np.zeros(x.shape, bool), x
    median = _ring_median(x)
    background = np.percentile(x, BACKGROUND_PERCENTILE)
    root = np.sqrt(np.maximum(x - background, 0))
    excess = root - _ring_median(root)
    # the noise's spread in the square root: the median absolute deviation, or where most
    # pixels hold no photon at all (and that deviation is near 0) the spread of the top 1 %
    middle = np.median(excess)
    spread = max(1.4826 * np.median(np.abs(excess - middle)), (np.percentile(excess, 99) - middle) / 2.326)
    if not spread > 0:
        return np.zeros(x.shape, bool), median
    brightest = maximum_filter(x, footprint=_RING, mode="mirror")
    hot = (excess > DEVIATIONS * spread) & (x - background > RATIO * (brightest - background))
    return hot, median


def replace_hot_pixels(image: np.ndarray, yx: tuple[int, int]) -> tuple[np.ndarray, int]:
    """``image`` with the hot pixels of every (Y, X) plane replaced by the median of their
    neighbours, and how many there were. Returns ``image`` itself when there are none, else
    a copy of the same dtype."""
    planes = np.moveaxis(image, yx, (-2, -1))
    out, count = None, 0
    for index in np.ndindex(planes.shape[:-2]):
        hot, median = find_hot_pixels(planes[index])
        n = int(hot.sum())
        if not n:
            continue
        if out is None:
            out = np.array(planes, copy=True)
        values = median[hot]
        if np.issubdtype(out.dtype, np.integer):
            info = np.iinfo(out.dtype)
            values = np.clip(np.rint(values), info.min, info.max)
        out[index][hot] = values.astype(out.dtype)
        count += n
    if out is None:
        return image, 0
    return np.moveaxis(out, (-2, -1), yx), count


def resolve_noise(anscombe, image: np.ndarray, task: str, profile: str, axes: str, hot_pixels=None):
    """The data to restore, its noise model and estimate (noise_fit.resolve_anscombe) and the
    number of hot pixels replaced. ``axes`` names the image's axes (those of its layout).

    The noise model is estimated after the replacement, since hot pixels pull its fit off (so
    far that they can hide the photon noise). In the automatic mode the replacement is kept
    only where the data then have photon noise (a noise model in use): in photos, fine detail
    at low noise can pass for hot pixels."""
    yx = (axes.index("Y"), axes.index("X"))
    look = resolve_hot_pixels(hot_pixels, task, profile)
    cleaned, count = replace_hot_pixels(image, yx) if look is not False else (image, 0)
    model, estimate = resolve_anscombe(anscombe, cleaned, task, yx)
    if count and look is None and model is None:  # not photon counts: the data as given
        cleaned, count = image, 0
        model, estimate = resolve_anscombe(anscombe, image, task, yx)
    return cleaned, model, estimate, count


def describe_hot_pixels(count: int) -> str:
    """A status-line fragment: how many hot pixels were replaced (nothing when none)."""
    return f"; {count} hot pixel{'s' if count != 1 else ''} replaced" if count else ""
