"""Forward operators: how a task's observation is made from the clean image.

Each operator maps the network output ``x`` (shape ``(G, C, H, W)``, the restored image) to
the observation space, defines the data-fit loss against the observation ``y``, and says
which image the FBC measure compares with ``y`` (docs/method.md sections 1 and 7). The solver
does not branch on task names: it only calls these methods.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


class ForwardOperator:
    """Identity: denoising, and JPEG deblocking (the observation is the decoded JPEG)."""

    #: output side length / observation side length
    scale: int = 1

    def to(self, device: torch.device) -> ForwardOperator:
        return self

    def repeat_groups(self, m: int) -> ForwardOperator:
        """The operator for an observation whose every plane is repeated ``m`` times as
        consecutive groups (an ensemble, core/ensemble.py)."""
        return self

    def output_shape(self, observation_shape: tuple[int, int]) -> tuple[int, int]:
        return observation_shape[0] * self.scale, observation_shape[1] * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def residual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the data term squares: ``forward(x) - y`` per pixel."""
        return self.forward(x) - y

    def pixel_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The data term at each pixel: the squared :meth:`residual`."""
        return self.residual(x, y).pow(2)

    def loss_per_group(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean :meth:`pixel_loss` for each group, shape ``(G,)``."""
        return self.pixel_loss(x, y).flatten(1).mean(1)

    def as_image(self, x: torch.Tensor) -> torch.Tensor:
        """The output in the observation's units (identity: the decoder fits those units)."""
        return x

    def fbc_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, reference) for the FBC measure; the reference is the observation."""
        return x, y

    def data_level(self, y: torch.Tensor) -> torch.Tensor:
        """The mean level of the image behind ``y`` per plane and channel, shape ``(G * C,)``
        (where the output head starts with ``init_output="data"``)."""
        return y.mean(dim=(2, 3)).reshape(-1)

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Turn the fitted output into the task's result (:meth:`as_image`, except for
        enhancement)."""
        return self.as_image(x)


class Denoise(ForwardOperator):
    pass


class Deblock(ForwardOperator):
    """Identity on the decoded JPEG image."""


class Inpaint(ForwardOperator):
    """``y = x * m`` with ``m`` = 1 on observed pixels. The loss is the mean over all pixels of
    ``((x - y) * m)^2`` (as the authors'); FBC compares the full output with the masked
    observation (docs/method.md section 1)."""

    def __init__(self, mask: torch.Tensor):
        # mask: (G, 1 or C, H, W) float in {0, 1}
        self.mask = mask.float()

    def to(self, device):
        self.mask = self.mask.to(device)
        return self

    def repeat_groups(self, m):
        return Inpaint(self.mask.repeat_interleave(m, 0)) if self.mask.shape[0] > 1 else self

    def forward(self, x):
        return x * self.mask

    def residual(self, x, y):
        # y need not be zero where unobserved: denoising leaves saturated pixels out this way
        # and keeps their (lowered) values in y for the passes after the fit
        return (x - y) * self.mask

    def data_level(self, y):
        # the missing pixels are zeros in y: average the observed ones only
        mask = self.mask.expand_as(y)
        return ((y * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp(min=1)).reshape(-1)


def lanczos2_kernel(factor: int) -> torch.Tensor:
    """The separable Lanczos-2 downsampling taps of docs/method.md section 7 (DIP's downsampler,
    phase 1/2): ``4 * factor`` taps ``L(d) = 2 sin(pi d) sin(pi d / 2) / (pi^2 d^2)`` at
    ``d = |i + 1/2 - c| / factor``, ``c = (4 factor + 2) / 2``, normalised to sum 1."""
    size = 4 * factor
    centre = (4 * factor + 2) / 2
    i = torch.arange(1, size + 1, dtype=torch.float64)
    d = (i + 0.5 - centre).abs() / factor
    a = 2.0
    taps = torch.where(
        d == 0, torch.ones_like(d), a * torch.sin(math.pi * d) * torch.sin(math.pi * d / a) / (math.pi**2 * d**2)
    )
    taps = torch.where(d < a, taps, torch.zeros_like(d))
    return (taps / taps.sum()).float()


class SuperResolve(ForwardOperator):
    """``y = D(x)``: Lanczos-2 downsampling by ``factor`` after replication padding of
    ``3 * factor / 2`` pixels, so an ``(fH, fW)`` image gives exactly ``(H, W)``."""

    def __init__(self, factor: int):
        if factor not in (2, 4, 8):
            raise ValueError(f"factor must be 2, 4 or 8, got {factor!r}")
        self.scale = factor
        self.taps = lanczos2_kernel(factor)

    def to(self, device):
        self.taps = self.taps.to(device)
        return self

    def forward(self, x):
        g, c, h, w = x.shape
        f = self.scale
        pad = (4 * f - f) // 2
        flat = F.pad(x.reshape(g * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
        flat = F.conv2d(flat, self.taps.view(1, 1, -1, 1), stride=(f, 1))
        flat = F.conv2d(flat, self.taps.view(1, 1, 1, -1), stride=(1, f))
        return flat.reshape(g, c, h // f, w // f)

    def fbc_pair(self, x, y):
        return self.forward(x), y


class Enhance(ForwardOperator):
    """Fit the image itself for a short run; the result is ``x + gain * clip(x - f, 0, 1)``
    clipped to [0, 1] (docs/method.md section 7: only positive detail is boosted), or with
    ``signed=True`` the two-sided ``x + gain * (x - f)``."""

    def __init__(self, gain: float = 1.0, signed: bool = False):
        if not gain > 0:
            raise ValueError(f"gain must be > 0, got {gain!r}")
        self.gain, self.signed = float(gain), bool(signed)

    def finish(self, x, y):
        detail = y - x if self.signed else (y - x).clamp(0, 1)
        return (y + self.gain * detail).clamp(0, 1)


def for_task(
    task: str, *, mask: torch.Tensor | None = None, factor: int | None = None, gain: float = 1.0, signed: bool = False
) -> ForwardOperator:
    """The operator of a task name (``mask``: ``(G, 1 or C, H, W)`` with 1 = observed, for
    inpainting, and for denoising where saturated pixels are left out; ``factor``:
    super-resolution; ``gain`` and ``signed``: enhancement)."""
    if task == "inpaint" or (task == "denoise" and mask is not None):
        return Inpaint(mask)
    if task == "super_resolution":
        return SuperResolve(factor)
    if task == "enhance":
        return Enhance(gain, signed)
    if task == "deblock":
        return Deblock()
    if task == "denoise":
        return Denoise()
    raise ValueError(f"unknown task {task!r}")
