"""The decoder of docs/method.md section 2 and its fixed random-phase ("fourier") input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import POWER_BLOCK, POWER_EXACT_FIRST, UPSAMPLERS
from .layers import GaussianUpsample, MeanOnlyNorm, lipschitz_conv

# Per-level sigma of the Gaussian upsampler, coarsest level first (docs/method.md section 4).
PAPER_GAUSSIAN_SIGMAS = (0.1, 0.1, 0.1, 0.5, 0.5)


@dataclass(frozen=True)
class DecoderSpec:
    """Shape of the decoder. ``levels`` up-levels of x2 each: the input is at
    ``1 / 2**levels`` of the output resolution, so output sides must be multiples of
    ``2**levels`` (the solver pads and crops; see :func:`padded_size`)."""

    out_channels: int = 3
    channels: int = 128
    levels: int = 5
    input_channels: int = 32
    upsample: str = "gaussian"
    gaussian_sigmas: tuple[float, ...] = PAPER_GAUSSIAN_SIGMAS
    gaussian_gain: float = 1.0
    lipschitz: float | None = 1.8
    sigma_estimator: str = "power"
    negative_slope: float = 0.01
    groups: int = 1
    power_block: int = POWER_BLOCK
    power_exact_first: int = POWER_EXACT_FIRST
    fast_cpu_backward: bool = True  # core/convolution.py's CPU weight gradient

    def conv_options(self) -> dict:
        """The keyword arguments of :func:`.layers.lipschitz_conv` that come from the spec."""
        return dict(
            lipschitz=self.lipschitz,
            sigma_estimator=self.sigma_estimator,
            block=self.power_block,
            exact_first=self.power_exact_first,
            fast_cpu_backward=self.fast_cpu_backward,
        )

    def __post_init__(self):
        if self.upsample not in UPSAMPLERS:
            raise ValueError(f"upsample must be one of {UPSAMPLERS}, got {self.upsample!r}")
        if self.upsample == "gaussian" and len(self.gaussian_sigmas) != self.levels:
            raise ValueError("gaussian_sigmas needs one sigma per level")
        if self.channels < 1 or self.levels < 1 or self.out_channels < 1 or self.groups < 1:
            raise ValueError("channels, levels, out_channels and groups must be >= 1")
        if not self.negative_slope >= 0:  # (the in-place LeakyReLU needs it, too)
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope!r}")

    @property
    def multiple(self) -> int:
        return 2**self.levels


def padded_size(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``size`` and >= 2 * multiple (the input
    grid needs at least 2 pixels per side for reflection padding)."""
    return max(2 * multiple, math.ceil(size / multiple) * multiple)


class Decoder(nn.Module):
    """Stem of two conv blocks, ``levels`` x [upsample, two conv blocks], 1x1 head, sigmoid.

    A conv block is [3x3 reflection-padded conv (no bias), mean-only norm, LeakyReLU]. Every
    3x3 conv carries the Lipschitz bound; the head and the deconv layers do not (as in the
    paper's code). With ``groups = G`` the module is G independent decoders computed as one
    grouped network: input ``(1, G * input_channels, h, w)``, output
    ``(1, G * out_channels, H, W)``.
    """

    def __init__(self, spec: DecoderSpec):
        super().__init__()
        self.spec = spec
        g, c = spec.groups, spec.channels

        def block(cin: int, cout: int) -> list[nn.Module]:
            conv = lipschitz_conv(cin, cout, 3, groups=g, **spec.conv_options())
            # the norm subtracts each channel's mean, so a conv bias before it cancels out
            # exactly (its gradient is rounding noise); dropped after initialisation, which
            # keeps the random stream and so the initial network as it was
            conv.register_parameter("bias", None)
            return [conv, MeanOnlyNorm(cout * g), nn.LeakyReLU(spec.negative_slope, inplace=True)]

        layers: list[nn.Module] = [*block(spec.input_channels, c), *block(c, c)]
        for level in range(spec.levels):
            if spec.upsample == "deconv":
                deconv = nn.ConvTranspose2d(c * g, c * g, 4, stride=2, padding=1, groups=g)
                nn.init.kaiming_uniform_(deconv.weight, a=0, mode="fan_in")
                # docs/method.md section 2: deconv followed by a single conv, no norm or activation.
                layers += [
                    deconv,
                    lipschitz_conv(c, c, 3, groups=g, **spec.conv_options()),
                ]
                continue
            if spec.upsample == "gaussian":
                layers.append(GaussianUpsample(c * g, spec.gaussian_sigmas[level], spec.gaussian_gain))
            else:
                layers.append(nn.Upsample(scale_factor=2, mode=spec.upsample))
            layers += [*block(c, c), *block(c, c)]
        self.body = nn.Sequential(*layers)
        self.head = lipschitz_conv(
            c, spec.out_channels, 1, groups=g, lipschitz=None, fast_cpu_backward=spec.fast_cpu_backward
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))

    def set_output_level(self, level: torch.Tensor) -> None:
        """Start the sigmoid head at a given output level (shape ``(G * out_channels,)``,
        values in (0, 1)) by setting the head bias to its logit, so the first Adam steps do
        not have to travel from 0.5 to the data's level. Guards against the collapse of dark
        images into sigmoid saturation (docs/beyond_the_paper.md)."""
        with torch.no_grad():
            level = level.clamp(0.02, 0.98)
            self.head.bias.copy_(torch.log(level / (1 - level)))


def fourier_input(
    spec: DecoderSpec, height: int, width: int, generator: torch.Generator | None = None, depth: int | None = None
) -> torch.Tensor:
    """Random-phase input: ``u ~ U[0, 1)`` of shape ``(G * input_channels / 2, h, w)`` at
    ``1 / 2**levels`` resolution; the input is ``[sin(2 pi u), cos(2 pi u)]`` per group.
    With ``depth`` (the volume decoder), one such input per plane: ``(..., depth, h, w)``."""
    h, w = height // spec.multiple, width // spec.multiple
    half = spec.input_channels // 2
    planes = () if depth is None else (depth,)
    u = torch.rand(spec.groups, half, *planes, h, w, generator=generator)
    z = torch.cat([torch.sin(2 * math.pi * u), torch.cos(2 * math.pi * u)], dim=1)
    return z.reshape(1, spec.groups * spec.input_channels, *planes, h, w)
