"""Public API: ``restore()`` a 2-D image, a stack or a dask array.

Arrays in, :class:`~napari_dip_spectral.engine.result.RestoreResult` out. Intensities of any range
are normalised to [0, 1] before fitting and mapped back afterwards; the caller's arrays are
never modified. Torch is imported only when a job runs. Callers that want the events drive
:class:`~napari_dip_spectral.engine.job.RestoreJob` themselves (``RestorationJob`` and ``StackJob``
are its earlier names). Nothing inside the package imports this module: it is the front door.
"""

from __future__ import annotations

from collections.abc import Callable

from .engine.job import RestoreJob
from .engine.result import RestoreResult

RestorationJob = StackJob = RestoreJob

__all__ = ["RestorationJob", "RestoreJob", "RestoreResult", "StackJob", "restore"]


def restore(
    image,
    task: str = "denoise",
    mask=None,
    factor=None,
    iterations=None,
    lipschitz=None,
    upsample=None,
    channels=None,
    sigma_estimator=None,
    auto_stop: bool | None = None,
    seed: int = 0,
    device: str = "auto",
    reference=None,
    callback: Callable | None = None,
    *,
    profile: str = "default",
    normalize: str = "auto",
    gain: float = 1.0,
    signed: bool = False,
    axes: str | None = None,
    batch_size: int | None = None,
    normalize_per: str = "stack",
    tile_size: int | None = None,
    anscombe="auto",
    output_dtype="float32",
    channel_mode: str = "auto",
    stack_prior: str = "auto",
    **options,
) -> RestoreResult:
    """Restore a 2-D grey ``(Y, X)`` or colour ``(Y, X, 3)`` image, or every plane of an nD
    image (``axes`` such as ``"ZYX"``, ``"TCYX"``, ``"YXS"``).

    See docs/api.md for every parameter and docs/stacks.md for ``axes``, ``batch_size``,
    ``normalize_per``, ``tile_size``, ``anscombe``, ``output_dtype``, ``channel_mode`` and
    ``stack_prior``.
    ``callback(event)`` is called after each iteration with a
    :class:`~napari_dip_spectral.engine.events.RunEvent`; returning ``False`` cancels
    (``stop_reason == "cancelled"``). A dask array comes back as a lazy dask array of the
    restored image.
    """
    options = dict(
        mask=mask,
        factor=factor,
        reference=reference,
        profile=profile,
        normalize=normalize,
        gain=gain,
        signed=signed,
        axes=axes,
        batch_size=batch_size,
        normalize_per=normalize_per,
        tile_size=tile_size,
        anscombe=anscombe,
        output_dtype=output_dtype,
        channel_mode=channel_mode,
        stack_prior=stack_prior,
        iterations=iterations,
        lipschitz=lipschitz,
        upsample=upsample,
        channels=channels,
        sigma_estimator=sigma_estimator,
        auto_stop=auto_stop,
        seed=seed,
        device=device,
        **options,
    )
    if type(image).__module__.split(".")[0] == "dask":
        from .lazy import restore_dask

        return restore_dask(image, task, callback=callback, **options)
    return RestoreJob(image, task, **options).restore(callback)
