"""Stop by held-out pixels: a stop rule that measures, on the image itself, when the fit
starts to fit noise.

A random fraction of the observed pixels is left out of the data term. Their noise is
independent of the pixels the network is fitted to, so the error of the result on them is
``||result - clean||^2 + sigma^2`` on those pixels, in expectation: it falls while the
network learns the image and rises once it fits the noise of the pixels it sees (its
prediction at a held-out pixel is made from its neighbours). The rule keeps the result
where that error was lowest and stops a plane once it has not improved for ``patience``
iterations (core/stopping.py ``LowestErrorRule``). Unlike a fixed fraction of the noise
variance, this adapts to the signal-to-noise ratio and to the image's size
(docs/beyond_the_paper.md section 8). Iteration to iteration, the noise on the held-out
pixels is the same, so differences of the error between iterations are measured much more
precisely than the error itself.
"""

from __future__ import annotations

import torch

from .operators import ForwardOperator


class HeldOutPixels(ForwardOperator):
    """Wraps a pixel-wise operator (denoising, deblocking): its data term uses the kept
    pixels only; :meth:`heldout_error` is the mean data term (the squared error, or a
    likelihood's deviance) on the others."""

    def __init__(self, base: ForwardOperator, observation_shape: tuple[int, ...], fraction: float, seed: int = 0):
        if base.scale != 1:
            raise ValueError("held-out pixels need an operator whose observation is the image")
        if not 0 < fraction < 0.5:
            raise ValueError(f"holdout fraction must be in (0, 0.5), got {fraction!r}")
        g, c, h, w = observation_shape
        generator = torch.Generator().manual_seed(10_007 + seed)
        held = torch.rand((g, 1, h, w), generator=generator) < fraction
        self.base = base
        self.keep = (~held).float()
        self.held = held.float()
        # values each mean runs over, per plane (every channel of a pixel is kept or held)
        self.keep_count = (self.keep.flatten(1).sum(1) * c).clamp(min=1)
        self.held_count = (self.held.flatten(1).sum(1) * c).clamp(min=1)

    def to(self, device):
        self.base = self.base.to(device)
        self.keep, self.held = self.keep.to(device), self.held.to(device)
        self.keep_count, self.held_count = self.keep_count.to(device), self.held_count.to(device)
        return self

    def forward(self, x):
        return self.base.forward(x)

    def _mean(self, x, y, weight, count):
        return (self.base.pixel_loss(x, y) * weight).flatten(1).sum(1) / count

    def loss_per_group(self, x, y):
        return self._mean(x, y, self.keep, self.keep_count)

    def heldout_error(self, x, y) -> torch.Tensor:
        """Per plane ``(G,)``: the mean data term on the held-out pixels."""
        return self._mean(x, y, self.held, self.held_count)

    def fbc_pair(self, x, y):
        return self.base.fbc_pair(x, y)

    def data_level(self, y):
        return self.base.data_level(y)

    def as_image(self, x):
        return self.base.as_image(x)

    def finish(self, x, y):
        return self.base.finish(x, y)
