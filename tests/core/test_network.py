import pytest
import torch

from napari_dip_spectral.core.network import Decoder, DecoderSpec, fourier_input, padded_size


def trainable(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# the paper's count includes a bias in each of the 12 blocks' 3x3 convs; the mean-only norm
# right after each removes it exactly, so our decoder leaves it out (same function)
CANCELLED_BIASES = 12 * 128


def test_parameter_count_of_the_papers_decoder():
    """method.md 2.1: 1,662,339 trainable parameters (RGB), 1,662,081 (grey)."""
    rgb = Decoder(DecoderSpec(out_channels=3, upsample="bilinear"))
    assert trainable(rgb) + CANCELLED_BIASES == 1_662_339
    assert sum(conv.bias is None for conv in rgb.body if isinstance(conv, torch.nn.Conv2d)) == 12
    grey = Decoder(DecoderSpec(out_channels=1, upsample="bilinear"))
    assert trainable(grey) + CANCELLED_BIASES == 1_662_081
    # the Gaussian upsampler adds only fixed buffers
    gaussian = Decoder(DecoderSpec(out_channels=3, upsample="gaussian"))
    assert trainable(gaussian) + CANCELLED_BIASES == 1_662_339


def test_a_conv_bias_before_the_mean_only_norm_has_no_effect():
    from napari_dip_spectral.core.layers import MeanOnlyNorm

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1).double()
    norm = MeanOnlyNorm(6).double()
    x = torch.randn(2, 4, 9, 7, dtype=torch.double)
    with_bias = norm(conv(x))
    with torch.no_grad():
        conv.bias.copy_(torch.randn(6, dtype=torch.double) * 10)
    torch.testing.assert_close(norm(conv(x)), with_bias)
    norm(conv(x)).pow(3).sum().backward()
    assert conv.bias.grad.abs().max() < 1e-9 * conv.weight.grad.abs().max()


def test_mean_only_norm_has_the_gradient_of_its_expression():
    from napari_dip_spectral.core.layers import _MeanOnlyNormFunction

    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, dtype=torch.double, requires_grad=True)
    bias = torch.tensor([0.5, -1.0, 2.0], dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_MeanOnlyNormFunction.apply, (x, bias))
    expr = x - x.mean(dim=(2, 3), keepdim=True) + bias.view(1, -1, 1, 1)
    torch.testing.assert_close(_MeanOnlyNormFunction.apply(x, bias), expr)


@pytest.mark.parametrize("upsample", ["gaussian", "bilinear", "nearest", "deconv"])
def test_output_shape_and_range(upsample):
    spec = DecoderSpec(
        out_channels=3, channels=8, levels=3, upsample=upsample, gaussian_sigmas=(0.1, 0.5, 0.5), groups=2
    )
    z = fourier_input(spec, 32, 48)
    assert z.shape == (1, 2 * 32, 4, 6)
    assert torch.allclose(z[:, :16] ** 2 + z[:, 16:32] ** 2, torch.ones(1, 16, 4, 6), atol=1e-6)
    out = Decoder(spec)(z)
    assert out.shape == (1, 6, 32, 48)
    assert out.min() >= 0 and out.max() <= 1


def test_padded_size():
    assert padded_size(100, 32) == 128
    assert padded_size(128, 32) == 128
    assert padded_size(20, 32) == 64  # at least 2 input pixels per side


def test_groups_are_independent_networks():
    spec = DecoderSpec(out_channels=1, channels=8, levels=2, upsample="bilinear", groups=2)
    net = Decoder(spec)
    z = fourier_input(spec, 16, 16)
    net(z)[:, 0].sum().backward()  # a loss on the first network only
    conv = net.body[0]
    grad = conv.parametrizations.weight.original.grad
    assert grad[:8].abs().sum() > 0
    assert grad[8:].abs().sum() == 0


def test_bad_spec():
    with pytest.raises(ValueError, match="upsample"):
        DecoderSpec(upsample="bicubic")
