"""What follows a denoising fit: the share of non-local means (refinement/nonlocal_share.py), then the
Wiener pass guided by the result (refinement/wiener_pass.py), in the units the fit saw (colour planes
in an opponent colour space, refinement/opponent.py) and before the result goes back to the input's
range. A cancelled run's last iterate gets neither: it is
returned as it was when the run stopped."""

from __future__ import annotations

from ..noise.hot_pixels import describe_hot_pixels
from ..noise.likelihood import describe_likelihood
from ..noise.noise_fit import describe_noise
from ..noise.saturation import describe_saturated
from .nonlocal_share import describe_share, mix_nonlocal, plane_sigmas
from .opponent import from_opponent, to_opponent
from .wiener_pass import THRESHOLD_SHARE, apply_wiener, describe_wiener, plane_rounds


def refine(job, state, threshold: float = THRESHOLD_SHARE, boost: bool = True) -> None:
    """In place on ``state.out`` (a :class:`~napari_dip_spectral.engine.result.PlanState` of
    ``job``, a :class:`~napari_dip_spectral.engine.job.RestoreJob`), recording in ``state`` what
    was applied. ``threshold`` and ``boost`` are the Wiener pass's (wiener_pass.apply_wiener);
    the job runs the defaults, and benchmarks/after_fit.py replays kept fits with others."""
    if state.cancelled or not (job.nlm_share or job.wiener):
        return
    sigmas = plane_sigmas(job.unit, job.normalizations, job.constant, job.model, job.config.noise_sigma)
    colour = job.layout.colour  # the same noise sigma in the opponent channels (refinement/opponent.py)
    out, data = (to_opponent(state.out), to_opponent(job.unit)) if colour else (state.out, job.unit)
    mix_nonlocal(out, data, sigmas, job.nlm_share)
    state.nlm_share = job.nlm_share
    if job.wiener:
        rounds = plane_rounds(job.model is not None)
        apply_wiener(out, data, sigmas, job.layout.whole_stack, rounds, colour=colour, threshold=threshold, boost=boost)
        state.wiener = True
    if colour:
        state.out[...] = from_opponent(out)


def describe_refinement(result) -> str:
    """What followed the fit of ``result`` (a :class:`~napari_dip_spectral.engine.result.RestoreResult`),
    for a status line after its noise model: the share, the Wiener pass (3-D where the Z or T
    planes were one unit), or nothing."""
    return describe_share(result.nlm_share) + describe_wiener(result.wiener, result.joint_channels in ("Z", "T"))


def describe_denoising(result) -> str:
    """One status fragment for a denoising ``result``: its noise model, the hot pixels
    replaced and the saturated pixels kept out of the fit, and what followed the fit; the CLI
    and the widgets show the same."""
    noise = describe_noise(result.anscombe, result.noise_estimate) + describe_likelihood(result.likelihood)
    pixels = describe_hot_pixels(result.hot_pixels) + describe_saturated(result.saturated)
    return noise + pixels + describe_refinement(result)
