"""Which data term a fit uses, and the operator that carries it.

``likelihood="gaussian"``: the squared error in the units the decoder fits (for photon
counts, the variance-stabilised ones). ``"poisson"``: for photon counts with a noise model,
the decoder fits the intensity and the data term is the Poisson deviance of the counts
(core/photon_counts.py); everything after the fit is unchanged. ``None`` chooses:
see :func:`resolve_likelihood`.
"""

from __future__ import annotations

import numpy as np

LIKELIHOODS = ("gaussian", "poisson")
HEADROOM = 1.2  # the output's top over the 99.9th percentile of the observed intensity
_TOP_PERCENTILE = 99.9


def resolve_likelihood(likelihood, task: str, profile: str, model) -> str:
    """The data term: ``None`` picks ``"gaussian"``; an explicit ``"poisson"`` needs denoising
    with a photon noise model (``anscombe``)."""
    if likelihood is None:
        return "gaussian"
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if likelihood == "poisson" and (task != "denoise" or model is None):
        raise ValueError(
            "likelihood='poisson' needs task 'denoise' with a photon noise model "
            "(anscombe='auto' finding one, True, or its parameters)"
        )
    return likelihood


def describe_likelihood(likelihood: str) -> str:
    """A status-line fragment: the Poisson data term, or nothing for the squared error."""
    return "; Poisson likelihood" if likelihood == "poisson" else ""


def read_variance(model) -> float:
    """The read-noise variance in photo-electrons squared."""
    return float((model.read_noise / model.gain) ** 2)


def photon_scale(unit_plane: np.ndarray, norm, model, mask: np.ndarray | None = None) -> float:
    """The largest intensity (photo-electrons) a plane's output can reach: ``HEADROOM`` times
    the 99.9th percentile of its observed intensity, so that a few bright noisy pixels do not
    set it."""
    d = norm.low + unit_plane.astype(np.float64) * (norm.high - norm.low)
    intensity = np.maximum(d * d / 4 - 3 / 8, 0) - read_variance(model)
    if mask is not None:
        intensity = intensity[np.broadcast_to(mask, intensity.shape) > 0]
    top = float(np.percentile(intensity, _TOP_PERCENTILE)) if intensity.size else 0.0
    return HEADROOM * max(top, 1.0)


def photon_scales(job) -> list[float | None] | None:
    """Each plane's :func:`photon_scale` where ``job`` fits the Poisson likelihood (None
    for a constant plane), else None."""
    if job.likelihood != "poisson":
        return None
    masks = job.masks if job.masks is not None else [None] * len(job.normalizations)
    return [
        None if norm is None else photon_scale(job.unit[p], norm, job.model, masks[p])
        for p, norm in enumerate(job.normalizations)
    ]


def fit_operator(job, masks: np.ndarray | None, planes):
    """The operator of one batch of ``job`` (a :class:`~napari_dip_spectral.engine.job.RestoreJob`):
    ``masks`` its units' masks (or None), ``planes`` the plane of each unit."""
    import torch

    from ..core.operators import for_task

    mask = None if masks is None else torch.from_numpy(np.ascontiguousarray(masks))
    if job.likelihood != "poisson":
        return for_task(job.task, mask=mask, factor=job.factor, gain=job.gain, signed=job.signed)
    from ..core.photon_counts import PhotonCounts

    norms = [job.normalizations[p] for p in planes]
    scales = [job.photon_scales[p] for p in planes]
    s2 = [read_variance(job.model)] * len(planes)
    return PhotonCounts([n.low for n in norms], [n.high for n in norms], s2, scales, mask)
