"""The filters of a batch of blocks in the cosine domain: the empirical Wiener filter, shared
by the Wiener pass (refinement/wiener_pass.py: blocks of one neighbourhood) and the grouped estimate
(refinement/block_matching.py: stacks of matched blocks), and the hard threshold of the grouped
estimate made without a pilot."""

from __future__ import annotations

import numpy as np


def shrink_blocks(noisy: np.ndarray, guide: np.ndarray, sigma: float, axes: tuple[int, ...]):
    """The data's blocks ``noisy`` with each cosine coefficient (over ``axes``) shrunk by the
    pilot's ``P**2 / (P**2 + sigma**2)`` -> (estimates, weights): a block shrunk hard has
    little noise left, so its weight is 1 / the sum of its squared gains (kept dimensions)."""
    from scipy.fft import dctn, idctn

    power = dctn(guide, axes=axes, norm="ortho") ** 2
    shrink = power / np.maximum(power + sigma**2, 1e-30)  # 0, not NaN, where both vanish
    estimate = idctn(shrink * dctn(noisy, axes=axes, norm="ortho"), axes=axes, norm="ortho")
    return estimate, 1.0 / np.maximum((shrink**2).sum(axis=axes, keepdims=True), 1e-12)


def threshold_blocks(noisy: np.ndarray, sigma: float, lam: float, axes: tuple[int, ...]):
    """The blocks ``noisy`` with every cosine coefficient (over ``axes``) below ``lam *
    sigma`` in magnitude set to zero -> (estimates, weights): a block with few coefficients
    left has little noise left, so its weight is 1 / the number kept (at least 1)."""
    from scipy.fft import dctn, idctn

    coefficients = dctn(noisy, axes=axes, norm="ortho")
    keep = np.abs(coefficients) >= lam * sigma
    estimate = idctn(coefficients * keep, axes=axes, norm="ortho")
    return estimate, 1.0 / np.maximum(keep.sum(axis=axes, keepdims=True), 1)
