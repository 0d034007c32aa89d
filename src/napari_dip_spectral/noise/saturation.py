"""Saturated pixels: where a camera clipped, and how denoising keeps them out of the fit.

A saturated pixel records only that the light reached the top of the camera's range: its value
is a bound, not a measurement. The noise model leaves such pixels out of its fit
(noise/noise_fit.py); the fit itself must not see them either. An integer image's maximum (65535 in
uint16) lies far above everything else in a dim fluorescence image, so a few saturated pixels,
a bead or a bright speck set the top of the range the fit is normalised to, squeeze the signal
into a small part of it and mislead the held-out stop: five saturated beads cost the default
1.0 dB on average over the rest of a 128 x 128 crop at 20 photons (docs/beyond_the_paper.md
section 12).

So denoising with the default profile treats saturated pixels as unobserved: they are lowered
to the brightest value that is not saturated, in a copy (the input is never changed), so that
they do not set the range the data are normalised to; the fit leaves them out of its data
term and of its held-out error, as inpainting does its holes (engine/job.py; otherwise the decoder
spends its iterations on the beads' sharp edges while the rest gets worse, and their held-out
pixels keep the stop from firing); the passes after the fit see the lowered values; and the
recorded value is put back into the result at those pixels: what the camera could not measure
is not invented, and the result stays saturated where the recording was.
"""

from __future__ import annotations

import numpy as np

PILED = 0.002  # the share of pixels at the data's minimum or maximum that marks clipping


def clipping_levels(data: np.ndarray) -> tuple[float | None, float | None]:
    """The levels at which ``data`` was clipped (dark, bright), or None: a value at the data's
    minimum or maximum shared by more than ``PILED`` of the pixels (a pile-up), and an integer
    image's values at its type's maximum however few they are."""
    lo, hi = float(data.min()), float(data.max())
    piled = PILED * data.size
    saturated = data.dtype.kind in "iu" and hi >= np.iinfo(data.dtype).max
    low = lo if np.count_nonzero(data == lo) > piled else None
    high = hi if np.count_nonzero(data == hi) > piled or saturated else None
    return low, high


def lower_saturated(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    """``image`` with its saturated pixels (:func:`clipping_levels`' bright level) lowered to
    the brightest value below it, as a copy; the mask of those pixels and their recorded
    level. ``image`` itself, None and None when nothing is saturated or nothing else is left."""
    _, high = clipping_levels(image)
    if high is None:
        return image, None, None
    mask = image == high
    if mask.all():
        return image, None, None
    top = image[~mask].max()
    return np.where(mask, top, image).astype(image.dtype, copy=False), mask, high


def lower_saturated_for(image: np.ndarray, task: str, profile: str, *, photon_noise: bool):
    """:func:`lower_saturated` for denoising camera data (a photon noise model) with the
    default profile; the paper profile, the other tasks and data under Gaussian noise fit the
    data as given. A photo with Gaussian noise clipped to its range piles up pixels at both
    ends that are noise, not a bound: kept out of the fit and put back as recorded, they cost
    0.5-1.0 dB on the quick natural-image crops (docs/benchmarks.md)."""
    if task == "denoise" and profile == "default" and photon_noise:
        return lower_saturated(image)
    return image, None, None


def restore_saturated(result: np.ndarray, mask: np.ndarray | None, level) -> np.ndarray:
    """``result`` (the input's shape) with the recorded saturation ``level`` back at ``mask``,
    except in planes left NaN because they were never restored (a cancelled run)."""
    if mask is not None:
        result[mask & ~np.isnan(result)] = level
    return result


def describe_saturated(count: int) -> str:
    """A status-line fragment: how many saturated pixels were kept out of the fit."""
    return f"; {count} saturated pixel{'s' if count != 1 else ''} kept as recorded" if count else ""
