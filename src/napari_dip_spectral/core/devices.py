"""Device choice: ``"auto"`` = CUDA, then Apple MPS, then CPU; or an explicit device."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """Names accepted by :func:`resolve_device` on this machine (``"auto"`` first)."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names[1:1] = ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.insert(1, "mps")
    return names


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """A usable ``torch.device``; ``ValueError`` naming what is available otherwise."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in available_devices():
        raise ValueError(f"device {device!r} is not available here; available: {', '.join(available_devices())}")
    return torch.device(name)


def describe_device(device: str = "auto") -> str:
    """What ``device`` resolves to, in words, with the reason when ``"auto"`` falls back to
    the CPU (shown before a run so that nobody waits an hour for a GPU that is not used)."""
    try:
        resolved = resolve_device(device)
    except ValueError as error:
        return str(error)
    if resolved.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(resolved)}"
    if resolved.type == "mps":
        return "GPU: Apple silicon (MPS)"
    if str(device).strip().lower() != "auto":
        return "CPU"
    if torch.version.cuda is None and not torch.backends.mps.is_built():
        why = f"this PyTorch ({torch.__version__}) is a CPU-only build"
    else:
        why = "PyTorch finds no usable GPU"
    return f"CPU ({why})"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CPU with AVX-512 BF16 or AMX. GPUs
    answer False until bf16 is measured on one (docs/speed.md, "bfloat16")."""
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


# "auto" precision: bf16 only for a decoder at least this wide over at least this many output
# pixels (voxels for a volume). Below, bf16 gained no time on the CPU and moved results more
# than it does on larger fits (docs/speed.md, "bfloat16").
BF16_MIN_CHANNELS = 64
BF16_MIN_PIXELS = 128 * 128


def resolve_precision(
    precision: str, device: torch.device, channels: int = BF16_MIN_CHANNELS, pixels: int = BF16_MIN_PIXELS
) -> str:
    """``"auto"`` as ``"bf16"`` where the device computes in bf16 natively and the fit is
    large enough to gain from it (``channels`` of the decoder, ``pixels`` of one output),
    else ``"fp32"``; any other value as given."""
    if precision != "auto":
        return precision
    large = channels >= BF16_MIN_CHANNELS and pixels >= BF16_MIN_PIXELS
    return "bf16" if large and native_bf16(device) else "fp32"
