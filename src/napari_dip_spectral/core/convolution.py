"""The decoder's convolution: ``nn.Conv2d`` whose backward pass, on the CPU, runs on oneDNN's
forward kernels.

On the CPU, torch's convolution backward (oneDNN, fp32, NCHW) computed the weight gradient
about 2x slower than the same numbers obtained as a forward convolution of the input with the
output gradient, channels and batch swapped (docs/speed.md, "CPU convolution backward"). The
input gradient is the transposed convolution of the output gradient with the weight. Both are
the same sums as torch's own backward, in a different kernel; the results agree to rounding.

Only plain convolutions take this path: CPU tensors, stride 1, dilation 1, any groups, any
padding mode (non-zero padding is applied before the convolution, as ``nn.Conv2d`` does).
Everything else (CUDA, where cuDNN's backward is the fast one; strided or dilated kernels)
runs through ``torch.nn.functional.conv2d`` unchanged. Set ``FAST_CPU_BACKWARD = False`` to
measure or rule out the difference.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FAST_CPU_BACKWARD = True


class _ForwardKernelBackward(torch.autograd.Function):
    """``conv2d(x, w, b, groups=g)`` with stride 1, dilation 1, no padding; its gradients
    are computed with forward-direction convolutions."""

    @staticmethod
    def forward(ctx, x, w, b, groups):
        ctx.save_for_backward(x, w)
        ctx.groups = groups
        ctx.has_bias = b is not None
        return F.conv2d(x, w, b, groups=groups)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        g = ctx.groups
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv_transpose2d(grad, w, groups=g)
        if ctx.needs_input_grad[1]:
            n, cin_all, hp, wp = x.shape
            cin, cout = cin_all // g, w.shape[0] // g
            # grad_w[g*cout + o, i] = sum_n corr(x[n, g*cin + i], grad[n, g*cout + o]):
            # a grouped forward convolution with the input channels as the batch, the batch
            # as the channels, and the output gradient as the kernel
            xs = x.reshape(n, g, cin, hp, wp).permute(2, 1, 0, 3, 4).reshape(cin, g * n, hp, wp)
            ks = grad.transpose(0, 1)                          # (g * cout, n, h, w)
            grad_w = F.conv2d(xs, ks, groups=g).transpose(0, 1).reshape(w.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same arguments, same parameters, same results) with the faster CPU
    backward described in the module docstring."""

    def _conv_forward(self, input, weight, bias):
        plain = (self.stride == (1, 1) and self.dilation == (1, 1)
                 and isinstance(self.padding, tuple))
        if not (FAST_CPU_BACKWARD and plain and input.device.type == "cpu"
                and torch.is_grad_enabled() and input.dim() == 4):
            return super()._conv_forward(input, weight, bias)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        elif any(self.padding):
            input = F.pad(input, self._reversed_padding_repeated_twice)
        return _ForwardKernelBackward.apply(input, weight, bias, self.groups)
