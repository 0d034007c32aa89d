"""Intensity ranges of a whole stack (numpy or dask), before and after the noise model's
variance-stabilising transform; per-plane normalisation itself is in engine/normalization.py."""

from __future__ import annotations

import numpy as np

from .layout import Layout
from .normalization import METHODS, Normalization, fit_normalization

NORMALIZE_PER = ("stack", "plane")


def stack_ranges(data, layout: Layout, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-stack intensity range of ``data`` (numpy or dask), one per independent channel:
    arrays broadcastable to ``data`` (size 1 on every other axis). Dask reductions are
    computed here (one pass over the data)."""
    if method not in METHODS:
        raise ValueError(f"normalize must be one of {METHODS}, got {method!r}")
    independent = next((a for a in "CS" if a in layout.axes and a != layout.joint), None)
    keep = layout.axes.index(independent) if independent else None
    reduce = tuple(i for i in range(len(layout.axes)) if i != keep)
    lazy = not isinstance(data, np.ndarray)
    lo, hi = data.min(axis=reduce, keepdims=True), data.max(axis=reduce, keepdims=True)
    if lazy:
        import dask

        lo, hi = (np.asarray(v, dtype=np.float64) for v in dask.compute(lo, hi))
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if method == "percentile":
        q = (0.1, 99.9)
        if lazy:
            import dask.array as da

            moved = da.moveaxis(data, keep, 0) if keep is not None else data[None]
            pairs = [da.percentile(moved[i].ravel().astype(np.float64), q) for i in range(moved.shape[0])]
            values = np.array(dask_compute(pairs))
            lo, hi = (values[:, k].reshape(lo.shape) for k in (0, 1))
        else:
            lo, hi = np.percentile(np.asarray(data, dtype=np.float64), q, axis=reduce, keepdims=True)
    elif method in ("dtype", "none"):
        if method == "dtype" and np.dtype(data.dtype).kind in "ui":
            info = np.iinfo(data.dtype)
            return np.full_like(lo, info.min), np.full_like(hi, info.max)
        if lo.min() < 0 or hi.max() > 1:
            raise ValueError(f"normalize={method!r} on float data needs values in [0, 1]; use 'minmax' or 'percentile'")
        return np.zeros_like(lo), np.ones_like(hi)
    return lo, hi


def stabilised_ranges(data, layout: Layout, method: str, model) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stack_ranges` of ``data`` after the noise model's transform (None: none): the
    dtype's range is carried through the transform, the other methods measure the
    transformed data."""
    if model is None:
        return stack_ranges(data, layout, method)
    if method == "dtype":
        return tuple(model.forward(np.asarray(r)) for r in stack_ranges(data, layout, method))
    return stack_ranges(model.forward(data), layout, method)


def dask_compute(values: list) -> list:
    import dask

    return list(dask.compute(*values))


def plane_normalizations(arr, planes, layout: Layout, method: str, per: str, ranges, model):
    """Each plane's normalisation (None for a constant plane) and whether it is constant:
    one range for the stack (``per="stack"``, ``ranges`` or measured after the noise model's
    transform) or each plane's own (``per="plane"``)."""
    n = layout.n_planes
    norms: list[Normalization | None] = []
    constant = []
    if per == "stack":
        if ranges is None:
            ranges = stabilised_ranges(arr, layout, method, model)
        lows, highs = (layout.plane_values(r) for r in ranges)
        for i in range(n):
            ok = highs[i] > lows[i]
            norms.append(Normalization(float(lows[i]), float(highs[i]), method) if ok else None)
            constant.append(not ok)
        return norms, constant
    for i in range(n):
        try:
            norms.append(fit_normalization(planes[i], method, transform=None if model is None else model.forward))
            constant.append(False)
        except ValueError as error:
            if "constant" not in str(error):
                raise
            norms.append(None)
            constant.append(True)
    return norms, constant
