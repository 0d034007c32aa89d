import pytest
import torch

from napari_dip_spectral.core.operators import Denoise, Enhance, Inpaint, SuperResolve, lanczos2_kernel


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_lanczos_taps_are_normalised_symmetric_and_4f_long(factor):
    taps = lanczos2_kernel(factor)
    assert taps.shape == (4 * factor,)
    assert torch.isclose(taps.sum(), torch.tensor(1.0))
    assert torch.allclose(taps, taps.flip(0))
    assert taps.argmax() in (2 * factor - 1, 2 * factor)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_downsampling_keeps_constants_and_gives_the_low_resolution_shape(factor):
    op = SuperResolve(factor)
    x = torch.full((2, 3, 16 * factor, 8 * factor), 0.3)
    y = op.forward(x)
    assert y.shape == (2, 3, 16, 8)
    assert torch.allclose(y, torch.full_like(y, 0.3), atol=1e-6)
    assert op.output_shape((16, 8)) == (16 * factor, 8 * factor)


def test_downsampling_removes_frequencies_above_the_new_nyquist():
    x = torch.zeros(1, 1, 64, 64)
    x[..., ::2] = 1.0  # the highest horizontal frequency
    y = SuperResolve(4).forward(x)
    assert y[..., 2:-2].std() < 1e-3  # away from the replicated borders


def test_bad_factor_is_refused():
    with pytest.raises(ValueError, match="factor"):
        SuperResolve(3)


def test_inpainting_loss_ignores_missing_pixels():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    op = Inpaint(mask)
    y = torch.rand(1, 1, 8, 8) * mask
    x = y.clone()
    x[..., 4:] = 5.0  # anything in the missing half
    assert op.loss_per_group(x, y).item() == pytest.approx(0.0)
    x[..., 0, 0] += 1.0
    assert op.loss_per_group(x, y).item() == pytest.approx(1 / 64)


def test_fbc_pairs():
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 4, 4)
    out, ref = SuperResolve(4).fbc_pair(x, y)
    assert out.shape == ref.shape
    assert Denoise().fbc_pair(x, x)[0] is x


def test_enhancement_boosts_only_positive_detail_by_default():
    y = torch.tensor([[[[0.5, 0.5]]]])
    smooth = torch.tensor([[[[0.4, 0.6]]]])
    assert torch.allclose(Enhance().finish(smooth, y), torch.tensor([[[[0.6, 0.5]]]]))
    assert torch.allclose(Enhance(gain=2, signed=True).finish(smooth, y), torch.tensor([[[[0.7, 0.3]]]]))
    with pytest.raises(ValueError, match="gain"):
        Enhance(gain=0)


def test_operator_for_each_task_name():
    from napari_dip_spectral.core.operators import Deblock, for_task

    assert isinstance(for_task("denoise"), Denoise)
    assert isinstance(for_task("deblock"), Deblock)
    assert for_task("super_resolution", factor=4).scale == 4
    assert for_task("enhance", gain=2.0).gain == 2.0
    assert isinstance(for_task("inpaint", mask=torch.ones(1, 1, 4, 4)), Inpaint)
    with pytest.raises(ValueError, match="task"):
        for_task("sharpen")


def test_the_data_level_of_an_inpainting_observation_ignores_the_missing_pixels():
    y = torch.full((1, 3, 8, 8), 0.6)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., ::2, :] = 1
    observed = y * mask
    assert torch.allclose(Inpaint(mask).data_level(observed), torch.full((3,), 0.6))
    assert torch.allclose(Denoise().data_level(observed), torch.full((3,), 0.3))
