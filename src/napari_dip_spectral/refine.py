"""What follows a denoising fit: the share of non-local means (nonlocal_share.py), then the
3-D Wiener pass over stacks (stack_wiener.py), in the units the fit saw and before the
result goes back to the input's range. A cancelled run's last iterate gets neither: it is
returned as it was when the run stopped."""

from __future__ import annotations

from .nonlocal_share import mix_nonlocal, plane_sigmas
from .stack_wiener import apply_stack_wiener


def refine(job, state) -> None:
    """In place on ``state.out`` (a :class:`~napari_dip_spectral.result.PlanState` of
    ``job``, a :class:`~napari_dip_spectral.job.RestoreJob`), recording in ``state`` what
    was applied."""
    if state.cancelled or not (job.nlm_share or job.stack_wiener):
        return
    sigmas = plane_sigmas(job.unit, job.normalizations, job.constant, job.model, job.config.noise_sigma)
    mix_nonlocal(state.out, job.unit, sigmas, job.nlm_share)
    state.nlm_share = job.nlm_share
    if job.stack_wiener:
        apply_stack_wiener(state.out, job.unit, sigmas)
        state.stack_wiener = True
