"""The decoder's convolution: ``nn.Conv2d`` whose weight gradient, on the CPU, is computed
by a forward convolution.

On the CPU, torch's convolution backward (oneDNN) is slow for the weight gradient; the same
sums are obtained faster as a forward convolution of the input with the output gradient,
channels and batch swapped (docs/speed.md, "CPU kernels"; ``benchmarks/cpu_kernels.py``). The
input gradient stays torch's own kernel, and a one-pixel reflection pad's gradient is folded back
in place instead of going through torch's zero-fill-and-scatter backward. Same sums in other
kernels: results agree to rounding.

Only plain convolutions take this path: CPU tensors, stride 1, dilation 1, any groups, any
padding mode, inputs of at least ``FAST_MIN_INPUT_VALUES`` values and
``FAST_MIN_CHANNELS`` channels per group. Everything else (CUDA,
where cuDNN's backward is the fast one; strided or dilated kernels; small layers) runs through
``torch.nn.functional.conv2d`` unchanged. ``Conv2d(..., fast_cpu_backward=False)`` (from
``SolverConfig.fast_cpu_backward``) runs torch's own backward, to measure or rule out the
difference; :func:`set_fast_cpu_backward` switches a built network.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Where the path pays (one layer, forward+backward, `benchmarks/cpu_kernels.py --sections
# layers`, docs/speed.md "CPU kernels"): with 32 channels and more from 32-64 px up. Below
# these sizes a Python-level autograd function costs more than it saves, and with few
# channels the weight-gradient product is too thin to gain.
FAST_MIN_INPUT_VALUES = 100_000
FAST_MIN_CHANNELS = 32  # input channels per group


class _ForwardKernelBackward(torch.autograd.Function):
    """``conv2d(x, w, b, groups=g)`` with stride 1 and dilation 1, after an optional one-pixel
    reflection pad; the weight gradient is a forward convolution."""

    @staticmethod
    def forward(ctx, x, w, b, groups, reflect):
        if reflect:  # 3x3 kernel: reflection padding by one pixel
            x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        ctx.save_for_backward(x, w)
        ctx.groups, ctx.reflect = groups, reflect
        ctx.has_bias = b is not None
        return F.conv2d(x, w, b, groups=groups)

    @staticmethod
    @torch.autograd.function.once_differentiable  # the pad inside forward hides x from a
    def backward(ctx, grad):  # second derivative: refuse, never zeros
        x, w = ctx.saved_tensors
        g = ctx.groups
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # torch's own backward-data kernel: faster than conv_transpose2d here
            grad_x = torch.nn.grad.conv2d_input(x.shape, w, grad, groups=g)
            if ctx.reflect:
                grad_x = _fold_reflection(grad_x)
        if ctx.needs_input_grad[1]:
            n, cin_all, hp, wp = x.shape
            cin = cin_all // g
            # grad_w[g*cout + o, i] = sum_n corr(x[n, g*cin + i], grad[n, g*cout + o]):
            # a grouped forward convolution with the input channels as the batch, the batch
            # as the channels, and the output gradient as the kernel
            xs = x.reshape(n, g, cin, hp, wp).permute(2, 1, 0, 3, 4).reshape(cin, g * n, hp, wp)
            ks = grad.transpose(0, 1)  # (g * cout, n, h, w)
            grad_w = F.conv2d(xs, ks, groups=g).transpose(0, 1).reshape(w.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


def _fold_reflection(grad_padded: torch.Tensor) -> torch.Tensor:
    """The gradient of a one-pixel reflection pad: the padded border rows and columns are
    reflections of rows / columns 1 and -2, so their gradients add there. One copy of the
    interior and four strip additions, where torch's reflection_pad2d_backward zero-fills
    and scatters."""
    grad = grad_padded[..., 1:-1, 1:-1].clone()
    for border, target in ((0, 1), (-1, -2)):
        row = grad_padded[..., border, :]
        grad[..., target, :] += row[..., 1:-1]
        grad[..., target, 1] += row[..., 0]
        grad[..., target, -2] += row[..., -1]
        grad[..., :, target] += grad_padded[..., 1:-1, border]
    return grad


def _cpu_autocast() -> bool:
    """Whether CPU autocast is on (its casts happen outside this function's forward, so the
    saved tensors and the incoming gradient would disagree in dtype)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same arguments, same parameters, same results) with the faster CPU
    backward described in the module docstring. ``fast_cpu_backward=False`` keeps torch's own;
    ``fast_min_input_values`` and ``fast_min_channels`` are the size gates (tests and the
    kernel benchmark lower them to reach the path with small shapes)."""

    def __init__(
        self,
        *args,
        fast_cpu_backward: bool = True,
        fast_min_input_values: int = FAST_MIN_INPUT_VALUES,
        fast_min_channels: int = FAST_MIN_CHANNELS,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fast_cpu_backward = bool(fast_cpu_backward)
        self.fast_min_input_values = int(fast_min_input_values)
        self.fast_min_channels = int(fast_min_channels)

    def _conv_forward(self, input, weight, bias):
        plain = self.stride == (1, 1) and self.dilation == (1, 1) and isinstance(self.padding, tuple)
        if not (
            self.fast_cpu_backward
            and plain
            and input.device.type == "cpu"
            and torch.is_grad_enabled()
            and input.dim() == 4
            and not _cpu_autocast()
            and input[0].numel() >= self.fast_min_input_values
            and self.in_channels // self.groups >= self.fast_min_channels
        ):
            return super()._conv_forward(input, weight, bias)
        if self.padding_mode == "reflect" and self.padding == (1, 1):
            return _ForwardKernelBackward.apply(input, weight, bias, self.groups, True)
        if any(self.padding):  # (a zero-width reflection pad would still copy)
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=mode)
        return _ForwardKernelBackward.apply(input, weight, bias, self.groups, False)


def set_fast_cpu_backward(module: nn.Module, enabled: bool) -> None:
    """Switch the CPU backward of every :class:`Conv2d` inside ``module`` (a built network), for
    comparisons of the same weights with either backward."""
    for m in module.modules():
        if isinstance(m, Conv2d):
            m.fast_cpu_backward = bool(enabled)
