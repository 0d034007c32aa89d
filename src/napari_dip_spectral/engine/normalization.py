"""Intensity normalisation to [0, 1] before fitting, and its inverse after."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("minmax", "percentile", "dtype", "none")
CHOICES = ("auto", *METHODS)


def resolve_normalize(method: str, profile: str, image) -> str:
    """The method ``"auto"`` stands for: ``"minmax"`` in the default profile; in the ``paper``
    profile the authors' scaling where they have one (their images are 8-bit, divided by 255):
    ``"dtype"`` for uint8 data and for float data already within [0, 1], and ``"minmax"`` for
    anything else, which their code never meets (a 12-bit camera image divided by 65535 would
    fill 6 % of the range). ``image`` may be a dask array
    (its range is then computed). Any other method is returned as it is."""
    if method != "auto":
        if method not in METHODS:
            raise ValueError(f"normalize must be one of {CHOICES}, got {method!r}")
        return method
    if profile != "paper":
        return "minmax"
    dtype = np.dtype(image.dtype)
    if dtype.kind in "ui":
        return "dtype" if dtype == np.uint8 else "minmax"
    low, high = (float(np.asarray(v)) for v in (image.min(), image.max()))
    return "dtype" if low >= 0 and high <= 1 else "minmax"


@dataclass(frozen=True)
class Normalization:
    """``unit = (x - low) / (high - low)``; ``inverse`` maps [0, 1] back to the input range."""

    low: float
    high: float
    method: str

    @property
    def _wide(self) -> bool:
        """A span float32 cannot hold (data near float32's limits): compute in float64."""
        return not np.isfinite(np.float32(self.high - self.low))

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self._wide:
            unit = ((np.asarray(x, dtype=np.float64) - self.low) / (self.high - self.low)).astype(np.float32)
        else:
            unit = (np.asarray(x, dtype=np.float32) - np.float32(self.low)) / np.float32(self.high - self.low)
        return np.clip(unit, 0, 1) if self.method == "percentile" else unit

    def inverse(self, unit: np.ndarray) -> np.ndarray:
        if self._wide:
            values = np.asarray(unit, dtype=np.float64) * (self.high - self.low) + self.low
            top = float(np.finfo(np.float32).max)  # rounding to float32 must not reach inf
            return np.clip(values, -top, top).astype(np.float32)
        return (unit * np.float32(self.high - self.low) + np.float32(self.low)).astype(np.float32)


def fit_normalization(
    image: np.ndarray, method: str = "minmax", percentiles: tuple[float, float] = (0.1, 99.9), transform=None
) -> Normalization:
    """How to map ``image`` to [0, 1] (after ``transform``, e.g. a variance-stabilising
    transform's ``forward``, when given: the dtype's range is carried through it, the other
    methods measure the transformed values; ``"none"`` cannot be combined with it).

    * ``"minmax"`` (default): the data's own minimum and maximum. Nothing is clipped, and a
      12-bit camera image stored as uint16 fills the whole range.
    * ``"percentile"``: the 0.1 and 99.9 percentiles; values outside are clipped to [0, 1]
      before fitting (robust to hot pixels, but the brightest 0.1 % are flattened).
    * ``"dtype"``: the dtype's range (0-255 for uint8, 0-65535 for uint16, 0-1 for floats).
    * ``"none"``: use the values as they are; they must already lie in [0, 1].
    """
    if method not in METHODS:
        raise ValueError(f"normalize must be one of {METHODS}, got {method!r}")
    if transform is not None:
        if method == "none":
            raise ValueError("normalize='none' cannot be combined with anscombe (the transform changes the range)")
        if method == "dtype":
            base = fit_normalization(image, method, percentiles)
            low, high = (float(transform(np.float32(v))) for v in (base.low, base.high))
            return Normalization(low, high, method)
        return fit_normalization(transform(np.asarray(image)), method, percentiles)
    arr = np.asarray(image)
    if method == "none":
        low, high = 0.0, 1.0
        if arr.size and (float(arr.min()) < 0 or float(arr.max()) > 1):
            raise ValueError("normalize='none' needs values in [0, 1]; use 'minmax' or 'dtype'")
    elif method == "dtype":
        if arr.dtype.kind in "ui":
            info = np.iinfo(arr.dtype)
            low, high = float(info.min), float(info.max)
        else:
            low, high = 0.0, 1.0
            if float(arr.min()) < 0 or float(arr.max()) > 1:
                raise ValueError("normalize='dtype' on float data needs values in [0, 1]")
    elif method == "percentile":
        low, high = (float(v) for v in np.percentile(arr, percentiles))
    else:
        low, high = float(arr.min()), float(arr.max())
    if not high > low:
        raise ValueError(f"image is constant (all values {low:g}): nothing to restore")
    return Normalization(low, high, method)


def cast_output(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip to an integer dtype's range, or cast to a float dtype (never rescale)."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(np.nan_to_num(image)), info.min, info.max).astype(dtype)
    return image.astype(dtype)
