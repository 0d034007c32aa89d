"""Noise level of an observation, for the noise-level stopping rule (docs/beyond_the_paper.md).

Immerkaer's noise mask (1996), the product of a second difference along rows and one along
columns, cancels every image that is a sum of a function of x and a function of y (flat
areas, ramps, edges along the axes) and leaves mostly noise; a Gaussian noise of standard
deviation sigma gives a response of standard deviation 6 sigma. The median absolute response
over 0.6745 (a robust standard deviation) makes the estimate insensitive to the few pixels
where real structure leaks through. Texture that does leak makes it a little high, and so the
rule stops a little early rather than late.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

_MASK = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))


def estimate_noise_sigma(y: torch.Tensor) -> torch.Tensor:
    """Per-plane Gaussian noise sigma of ``y`` (shape ``(G, C, H, W)``), in ``y``'s units.

    Close to the true standard deviation on the paper's four denoising images with sigma =
    25/255 noise, and rather above it than below: texture leaks into the mask's response
    (docs/beyond_the_paper.md section 3, "Accuracy of the noise estimate").
    """
    if y.dim() != 4:
        raise ValueError("y must have shape (planes, channels, height, width)")
    g, c, h, w = y.shape
    if h < 3 or w < 3:
        raise ValueError("the noise level needs an image of at least 3 x 3 pixels")
    mask = torch.tensor(_MASK, dtype=torch.float32, device=y.device).view(1, 1, 3, 3)
    response = F.conv2d(y.float().reshape(g * c, 1, h, w), mask).reshape(g, -1)
    return response.abs().median(1).values / (0.6745 * 6)
