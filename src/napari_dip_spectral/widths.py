"""The decoder width of a grey or colour Gaussian-noise denoising fit on a CPU.

The solver's default is 128 channels. Since the Wiener pass and the grouped estimate follow
every denoising fit (wiener_pass.py), a 64-channel decoder gives nearly the same image on
grey and colour photos in about half the time on a CPU (docs/speed.md, "Width on a CPU, with the passes
after the fit"), so a CPU run uses 64 there unless the caller chose a width. Photon-noise
fits (noise_fit.py ``photon_options``) and volumes (layout.py) already use 64 on any device;
images of more than three jointly fitted channels and the other tasks keep 128 (not
measured at 64 with the passes); a GPU keeps 128, where the width costs little time.
"""

from __future__ import annotations

from .core.config import SolverConfig

CPU_DENOISE_CHANNELS = 64


def cpu_width(config: SolverConfig, chosen, task: str, profile: str, noise_model, plane_channels: int) -> SolverConfig:
    """``config`` with ``CPU_DENOISE_CHANNELS`` where the run is the default profile's
    denoising of grey or colour planes (at most three jointly fitted channels) without a
    noise model (Gaussian noise), the width was not ``chosen`` and the device resolves to the
    CPU; else ``config`` unchanged."""
    if chosen is not None or task != "denoise" or profile != "default" or noise_model is not None:
        return config
    if plane_channels > 3:
        return config
    from .core.devices import resolve_device

    try:
        device = resolve_device(config.device)
    except (RuntimeError, ValueError):  # an unusable device is reported when the run starts
        return config
    if device.type != "cpu":
        return config
    return config.replace(channels=CPU_DENOISE_CHANNELS)
