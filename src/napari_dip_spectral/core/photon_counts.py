"""A Poisson likelihood for photon counts: the decoder fits the intensity, not its square root.

The observation ``y`` is what every denoising fit sees: the counts after the generalised
Anscombe transform, normalised to [0, 1] by ``D = low + y (high - low)``. The transform is
``D = 2 sqrt(e + 3/8 + s2)`` in photo-electrons ``e`` with ``s2`` the read-noise variance in
photo-electrons squared, so ``D^2 / 4 - 3/8`` gives back, exactly, the shifted count
``e + s2``: a Poisson variable of mean ``mu + s2`` to a good approximation (read noise as a
Poisson shift; Snyder et al. 1993). The decoder's output ``x`` in [0, 1] is that mean,
``mu + s2 = x * (top + s2)``, and the data term is its Poisson deviance at each pixel. The
output reaches down to a mean of 0, below ``mu = 0``, so that the bottom of its range does
not hold dark pixels up.

Why: a decoder that draws the intensity learns dim structure next to bright structure at
one pace, where in the square-root domain the bright edges are compressed; on the cell crops
of the fluorescence benchmark at 5-20 photons the decoder's best iterate was 0.15-0.38 dB
higher, though after the passes that follow the fit the gain is smaller
(docs/beyond_the_paper.md section 13).

Everything after the fit works in the transformed units, as before: :meth:`as_image` maps
``mu`` to the value of ``D`` whose unbiased inverse (noise/anscombe.py, Makitalo & Foi) is ``mu``,
normalised again, so the held-out stop, the previews, the share of non-local means and the
Wiener pass, and the final inverse transform need not know how the fit was made.
"""

from __future__ import annotations

import torch

from .anscombe_inverse import D_MIN, unbiased_inverse
from .operators import ForwardOperator

_TABLE = 4096  # points of the inverse's table: steps of about a thousandth of the range


class PhotonCounts(ForwardOperator):
    """The Poisson data term per pixel. ``low``, ``high``: each group's normalisation of the
    transformed data; ``s2``: the read-noise variance in photo-electrons squared; ``top``:
    each group's largest intensity the output can reach (photo-electrons); all of shape
    ``(G,)``. ``mask`` (``(G, 1 or C, H, W)``, 1 = observed): pixels left out of the data term
    (saturated ones)."""

    def __init__(self, low, high, s2, top, mask: torch.Tensor | None = None):
        def column(v):
            return torch.as_tensor(v, dtype=torch.float32).reshape(-1, 1, 1, 1)

        self.low, self.high, self.s2, self.top = column(low), column(high), column(s2), column(top)
        if not bool((self.high > self.low).all() and (self.top > 0).all() and (self.s2 >= 0).all()):
            raise ValueError("photon counts need high > low, top > 0 and s2 >= 0 for every plane")
        self.mask = None if mask is None else mask.float()
        # the unbiased inverse on a grid of transformed values, increasing above D_MIN: as_image
        # reads it backwards (one row per group's read noise)
        end = float(2 * torch.sqrt(self.top.max() + 3 / 8 + self.s2.max()) + 2)
        self.grid = torch.linspace(D_MIN, end, _TABLE, dtype=torch.float64)
        self.table = unbiased_inverse(self.grid, self.s2.double().reshape(-1, 1))

    def to(self, device):
        self.low, self.high, self.s2, self.top = (t.to(device) for t in (self.low, self.high, self.s2, self.top))
        self.grid, self.table = self.grid.to(device), self.table.to(device)
        self.mask = None if self.mask is None else self.mask.to(device)
        return self

    def repeat_groups(self, m):
        def rep(t):
            return None if t is None else (t.repeat_interleave(m, 0) if t.shape[0] > 1 else t)

        return PhotonCounts(rep(self.low), rep(self.high), rep(self.s2), rep(self.top), rep(self.mask))

    def counts(self, y: torch.Tensor) -> torch.Tensor:
        """The shifted counts ``e + s2`` of the normalised transformed data. Read noise makes
        some negative; they are kept (down to -3/8, where the transform clipped them): cut at
        0, a pixel with no light would average 0.1 photon with a read noise of 0.75."""
        d = self.low + y * (self.high - self.low)
        return d * d / 4 - 3 / 8

    def rate(self, x: torch.Tensor) -> torch.Tensor:
        """The Poisson mean ``mu + s2`` of the output; a floor keeps its logarithm finite."""
        return x * (self.top + self.s2) + 1e-4

    def intensity(self, x: torch.Tensor) -> torch.Tensor:
        """``mu`` of the output (photo-electrons; below 0 where the fit reaches under the read
        noise's shift)."""
        return x * (self.top + self.s2) - self.s2

    def pixel_loss(self, x, y):
        rate, counts = self.rate(x), self.counts(y)
        # the Poisson negative log-likelihood as a quasi-likelihood (its minimum over the rate
        # is at the counts' mean, negative counts included), shifted to 0 where the rate
        # equals positive counts; one logarithm of their ratio would give 0/0 gradients at 0
        positive = counts.clamp(min=0)
        loss = rate - counts + torch.xlogy(positive, positive) - counts * torch.log(rate)
        return loss if self.mask is None else loss * self.mask

    def residual(self, x, y):
        """The Pearson residual (what a squared error would square)."""
        rate = self.rate(x)
        r = (rate - self.counts(y)) / rate.sqrt()
        return r if self.mask is None else r * self.mask

    def forward(self, x):
        return x if self.mask is None else x * self.mask

    def fbc_pair(self, x, y):
        """The output and the observation, both as Poisson means in units of ``top + s2``."""
        observed = self.counts(y) / (self.top + self.s2)
        return x, observed if self.mask is None else observed * self.mask

    def data_level(self, y):
        level = self.counts(y) / (self.top + self.s2)
        if self.mask is None:
            mean = level.mean(dim=(2, 3))
        else:
            mask = self.mask.expand_as(level)
            mean = (level * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp(min=1)
        return mean.clamp(0.01, 0.99).reshape(-1)

    def as_image(self, x):
        """The intensity as the normalised transformed value whose unbiased inverse it is."""
        mu = self.intensity(x.detach()).double()
        groups = x.shape[0]
        table = self.table.expand(groups, -1).contiguous()
        d = _interpolate(mu.reshape(groups, -1), table, self.grid).reshape(mu.shape)
        low, high = self.low.double(), self.high.double()
        return ((d - low) / (high - low)).to(x.dtype)


def _interpolate(values: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` row by row: ``values`` and the increasing ``xp`` have one row per group,
    ``fp`` is shared; ends held."""
    v = values.clamp(xp[:, :1], xp[:, -1:])
    i = torch.searchsorted(xp, v).clamp(1, xp.shape[1] - 1)
    x0, x1, f0, f1 = xp.gather(1, i - 1), xp.gather(1, i), fp[i - 1], fp[i]
    return f0 + (f1 - f0) * (v - x0) / (x1 - x0)
