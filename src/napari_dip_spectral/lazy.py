"""Dask arrays in, lazy dask arrays out: every chunk of planes is one task.

The input is rechunked so that Y, X and a jointly fitted channel axis lie in one chunk, and
the loop axes (T, Z, independent channels...) in chunks of one plane, except the innermost
loop axis, which holds ``batch_size`` planes per chunk (planes of one chunk are fitted
together as one grouped network). With ``normalize_per="stack"`` the stack's intensity
range is computed first (one reduction pass), so every chunk is normalised alike. Each task
runs :class:`~napari_dip_spectral.engine.job.RestoreJob` on its chunk, on any dask scheduler
(threads, processes, ``dask.distributed``). Only the image comes back: per-plane histories
are not collected on this path.

Dask is imported only here, when a dask array comes in.
"""

from __future__ import annotations

import numpy as np

from .engine.intensity import stabilised_ranges
from .engine.job import RestoreJob
from .engine.layout import stack_layout
from .engine.normalization import resolve_normalize
from .engine.validate import check_batch_size, check_output_dtype
from .noise.hot_pixels import resolve_noise
from .noise.noise_fit import resolve_anscombe, sample_planes


def _restore_block(
    block: np.ndarray, *masks, axes: str, ranges, channel_axis, task: str, output_dtype, block_info=None, **kwargs
) -> np.ndarray:
    """Restore one chunk (a module-level function, so worker processes can unpickle it)."""
    if ranges is not None and channel_axis is not None:
        start, stop = block_info[0]["array-location"][channel_axis]
        ranges = tuple(np.take(r, np.arange(start, stop), axis=channel_axis) for r in ranges)
    mask = masks[0] if masks else kwargs.pop("mask", None)
    job = RestoreJob(block, task, axes=axes, ranges=ranges, output_dtype=output_dtype, mask=mask, **kwargs)
    return job.restore().image


def restore_dask(
    image,
    task: str = "denoise",
    *,
    axes=None,
    mask=None,
    reference=None,
    callback=None,
    batch_size=None,
    normalize="auto",
    normalize_per="stack",
    anscombe="auto",
    output_dtype="float32",
    channel_mode="auto",
    factor=None,
    stack_prior="auto",
    **kwargs,
):
    """A lazy dask array of the restored image (same axes; Y, X times ``factor`` for
    super-resolution). ``reference`` and ``callback`` are not supported here."""
    import dask.array as da

    if reference is not None or callback is not None:
        raise ValueError(
            "reference and callback are not supported for dask arrays; "
            "compute the array first or restore chunks yourself"
        )
    check_batch_size(batch_size)
    normalize = resolve_normalize(normalize, kwargs.get("profile", "default"), image)
    layout = stack_layout(image.shape, axes, channel_mode, stack_prior, task, kwargs.get("profile", "default"))
    out_dtype = check_output_dtype(output_dtype, np.dtype(image.dtype))
    loop = layout.loop_axes
    chunks = {}
    for i, a in enumerate(layout.axes):
        if a in ("Y", "X", layout.joint):
            chunks[i] = -1
        else:
            chunks[i] = (batch_size or 1) if loop and a == loop[-1] else 1
    x = image.rechunk(chunks)
    # one noise model for every chunk: "auto" is estimated here, on a sample of planes
    yx = (layout.axes.index("Y"), layout.axes.index("X"))
    if isinstance(anscombe, str):  # estimated without hot pixels, as a job does (noise/hot_pixels.py)
        profile, hot = kwargs.get("profile", "default"), kwargs.get("hot_pixels")
        model = resolve_noise(anscombe, sample_planes(x, yx), task, profile, "ZYX", hot)[1]
    else:
        model, _ = resolve_anscombe(anscombe, None, task)
    anscombe = model if model is not None else False
    ranges = channel_axis = None
    if normalize_per == "stack":
        ranges = stabilised_ranges(x, layout, normalize, model)
        sizes = [i for i, n in enumerate(ranges[0].shape) if n > 1]
        channel_axis = sizes[0] if sizes else None
    scale = (factor or 1) if task == "super_resolution" else 1
    out_chunks = tuple(tuple(c * scale for c in cs) if a in "YX" else cs for a, cs in zip(layout.axes, x.chunks))
    args = [x]
    if mask is not None and np.shape(mask) == tuple(image.shape) and image.ndim > 2:
        args.append(da.asarray(mask).rechunk(x.chunks))
        mask = None
    options = dict(
        axes=layout.axes,
        ranges=ranges,
        channel_axis=channel_axis,
        task=task,
        output_dtype=out_dtype,
        normalize=normalize,
        normalize_per=normalize_per,
        anscombe=anscombe,
        channel_mode=channel_mode,
        factor=factor,
        stack_prior=stack_prior,
        **kwargs,
    )
    if mask is not None:
        options["mask"] = np.asarray(mask)
    return da.map_blocks(
        _restore_block,
        *args,
        dtype=out_dtype,
        chunks=out_chunks,
        meta=np.empty((0,) * image.ndim, dtype=out_dtype),
        **options,
    )
