"""The closed-form approximation of the exact unbiased inverse of the generalised Anscombe
transform (Makitalo & Foi, IEEE TIP 2011 and 2013), in photo-electrons.

Plain arithmetic, so that the same formula serves numpy arrays (noise/anscombe.py, after a run)
and torch tensors (core/photon_counts.py, inside a fit); no import of torch here.
"""

from __future__ import annotations

import math

D_MIN = 2 * math.sqrt(3 / 8)  # the transform of zero counts; below it the formula is not monotonic
_SQRT_3_2 = math.sqrt(1.5)


def unbiased_inverse(d, s2):
    """The mean count (photo-electrons, before clipping at 0) whose transform has mean ``d``,
    for ``d >= D_MIN``; ``s2``: the read-noise variance in photo-electrons squared."""
    return d * d / 4 + _SQRT_3_2 / (4 * d) - 11 / (8 * d * d) + 5 * _SQRT_3_2 / (8 * d**3) - 1 / 8 - s2
