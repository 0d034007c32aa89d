"""A 3-D Wiener pass over a denoised stack.

A stack's signal is correlated from plane to plane and its noise is not. After the fit (and
the share of non-local means, nonlocal_share.py) the result serves as a pilot estimate: the
data's local 3-D cosine spectrum (4 x 4 x 4 blocks at every position) is shrunk coefficient
by coefficient by ``pilot**2 / (pilot**2 + sigma**2)``, the empirical Wiener filter, and
the overlapping blocks are averaged with weights that favour the blocks shrunk most. This is
the second stage of BM3D/BM4D without their block matching; with the decoder's result as the
pilot it raised every fluorescence stack case measured (8 to 31 planes, 5 to 100 photons;
docs/beyond_the_paper.md section 11), where the same pass in 2-D helped nuclei and hurt the
cell images, so planes alone do not get it.

It works in the units the fit saw (stabilised, for photon counts) with the noise sigma of
those units. ``stack_wiener=False`` keeps the result without it; the result records whether
it ran.
"""

from __future__ import annotations

import itertools

import numpy as np

BLOCK = 4  # block side in Y, X and Z: 8 in Y and X lost 0.1 dB, 8 in Z gained nothing


def resolve_stack_wiener(value, task: str, profile: str, whole_stack: bool) -> bool:
    """Whether to run the pass: ``None`` runs it when denoising with the default profile and
    each unit is a whole Z (or T) stack; ``True`` asks for it (ValueError where it cannot run);
    ``False`` never."""
    if value is None:
        return task == "denoise" and profile == "default" and whole_stack
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"stack_wiener must be True, False or None, got {value!r}")
    if value and task != "denoise":
        raise ValueError(f"stack_wiener is only used by task 'denoise', not {task!r}")
    if value and not whole_stack:
        raise ValueError(
            "stack_wiener needs a Z or T stack fitted as a whole (axes with Z or T, and "
            "stack_prior 'auto', 'volume' or 'joint')"
        )
    return bool(value)


def check_flag(value) -> bool:
    """``value`` as a preset's ``stack_wiener`` (a bool); ValueError otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError("True or False")
    return bool(value)


def wiener_pass(data: np.ndarray, pilot: np.ndarray, sigma: float, block: int = BLOCK) -> np.ndarray:
    """The empirical Wiener estimate of ``data`` (Z, Y, X; noise ``sigma``) guided by
    ``pilot`` (same shape): every ``block``-sided cube (fewer planes where the stack is
    thinner), shrunk in the cosine domain and averaged over all positions."""
    from scipy.fft import dctn, idctn

    sides = tuple(min(block, n) for n in data.shape)
    pads = [(s, s) for s in sides]
    noisy = np.pad(data.astype(np.float64), pads, mode="reflect" if min(data.shape) > 1 else "edge")
    guide = np.pad(pilot.astype(np.float64), pads, mode="reflect" if min(data.shape) > 1 else "edge")
    total = np.zeros_like(noisy)
    weights = np.zeros_like(noisy)
    axes = (1, 3, 5)
    for start in itertools.product(*(range(s) for s in sides)):
        # the cubes of one grid: cut, reshape to (nz, bz, ny, by, nx, bx), transform per cube
        region = tuple(slice(o, o + (n - o) // s * s) for o, n, s in zip(start, noisy.shape, sides))
        shape = noisy[region].shape
        split = (shape[0] // sides[0], sides[0], shape[1] // sides[1], sides[1], shape[2] // sides[2], sides[2])
        spectrum = dctn(noisy[region].reshape(split), axes=axes, norm="ortho")
        power = dctn(guide[region].reshape(split), axes=axes, norm="ortho") ** 2
        shrink = power / np.maximum(power + sigma**2, 1e-30)  # 0, not NaN, where both vanish
        estimate = idctn(shrink * spectrum, axes=axes, norm="ortho")
        # a cube shrunk hard has little noise left: weigh it by 1 / sum of squared gains
        weight = 1.0 / np.maximum((shrink**2).sum(axis=axes, keepdims=True), 1e-12)
        total[region] += (estimate * weight).reshape(shape)
        weights[region] += np.broadcast_to(weight, split).reshape(shape)
    inner = tuple(slice(s, s + n) for s, n in zip(sides, data.shape))
    return (total[inner] / weights[inner]).astype(np.float32)


def apply_stack_wiener(out: np.ndarray, data: np.ndarray, sigmas: list[float | None]) -> None:
    """In place: each unit of ``out`` (units, Z or T, H, W) whose noise sigma is given becomes
    the Wiener estimate of ``data`` with ``out`` as the pilot; a unit with ``None`` keeps its
    values."""
    for u, sigma in enumerate(sigmas):
        if sigma is not None:
            out[u] = wiener_pass(data[u], out[u], sigma)


def describe_stack_wiener(applied: bool) -> str:
    """For a status line after the noise model and share."""
    return "; 3-D Wiener pass over the stack" if applied else ""
