"""The decoder width a run gets when the caller chooses none.

The solver's default is 128 channels. These runs use fewer:

* a Z (or T) stack fitted as one volume: the 3-D decoder's Adam steps diverged at 128
  channels (learning rate 1e-3);
* photon-noise (Anscombe-transformed) denoising with the default profile: on the
  fluorescence benchmark 64 channels were as good as 128 at a fraction of the time
  (docs/beyond_the_paper.md section 8); on a CPU, planes and stacks whose stabilised
  range is under ``LOW_SIGNAL_SPAN`` (a few tens of photo-electrons at the brightest pixel:
  the noise is a twelfth of the range or more) use 32;
* Gaussian-noise denoising of grey or colour planes (at most three jointly fitted channels)
  on a CPU with the default profile: with the Wiener pass and the grouped estimate after
  the fit (refinement/wiener_pass.py), 64 channels gave nearly the same image in much less time
  (docs/speed.md, "Width on a CPU, with the passes after the fit"). A GPU keeps 128, where
  the width costs little time; more jointly fitted channels keep 128 (not measured at 64).

Grey JPEG deblocking on a CPU uses 64 as well: on three photos it cost little PSNR and saved
time (docs/speed.md, "Deblocking at 64 channels"; colour deblocking was not measured and keeps
128). The other tasks keep 128 on a CPU: inpainting and super-resolution lost PSNR at 64
channels, inpainting clearly (docs/speed.md, "The other tasks at 64 channels").
"""

from __future__ import annotations

VOLUME_CHANNELS = PHOTON_CHANNELS = CPU_DENOISE_CHANNELS = 64
LOW_SIGNAL_CHANNELS = 32
# the stabilised range (noise sigma 1) below which a 32-channel decoder recovered as much
# (docs/speed.md, "Fewer channels where the noise is strong")
LOW_SIGNAL_SPAN = 12.0


def default_channels(task: str, profile: str, noise_model, layout, device, spans=()) -> int | None:
    """The width for a run whose caller chose none, or None for the solver's default;
    ``layout`` is the job's :class:`~napari_dip_spectral.engine.layout.Layout`, ``device`` the
    device asked for (None = ``"auto"``) and ``spans`` the normalised planes' ranges (in
    stabilised units with a photon-noise model; empty: not known, no narrowing)."""
    if layout.volume:
        return VOLUME_CHANNELS
    if profile != "default":
        return None
    if noise_model is not None:
        return LOW_SIGNAL_CHANNELS if _weak_signal(layout, spans) and _on_cpu(device) else PHOTON_CHANNELS
    narrow = (task == "denoise" and layout.channels <= 3) or (task == "deblock" and layout.channels == 1)
    return CPU_DENOISE_CHANNELS if narrow and _on_cpu(device) else None


def with_default_width(config, task: str, profile: str, noise_model, layout, normalizations):
    """``config`` with the width :func:`default_channels` gives for the data and the device the
    config asks for (unchanged where it gives none); ``normalizations`` are the job's."""
    spans = [n.high - n.low for n in normalizations if n is not None]
    width = default_channels(task, profile, noise_model, layout, config.device, spans)
    return config if width is None else config.replace(channels=width)


def _weak_signal(layout, spans) -> bool:
    """Whether every plane's stabilised range (noise sigma 1) is under ``LOW_SIGNAL_SPAN``,
    where a 32-channel decoder recovered as much as 64 in less time, on planes and on Z stacks
    whose planes are the joint channels of one decoder (docs/speed.md, "Fewer channels where
    the noise is strong"). More than three jointly fitted channels of another kind were not
    measured and keep their width."""
    if layout.channels > 3 and not layout.whole_stack:
        return False
    return len(spans) > 0 and max(spans) < LOW_SIGNAL_SPAN


def _on_cpu(device) -> bool:
    """Whether ``device`` resolves to the CPU; False for a device that cannot be used (the
    run reports it when it starts)."""
    from ..core.devices import resolve_device

    try:
        return resolve_device("auto" if device is None else device).type == "cpu"
    except (RuntimeError, ValueError):
        return False
