"""Generalised Anscombe transform (GAT) for Poisson-Gaussian data, and its inverses.

Model: ``z = gain * p + n`` with ``p ~ Poisson(lambda)`` (photo-electrons) and
``n ~ N(offset, read_noise^2)`` (camera offset and read noise, in the data's units). The GAT

    f(z) = (2 / gain) * sqrt(max(gain * z + 3/8 gain^2 + read_noise^2 - gain * offset, 0))

makes the noise approximately Gaussian with unit variance, which is the noise the deep image
prior's squared loss assumes. After restoration the result is mapped back with

* ``"unbiased"`` (default): the closed-form approximation of the exact unbiased inverse
  (Makitalo & Foi, IEEE TIP 2011 and 2013):
  ``I(D) = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8 - s^2`` with
  ``s = read_noise / gain``, clipped at 0, then ``gain * I + offset``. It removes the bias
  that the plain algebraic inverse has at low counts (a few photons per pixel). Below
  ``D = 2 sqrt(3/8)`` (the transform of zero counts) the approximation is not monotonic, so
  it is held at its value there.
* ``"algebraic"``: ``((D/2)^2 - 3/8 - s^2) * gain + offset``; biased low at low counts, exact
  in the limit of many counts.

Use it for photon-limited data (fluorescence, low-light cameras) whose noise grows with the
signal; leave it off for data with signal-independent (Gaussian) noise. The functions accept
numpy or dask arrays (element-wise numpy operations only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.anscombe_inverse import D_MIN, unbiased_inverse

INVERSES = ("unbiased", "algebraic")


@dataclass(frozen=True)
class PoissonGaussian:
    """Noise parameters of the data: ``gain`` (data units per photo-electron), ``offset``
    (the camera's dark level) and ``read_noise`` (its Gaussian standard deviation), all in
    the data's units. The defaults describe pure photon counts."""

    gain: float = 1.0
    offset: float = 0.0
    read_noise: float = 0.0
    inverse: str = "unbiased"

    def __post_init__(self):
        if not self.gain > 0:
            raise ValueError(f"anscombe gain must be > 0, got {self.gain!r}")
        if not self.read_noise >= 0:
            raise ValueError(f"anscombe read_noise must be >= 0, got {self.read_noise!r}")
        if not np.isfinite(self.offset):
            raise ValueError(f"anscombe offset must be finite, got {self.offset!r}")
        if self.inverse not in INVERSES:
            raise ValueError(f"anscombe inverse must be one of {INVERSES}, got {self.inverse!r}")

    def forward(self, z):
        """The GAT of ``z`` (float32; numpy or dask)."""
        a, s = self.gain, self.read_noise
        inner = a * z.astype(np.float32) + (3 / 8 * a * a + s * s - a * self.offset)
        return (2 / a) * np.sqrt(np.maximum(inner, 0)).astype(np.float32)

    def inverse_transform(self, d):
        """Map a restored transformed image ``d`` back to the data's units (float32)."""
        d = np.asarray(d, dtype=np.float64)
        s2 = (self.read_noise / self.gain) ** 2
        if self.inverse == "algebraic":
            counts = (d / 2) ** 2 - 3 / 8 - s2
        else:
            counts = unbiased_inverse(np.maximum(d, D_MIN), s2)
        return (np.maximum(counts, 0) * self.gain + self.offset).astype(np.float32)


def noise_model(anscombe) -> PoissonGaussian | None:
    """``anscombe`` as given to ``restore()``: False/None (off), True (photon counts), a dict
    of :class:`PoissonGaussian` fields, or a :class:`PoissonGaussian`."""
    if anscombe is None or anscombe is False:
        return None
    if anscombe is True:
        return PoissonGaussian()
    if isinstance(anscombe, PoissonGaussian):
        return anscombe
    if isinstance(anscombe, dict):
        unknown = set(anscombe) - {"gain", "offset", "read_noise", "inverse"}
        if unknown:
            raise ValueError(f"anscombe has unknown keys {sorted(unknown)}; use gain, offset, read_noise, inverse")
        return PoissonGaussian(**anscombe)
    raise ValueError(f"anscombe must be True/False, a dict or a PoissonGaussian, got {anscombe!r}")
