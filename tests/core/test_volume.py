"""The 3-D volume decoder (core/volume.py): shapes, the Lipschitz bound on 3-D kernels, and
planes that see their neighbours."""

from __future__ import annotations

import pytest
import torch

from napari_dip_spectral.core.layers import LipschitzBound
from napari_dip_spectral.core.network import DecoderSpec, fourier_input
from napari_dip_spectral.core.volume import VolumeDecoder


def _spec(depth, groups=1, lipschitz=1.2):
    return DecoderSpec(
        out_channels=depth,
        channels=8,
        levels=2,
        upsample="bilinear",
        lipschitz=lipschitz,
        sigma_estimator="exact",
        groups=groups,
    )


@pytest.mark.parametrize("depth, groups", [(1, 1), (5, 1), (3, 2)])
def test_output_is_planes_as_channels(depth, groups):
    torch.manual_seed(0)
    spec = _spec(depth, groups)
    net = VolumeDecoder(spec, depth)
    z = fourier_input(spec, 16, 20, depth=depth)
    out = net(z).detach()
    assert out.shape == (1, groups * depth, 16, 20)
    assert float(out.min()) > 0 and float(out.max()) < 1
    net.set_output_level(torch.full((groups * depth,), 0.2))
    assert torch.allclose(torch.sigmoid(net.head.bias), torch.full((groups,), 0.2))


def test_every_3d_kernel_obeys_the_bound():
    torch.manual_seed(1)
    net = VolumeDecoder(_spec(4, lipschitz=0.9), 4)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size == (3, 3, 3)]
    assert len(convs) == 2 + 2 * 2
    for conv in convs:
        assert isinstance(conv.parametrizations.weight[0], LipschitzBound)
        w = conv.weight.detach()
        sigma = torch.linalg.svdvals(w.reshape(w.shape[0], -1))[0]
        assert float(sigma) <= 0.9 * (1 + 1e-4)


def test_a_plane_sees_its_neighbours():
    """Changing the input of plane 0 changes the output of plane 1: the 3-D convolutions mix
    neighbouring planes (a per-plane decoder would leave plane 1 unchanged)."""
    torch.manual_seed(2)
    spec = _spec(4)
    net = VolumeDecoder(spec, 4).eval()
    z = fourier_input(spec, 16, 16, depth=4)
    moved = z.clone()
    moved[:, :, 0] += 1.0
    with torch.no_grad():
        a, b = net(z), net(moved)
    assert (a[0, 1] - b[0, 1]).abs().max() > 1e-4
    assert (a[0, 3] - b[0, 3]).abs().max() > 0  # and, through depth, further planes


def test_rejects_an_upsampler_it_cannot_do():
    with pytest.raises(ValueError, match="upsamples with"):
        VolumeDecoder(DecoderSpec(out_channels=2, channels=4, levels=1, upsample="deconv"), 2)
