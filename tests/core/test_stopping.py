import numpy as np
import pytest
import torch

from napari_dip_spectral.core.stopping import (
    WindowedStopRule,
    contrast_free_ratio,
    mlv_sharpness,
    perceptual_blur,
    plane_contrast,
    stop_ratio,
)


def feed(rule, series, every=1):
    for t, value in enumerate(series, start=1):
        if t % every:
            continue
        rule.record(t, torch.tensor([value]))
        fired = rule.check(t)
        if fired is not None and bool(fired[0]):
            return t
    return None


def test_a_flat_series_stops_at_the_earliest_possible_iteration():
    assert feed(WindowedStopRule(100, 0.01), [3.0] * 500) == 201


def test_a_falling_series_stops_when_the_window_means_differ_by_less_than_epsilon():
    # ratio(t) = 10 * exp(-t / 300): the window means differ by about 100 * |ratio'(t)|
    series = [10 * np.exp(-t / 300) for t in range(1, 5001)]
    t_stop = feed(WindowedStopRule(100, 0.01), series)
    m1 = np.mean(series[t_stop - 201 : t_stop - 101])  # iterations t-200 .. t-101
    m2 = np.mean(series[t_stop - 100 : t_stop - 1])  # iterations t-99 .. t-1 (99 values)
    assert abs(m1 - m2) < 0.01
    t = t_stop - 1
    m1_prev = np.mean(series[t - 201 : t - 101])
    m2_prev = np.mean(series[t - 100 : t - 1])
    assert abs(m1_prev - m2_prev) >= 0.01
    assert 1000 < t_stop < 2000


def test_the_current_iteration_is_not_in_the_second_window():
    # a jump exactly at the checked iteration must not delay the stop
    series = [3.0] * 300
    series[200] = 100.0  # iteration 201
    assert feed(WindowedStopRule(100, 0.01), series) == 201


def test_sparse_checks_keep_the_decision_close():
    series = [10 * np.exp(-t / 300) for t in range(1, 5001)]
    every_1 = feed(WindowedStopRule(100, 0.01), series)
    every_10 = feed(WindowedStopRule(100, 0.01, every=10), series, every=10)
    # the sparse rule can only fire on a multiple of 10, and sees means of 10 samples
    assert every_10 % 10 == 0
    assert abs(every_10 - every_1) <= 2 * 10


def test_independent_series_stop_independently():
    rule = WindowedStopRule(10, 0.01)
    fired = None
    for t in range(1, 40):
        rule.record(t, torch.tensor([1.0, 5.0 - 0.1 * t]))
        fired = rule.check(t)
    assert fired.tolist() == [True, False]


def test_bad_rule_arguments():
    with pytest.raises(ValueError):
        WindowedStopRule(0, 0.01)
    with pytest.raises(ValueError):
        WindowedStopRule(10, 0.0)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()


def test_ratio_magnitudes_of_the_specification(shared_data):
    """method.md section 5 [MEASURED]: clean 2.4-2.9, sigma=25 noise 1.16-1.22, blur 7-9.3."""
    from scipy.ndimage import gaussian_filter
    from skimage import io

    x = io.imread(shared_data / "denoising" / "image_F16_512rgb.png")[..., :3].astype(np.float32) / 255
    noisy = np.clip(x + np.random.RandomState(0).normal(0, 25 / 255, x.shape), 0, 1)
    blurred = np.stack([gaussian_filter(x[..., c], 1) for c in range(3)], -1)
    assert 2.4 <= stop_ratio(_t(x)).item() <= 2.9
    assert 1.1 <= stop_ratio(_t(noisy)).item() <= 1.25
    assert 7.0 <= stop_ratio(_t(blurred)).item() <= 9.3
    assert 0.29 <= perceptual_blur(_t(x)).item() <= 0.33


def test_blur_rises_and_sharpness_falls_when_an_image_is_blurred():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    img = gaussian_filter(rng.random((64, 64)), 1.0)[..., None]
    soft = gaussian_filter(img[..., 0], 2.0)[..., None]
    assert perceptual_blur(_t(soft)) > perceptual_blur(_t(img))
    assert mlv_sharpness(_t(soft)) < mlv_sharpness(_t(img))
    batch = torch.cat([_t(img), _t(soft)])
    assert stop_ratio(batch).shape == (2,)


def test_a_flat_output_is_never_a_stop():
    from napari_dip_spectral.core.stopping import WindowedStopRule, stop_ratio

    flat = torch.full((2, 1, 32, 32), 0.4)
    flat[1] = torch.rand(1, 32, 32)  # plane 1 has structure, plane 0 is flat
    ratio = stop_ratio(flat)
    assert ratio[0].item() == 0 and ratio[1].item() > 0
    rule = WindowedStopRule(window=10, epsilon=0.01)
    for t in range(1, 31):
        rule.record(t, ratio)
    fired = rule.check(30)
    assert fired.tolist() == [False, True]


def test_fbc_of_a_tiny_image_has_no_nan():
    from napari_dip_spectral.core.spectral import fbc_bands

    x = torch.rand(1, 1, 3, 3)
    bands = fbc_bands(x, torch.rand(1, 1, 3, 3), n_bands=5)
    assert torch.isfinite(bands).all()


@pytest.mark.parametrize("contrast", [1.0, 1 / 16, 1 / 256])
def test_the_rule_sees_the_same_ratio_at_any_contrast(contrast):
    """A 12-bit image in a 16-bit container (contrast 1/16 under dtype normalisation) gives
    the rule the same values, so one epsilon means the same at every contrast."""
    torch.manual_seed(0)
    observation = torch.rand(2, 1, 48, 48)
    result = torch.nn.functional.avg_pool2d(observation, 3, 1, 1)
    full = contrast_free_ratio(result, plane_contrast(observation))
    scaled = contrast_free_ratio(0.3 + contrast * result, plane_contrast(0.3 + contrast * observation))
    torch.testing.assert_close(scaled, full, rtol=1e-3, atol=1e-5)
    raw = stop_ratio(0.3 + contrast * result)
    if contrast < 1:  # without the compensation the ratio grows as 1 / contrast
        assert (raw > 10 * full).all()
