"""The decoder's convolution must compute exactly what torch's own convolution computes, forward
and backward, whichever path its CPU backward takes."""

import pytest
import torch
from torch import nn

from napari_dip_spectral.core import convolution
from napari_dip_spectral.core.convolution import Conv2d

EVERY_SIZE = dict(fast_min_input_values=0, fast_min_channels=0)  # small shapes, our path


def gradients(conv, x, grad_out):
    y = conv(x)
    wrt = (x, conv.weight) + (() if conv.bias is None else (conv.bias,))
    return (y, *torch.autograd.grad(y, wrt, grad_out))


@pytest.mark.parametrize(
    "batch,groups,cin,cout,kernel,mode,bias,size",
    [
        (1, 1, 6, 10, 3, "reflect", False, (9, 11)),  # the decoder's block (no bias)
        (1, 1, 6, 10, 3, "reflect", True, (2, 2)),  # the coarsest grid reflection allows
        (1, 4, 3, 5, 3, "reflect", False, (9, 11)),  # a grouped decoder (planes of a stack)
        (2, 3, 2, 4, 3, "zeros", True, (9, 11)),  # a batch is summed in the weight gradient
        (1, 2, 4, 3, 1, "zeros", True, (9, 11)),  # the 1x1 head
        (3, 1, 2, 2, 5, "circular", True, (9, 11)),
    ],
)
def test_matches_torch_convolution_forward_and_backward(batch, groups, cin, cout, kernel, mode, bias, size):
    torch.manual_seed(0)
    ours = Conv2d(
        cin * groups,
        cout * groups,
        kernel,
        padding=kernel // 2,
        padding_mode=mode,
        groups=groups,
        bias=bias,
        **EVERY_SIZE,
    ).double()
    reference = nn.Conv2d(
        cin * groups, cout * groups, kernel, padding=kernel // 2, padding_mode=mode, groups=groups, bias=bias
    ).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(batch, cin * groups, *size, dtype=torch.double, requires_grad=True)
    grad_out = torch.randn(batch, cout * groups, *size, dtype=torch.double)
    for a, b in zip(gradients(ours, x, grad_out), gradients(reference, x, grad_out)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_second_derivatives_are_refused_not_wrong():
    conv = Conv2d(2, 2, 3, padding=1, padding_mode="reflect", **EVERY_SIZE).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.double, requires_grad=True)
    (grad_x,) = torch.autograd.grad(conv(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        grad_x.sum().backward()


def test_cpu_autocast_takes_torchs_path():
    conv = Conv2d(2, 2, 3, padding=1, padding_mode="reflect", **EVERY_SIZE)
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert "ForwardKernelBackward" not in type(y.grad_fn).__name__
    y.float().sum().backward()
    assert x.grad is not None and conv.weight.grad is not None


def test_the_fast_path_is_taken_for_large_wide_inputs_and_can_be_switched_off():
    conv = Conv2d(32, 2, 3, padding=1, padding_mode="reflect")
    small = torch.randn(1, 32, 6, 6, requires_grad=True)
    assert "ForwardKernelBackward" not in type(conv(small).grad_fn).__name__
    x = torch.randn(1, 32, 64, 64, requires_grad=True)
    assert x[0].numel() >= convolution.FAST_MIN_INPUT_VALUES
    assert "ForwardKernelBackward" in type(conv(x).grad_fn).__name__
    thin = Conv2d(8, 2, 3, padding=1, padding_mode="reflect")
    assert "ForwardKernelBackward" not in type(thin(torch.randn(1, 8, 128, 128, requires_grad=True)).grad_fn).__name__
    off = Conv2d(32, 2, 3, padding=1, padding_mode="reflect", fast_cpu_backward=False)
    assert "ForwardKernelBackward" not in type(off(x).grad_fn).__name__
    convolution.set_fast_cpu_backward(nn.Sequential(conv), False)
    assert "ForwardKernelBackward" not in type(conv(x).grad_fn).__name__


def test_the_solver_config_switches_the_decoders_backward():
    from napari_dip_spectral.core.config import task_defaults
    from napari_dip_spectral.core.solver import build_network

    for flag in (True, False):
        net, _ = build_network(task_defaults("denoise").replace(fast_cpu_backward=flag), 3, 1, (64, 64), 0)
        convs = [m for m in net.modules() if isinstance(m, Conv2d)]
        assert convs and all(m.fast_cpu_backward is flag for m in convs)


def test_strided_convolutions_use_torchs_own_path():
    torch.manual_seed(0)
    conv = Conv2d(2, 3, 3, stride=2, padding=1)
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    y = conv(x)
    assert "ForwardKernelBackward" not in type(y.grad_fn).__name__
    torch.testing.assert_close(y, nn.functional.conv2d(x, conv.weight, conv.bias, stride=2, padding=1))
