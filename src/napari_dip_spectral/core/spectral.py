"""Frequency-band correspondence (FBC) measure, docs/method.md section 1, in torch.

``fbc_bands(output, reference)`` returns, per image, the mean over each radial frequency band
of ``clip(|F(output)| / (|F(reference)| + 1e-8), 0, 1)``. Band 1 is the disc around DC of radius
``int(W/2) / n_bands``, band k the annulus out to ``k * int(W/2) / n_bands``; frequencies beyond
``int(W/2)`` (the spectrum's corners) are ignored. Radii come from the width only, as in the
authors' code. Everything stays on the device: no host synchronisation.
"""

from __future__ import annotations

import functools

import torch

GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """``(..., C, H, W)`` -> ``(..., H, W)``: luma weights for 3 channels (clipped to [0, 1]),
    the channel mean otherwise (a single channel is passed through)."""
    if x.shape[-3] == 3:
        w = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * w).sum(-3).clamp(0, 1)
    return x.mean(-3)


@functools.lru_cache(maxsize=32)
def _band_index(height: int, width: int, n_bands: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    cy, cx = height // 2, width // 2
    yy = torch.arange(height, dtype=torch.float64).view(-1, 1) - cy
    xx = torch.arange(width, dtype=torch.float64).view(1, -1) - cx
    dist = torch.sqrt(yy**2 + xx**2)
    radii = cx * torch.linspace(1 / n_bands, 1, n_bands, dtype=torch.float64)
    # band k (0-based) holds radii[k-1] < d <= radii[k]; d > radii[-1] gets index n_bands (dropped)
    index = torch.bucketize(dist, radii, right=False).flatten()
    counts = torch.bincount(index, minlength=n_bands + 1)[:n_bands].to(torch.float32)
    return index.to(device), counts.to(device)


def fbc_bands(output: torch.Tensor, reference: torch.Tensor, n_bands: int = 5) -> torch.Tensor:
    """FBC of ``output`` against ``reference``, both ``(..., C, H, W)`` in [0, 1].

    Returns ``(..., n_bands)``, lowest band first.
    """
    if n_bands < 1:
        raise ValueError(f"n_bands must be >= 1, got {n_bands!r}")
    out, ref = to_grey(output.float()), to_grey(reference.float())
    h, w = out.shape[-2:]
    spec_out = torch.fft.fftshift(torch.fft.fft2(out), dim=(-2, -1)).abs()
    spec_ref = torch.fft.fftshift(torch.fft.fft2(ref), dim=(-2, -1)).abs()
    ratio = (spec_out / (spec_ref + 1e-8)).clamp(0, 1).flatten(-2)
    index, counts = _band_index(h, w, n_bands, str(out.device))
    lead = ratio.shape[:-1]
    sums = torch.zeros(*lead, n_bands + 1, dtype=ratio.dtype, device=ratio.device)
    sums.index_add_(-1, index, ratio)
    # a band with no frequency in it (images of a few pixels) reads 0, not 0 / 0
    return sums[..., :n_bands] / counts.clamp(min=1)
