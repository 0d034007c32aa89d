import pytest
import torch

from napari_dip_spectral.core.network import Decoder, DecoderSpec, fourier_input, padded_size


def trainable(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_parameter_count_of_the_papers_decoder():
    """method.md 2.1: 1,662,339 trainable parameters (RGB), 1,662,081 (grey)."""
    assert trainable(Decoder(DecoderSpec(out_channels=3, upsample="bilinear"))) == 1_662_339
    assert trainable(Decoder(DecoderSpec(out_channels=1, upsample="bilinear"))) == 1_662_081
    # the Gaussian upsampler adds only fixed buffers
    assert trainable(Decoder(DecoderSpec(out_channels=3, upsample="gaussian"))) == 1_662_339


@pytest.mark.parametrize("upsample", ["gaussian", "bilinear", "nearest", "deconv"])
def test_output_shape_and_range(upsample):
    spec = DecoderSpec(out_channels=3, channels=8, levels=3, upsample=upsample,
                       gaussian_sigmas=(0.1, 0.5, 0.5), groups=2)
    z = fourier_input(spec, 32, 48)
    assert z.shape == (1, 2 * 32, 4, 6)
    assert torch.allclose(z[:, :16] ** 2 + z[:, 16:32] ** 2, torch.ones(1, 16, 4, 6), atol=1e-6)
    out = Decoder(spec)(z)
    assert out.shape == (1, 6, 32, 48)
    assert out.min() >= 0 and out.max() <= 1


def test_padded_size():
    assert padded_size(100, 32) == 128
    assert padded_size(128, 32) == 128
    assert padded_size(20, 32) == 64      # at least 2 input pixels per side


def test_groups_are_independent_networks():
    spec = DecoderSpec(out_channels=1, channels=8, levels=2, upsample="bilinear", groups=2)
    net = Decoder(spec)
    z = fourier_input(spec, 16, 16)
    net(z)[:, 0].sum().backward()          # a loss on the first network only
    conv = net.body[0]
    grad = conv.parametrizations.weight.original.grad
    assert grad[:8].abs().sum() > 0
    assert grad[8:].abs().sum() == 0


def test_bad_spec():
    with pytest.raises(ValueError, match="upsample"):
        DecoderSpec(upsample="bicubic")
