import numpy as np
import pytest
import torch

from napari_dip_spectral.core.spectral import fbc_bands, to_grey


def test_identical_images_match_in_every_band():
    x = torch.rand(2, 3, 40, 48)
    assert torch.allclose(fbc_bands(x, x), torch.ones(2, 5))


def test_a_low_pass_output_matches_only_the_bands_it_keeps():
    torch.manual_seed(0)
    ref = torch.rand(1, 1, 64, 64)
    spectrum = torch.fft.fftshift(torch.fft.fft2(ref[0, 0]))
    yy, xx = torch.meshgrid(torch.arange(64) - 32, torch.arange(64) - 32, indexing="ij")
    keep = (yy**2 + xx**2).sqrt() <= 32 * 0.4  # bands 1 and 2 of 5
    low = torch.fft.ifft2(torch.fft.ifftshift(spectrum * keep)).real
    bands = fbc_bands(low.view(1, 1, 64, 64), ref)[0]
    assert torch.allclose(bands[:2], torch.ones(2), atol=1e-4)
    assert torch.allclose(bands[2:], torch.zeros(3), atol=1e-4)


def test_band_count_is_configurable_and_halving_the_output_halves_each_band():
    ref = torch.rand(1, 1, 32, 32) + 0.1
    bands = fbc_bands(0.5 * ref, ref, n_bands=8)
    assert bands.shape == (1, 8)
    assert torch.allclose(bands, torch.full((1, 8), 0.5), atol=1e-4)
    with pytest.raises(ValueError, match="n_bands"):
        fbc_bands(ref, ref, n_bands=0)


def test_grey_conversion_uses_luma_weights():
    x = torch.zeros(3, 2, 2)
    x[1] = 1.0
    assert torch.allclose(to_grey(x), torch.full((2, 2), 0.5870))


@pytest.mark.parametrize(
    "name,clean_vs_noisy,blurred_vs_noisy",
    [
        ("image_F16_512rgb.png", [0.9326, 0.8110, 0.6252, 0.4195, 0.2666], [0.8780, 0.5794, 0.2363, 0.0617, 0.0229]),
        ("image_House256rgb.png", [0.9221, 0.7363, 0.5335, 0.3782, 0.2628], [0.8724, 0.5416, 0.2352, 0.1009, 0.0647]),
    ],
)
def test_reference_values_of_the_specification(shared_data, name, clean_vs_noisy, blurred_vs_noisy):
    """method.md section 1, [MEASURED] table: noise from RandomState(0), blur sigma 1."""
    from scipy.ndimage import gaussian_filter
    from skimage import io

    x = io.imread(shared_data / "denoising" / name)[..., :3].astype(np.float32) / 255
    y = np.clip(x + np.random.RandomState(0).normal(0, 25 / 255, x.shape), 0, 1).astype(np.float32)
    blurred = np.stack([gaussian_filter(x[..., c], 1) for c in range(3)], -1)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]

    assert np.allclose(fbc_bands(t(x), t(y))[0].numpy(), clean_vs_noisy, atol=2e-4)
    assert np.allclose(fbc_bands(t(blurred), t(y))[0].numpy(), blurred_vs_noisy, atol=2e-4)
