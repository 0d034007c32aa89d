"""A share of non-local means in a denoising result.

The decoder's early-stopped result and non-local means of the same data err in different
places: the decoder smooths fine edges that it has not learned yet, while non-local means
keeps them but leaves patch noise in flat regions. Averaging the two, 70 / 30 (in the
variance-stabilised domain for photon counts, before the inverse transform) raised PSNR on
nearly all fluorescence and cell cases at 5, 20 and 100 photons and on every grey photo
measured with Gaussian noise (docs/beyond_the_paper.md section 10), at almost no cost next
to the fit. With a photon-noise model the noise sigma is the transform's (1 in stabilised units, so
``1 / (high - low)`` once a plane is normalised), otherwise the given or estimated one.

``nlm_share=0`` keeps the decoder's result alone; the result records the share used.
"""

from __future__ import annotations

import numpy as np

NLM_SHARE = 0.3  # the default profile's share for denoising
NLM_H = 0.8  # filter strength in noise sigmas (scikit-image's guide for fast mode: 0.6-0.8)
PATCH, DISTANCE = 5, 6


def check_share(value) -> float:
    """``value`` as a share (a number in [0, 1), also as it comes from a preset's JSON);
    ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not 0 <= value < 1:
        raise ValueError("a number in [0, 1)")
    return float(value)


def resolve_share(share, task: str, profile: str) -> float:
    """The share to use: ``None`` picks ``NLM_SHARE`` for denoising with the default profile
    and 0 elsewhere (the paper profile is the authors' method alone); an explicit value must
    be in [0, 1) (0 keeps the decoder's result alone)."""
    if share is None:
        return NLM_SHARE if task == "denoise" and profile == "default" else 0.0
    try:
        share = check_share(share)
    except ValueError as error:
        raise ValueError(f"nlm_share must be {error}, got {share!r}") from None
    if share > 0 and task != "denoise":
        raise ValueError(f"nlm_share is only used by task 'denoise', not {task!r}")
    return share


def plane_sigmas(unit: np.ndarray, normalizations, constant, photon_model, noise_sigma) -> list[float | None]:
    """Each plane's noise sigma in its [0, 1] units (None for a constant plane): with a
    photon-noise model the transform's 1 over the plane's stabilised range, or else the given
    ``noise_sigma`` or the estimate the noise-level stop uses (core/noise.py) of the plane
    (``unit``: planes, channels, H, W)."""
    import torch

    from ..core.noise import estimate_noise_sigma

    sigmas: list[float | None] = []
    for p, norm in enumerate(normalizations):
        if norm is None or constant[p]:
            sigmas.append(None)
        elif photon_model is not None:
            sigmas.append(1.0 / (norm.high - norm.low))
        elif noise_sigma is not None:
            sigmas.append(noise_sigma)
        else:
            sigmas.append(float(estimate_noise_sigma(torch.from_numpy(np.ascontiguousarray(unit[p : p + 1])))[0]))
    return sigmas


def mix_nonlocal(out: np.ndarray, data: np.ndarray, sigmas: list[float | None], share: float) -> None:
    """In place: ``out[p] = (1 - share) out[p] + share NLM(data[p])`` for each plane ``p``
    whose noise sigma (in the units of ``data``) is given; a plane with ``None`` (constant,
    or not finished) keeps its values. ``out`` and ``data``: ``(planes, channels, H, W)``."""
    from skimage.restoration import denoise_nl_means

    if share <= 0:
        return
    for p, sigma in enumerate(sigmas):
        if sigma is None:
            continue
        for c in range(data.shape[1]):
            smooth = denoise_nl_means(
                data[p, c].astype(np.float64),
                h=NLM_H * sigma,
                sigma=sigma,
                fast_mode=True,
                patch_size=PATCH,
                patch_distance=DISTANCE,
            )
            out[p, c] = (1 - share) * out[p, c] + share * smooth.astype(np.float32)


def describe_share(share: float) -> str:
    """For a status line after the noise model: what was averaged in, if anything."""
    return f"; {share:.0%} non-local means averaged in" if share > 0 else ""
