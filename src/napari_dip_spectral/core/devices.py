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
