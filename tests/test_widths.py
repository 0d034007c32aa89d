"""The decoder width a run gets when the caller chooses none (engine/widths.py)."""

from types import SimpleNamespace

import numpy as np
import torch

from napari_dip_spectral import restore
from napari_dip_spectral.core.config import task_defaults
from napari_dip_spectral.engine.widths import (
    CPU_DENOISE_CHANNELS,
    LOW_SIGNAL_CHANNELS,
    PHOTON_CHANNELS,
    VOLUME_CHANNELS,
    default_channels,
)


def _noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]] / max(shape)
    clean = 0.5 + 0.3 * np.sin(6 * x) * np.cos(4 * y)
    if len(shape) == 3:
        clean = np.repeat(clean[..., None], shape[2], axis=-1)
    return (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def test_grey_and_colour_gaussian_denoising_on_the_cpu_uses_the_narrower_decoder():
    grey = _noisy((40, 40))
    result = restore(grey, iterations=2, device="cpu")
    assert result.config.channels == CPU_DENOISE_CHANNELS < task_defaults("denoise").channels
    assert restore(grey, iterations=2, device="cpu", channels=96).config.channels == 96  # chosen: kept
    assert restore(_noisy((40, 40, 3)), iterations=2, device="cpu").config.channels == CPU_DENOISE_CHANNELS


def test_other_runs_keep_the_solver_width():
    grey = _noisy((40, 40))
    wide = task_defaults("denoise").channels
    assert restore(grey, iterations=2, device="cpu", profile="paper").config.channels == wide
    five = np.stack([_noisy((40, 40), seed) for seed in range(5)])  # five channels fitted jointly
    assert restore(five, iterations=2, device="cpu", axes="CYX", channel_mode="joint").config.channels == wide
    mask = np.ones(grey.shape, dtype=bool)
    mask[::3] = False
    assert restore(grey, "inpaint", mask=mask, iterations=2, device="cpu").config.channels == wide
    assert restore(grey, "super_resolution", factor=2, iterations=2, device="cpu").config.channels == wide


def test_grey_deblocking_on_the_cpu_uses_the_narrower_decoder(monkeypatch):
    import napari_dip_spectral.core.devices as devices

    wide = task_defaults("deblock").channels
    assert restore(_noisy((40, 40)), "deblock", iterations=2, device="cpu").config.channels == CPU_DENOISE_CHANNELS
    # colour deblocking was not measured at 64 channels: it keeps the solver's width
    assert restore(_noisy((40, 40, 3)), "deblock", iterations=2, device="cpu").config.channels == wide
    grey = SimpleNamespace(volume=False, channels=1)
    assert default_channels("deblock", "paper", None, grey, "cpu") is None
    monkeypatch.setattr(devices, "resolve_device", lambda name: torch.device("cuda"))
    assert default_channels("deblock", "default", None, grey, "auto") is None


def test_a_gpu_keeps_the_solver_width(monkeypatch):
    import napari_dip_spectral.core.devices as devices

    grey = SimpleNamespace(volume=False, channels=1)  # one plane, one channel
    monkeypatch.setattr(devices, "resolve_device", lambda name: torch.device("cuda"))
    assert default_channels("denoise", "default", None, grey, "auto") is None  # the solver's 128
    monkeypatch.setattr(devices, "resolve_device", lambda name: torch.device("cpu"))
    assert default_channels("denoise", "default", None, grey, "auto") == CPU_DENOISE_CHANNELS
    # a device that cannot be used is left for the run to report, with the width unchanged

    def unusable(name):
        raise ValueError("device 'cuda' is not available here")

    monkeypatch.setattr(devices, "resolve_device", unusable)
    assert default_channels("denoise", "default", None, grey, "cuda") is None


def test_volumes_and_photon_noise_use_64_on_any_device(monkeypatch):
    import napari_dip_spectral.core.devices as devices

    monkeypatch.setattr(devices, "resolve_device", lambda name: torch.device("cuda"))
    volume = SimpleNamespace(volume=True, channels=1)
    assert default_channels("denoise", "paper", None, volume, "auto") == VOLUME_CHANNELS
    grey = SimpleNamespace(volume=False, channels=1)
    assert default_channels("denoise", "default", object(), grey, "auto") == PHOTON_CHANNELS


def _counts(peak, shape=(40, 40), seed=0):
    y, x = np.mgrid[: shape[0], : shape[1]] / max(shape)
    clean = 0.2 + 0.8 * (np.sin(6 * x) * np.cos(4 * y)) ** 2
    return np.random.default_rng(seed).poisson(peak * clean).astype(np.uint16)


def test_photon_noise_on_the_cpu_narrows_the_decoder_only_where_the_signal_is_weak(monkeypatch):
    import napari_dip_spectral.core.devices as devices

    weak, strong = _counts(10), _counts(400)  # stabilised ranges of about 5 and 30
    assert restore(weak, anscombe=True, iterations=2, device="cpu").config.channels == LOW_SIGNAL_CHANNELS
    assert restore(strong, anscombe=True, iterations=2, device="cpu").config.channels == PHOTON_CHANNELS
    # a width the caller chose is kept, even when it equals the photon-noise default
    assert restore(weak, anscombe=True, iterations=2, device="cpu", channels=64).config.channels == 64
    # so does a stack whose planes are the joint channels of one decoder; five fluorescence
    # channels fitted jointly (not measured at 32) keep 64
    stack = np.stack([_counts(10, seed=s) for s in range(4)])
    assert restore(stack, axes="ZYX", anscombe=True, iterations=2, device="cpu").config.channels == LOW_SIGNAL_CHANNELS
    five = np.stack([_counts(10, seed=s) for s in range(5)])
    joint = restore(five, axes="CYX", channel_mode="joint", anscombe=True, iterations=2, device="cpu")
    assert joint.config.channels == PHOTON_CHANNELS
    # a GPU keeps 64 (width costs it little time); the job resolves the device by name
    monkeypatch.setattr(devices, "resolve_device", lambda name: torch.device("cuda"))
    from napari_dip_spectral.engine.job import RestoreJob

    assert RestoreJob(weak, anscombe=True, iterations=2).config.channels == PHOTON_CHANNELS
