"""A decoder over a whole (Z, Y, X) volume, for stacks whose planes share their signal.

The 2-D decoder (network.py) restores each plane of a Z stack on its own, so it cannot use
the fact that neighbouring planes show nearly the same structure while their noise is
independent. This decoder has the same shape (stem of two blocks, ``levels`` x [x2
upsampling, two blocks], 1 x 1 head, sigmoid), but every 3 x 3 convolution is a
3 x 3 x 3 one that also mixes each plane with its neighbours, and upsampling doubles Y and X
only (Z keeps the stack's own sampling). Every 3-D convolution carries the same Lipschitz
bound as in 2-D (the largest singular value of the ``out x (in * 27)`` weight matrix, the
parametrization of layers.py), so the spectral control carries over.

The output ``(1, G, Z, H, W)`` is returned as ``(1, G * Z, H, W)``: to the solver, a volume
is one plane whose channels are the Z planes, fitted jointly.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import MeanOnlyNorm, bounded
from .network import DecoderSpec

VOLUME_UPSAMPLERS = ("bilinear", "nearest")


def _conv3d(cin: int, cout: int, kernel: int, depth: int, spec: DecoderSpec, lipschitz: float | None) -> nn.Conv3d:
    g = spec.groups
    # reflection needs at least two planes; a single plane is padded by repetition
    mode = "reflect" if depth > 1 else "replicate"
    conv = nn.Conv3d(cin * g, cout * g, kernel, padding=kernel // 2, padding_mode=mode, groups=g, bias=kernel == 1)
    return bounded(conv, g, lipschitz, spec.sigma_estimator, block=spec.power_block, exact_first=spec.power_exact_first)


class VolumeDecoder(nn.Module):
    """``G`` independent volume decoders as one grouped network; ``depth`` planes each."""

    def __init__(self, spec: DecoderSpec, depth: int):
        super().__init__()
        if spec.upsample not in VOLUME_UPSAMPLERS:
            raise ValueError(f"the volume decoder upsamples with {VOLUME_UPSAMPLERS}, not {spec.upsample!r}")
        if spec.out_channels != depth:
            raise ValueError("the volume decoder's output channels are its planes")
        self.spec, self.depth = spec, depth
        c, g = spec.channels, spec.groups

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                _conv3d(cin, cout, 3, depth, spec, spec.lipschitz),
                MeanOnlyNorm(cout * g),
                nn.LeakyReLU(spec.negative_slope, inplace=True),
            ]

        layers: list[nn.Module] = [*block(spec.input_channels, c), *block(c, c)]
        for _ in range(spec.levels):
            layers += [
                nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear" if spec.upsample == "bilinear" else "nearest"),
                *block(c, c),
                *block(c, c),
            ]
        self.body = nn.Sequential(*layers)
        self.head = _conv3d(c, 1, 1, depth, spec, None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.sigmoid(self.head(self.body(z)))  # (1, G, Z, H, W)
        return out.reshape(1, self.spec.groups * self.depth, *out.shape[-2:])

    def set_output_level(self, level: torch.Tensor) -> None:
        """Start the head at each volume's mean level (``level``: per plane, ``(G * Z,)``)."""
        with torch.no_grad():
            mean = level.view(self.spec.groups, self.depth).mean(1).clamp(0.02, 0.98)
            self.head.bias.copy_(torch.log(mean / (1 - mean)))
