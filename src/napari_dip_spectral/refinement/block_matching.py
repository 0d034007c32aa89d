"""Grouped estimates of a plane or volume: similar blocks matched across it and filtered together.

For every reference block (8 x 8, every third row and column) the blocks nearest to it
within a 39 x 39 window (at most a group's size, those within a mean squared distance of its
threshold, a power of two in number) are stacked into a group; the data's blocks at the same
places are transformed together (a 3-D cosine transform of the group), filtered, and put
back, weighted by a Kaiser window and by how much noise their group kept. These are the two
stages of BM3D (Dabov et al., IEEE TIP 2007, with their published values), with a cosine
transform along the group:

* :func:`grouped_wiener`: the blocks matched on a pilot, each coefficient shrunk by the
  pilot's ``P**2 / (P**2 + sigma**2)`` (groups of up to 32, threshold 400 on a 0-255
  scale); similar blocks elsewhere in the plane (nuclei, repeated texture) give each
  coefficient more samples than one neighbourhood (refinement/wiener_pass.py's blocks) does.
* :func:`grouped_threshold`: no pilot; the blocks matched on the data, and every coefficient
  under 2.7 sigma set to zero (groups of up to 16, threshold 2500 above the noise's own
  2 sigma^2 between two noisy copies of one block: BM3D's fixed 2500 left almost every group
  a single block once sigma passed ~0.14, where the paper switched to other values). A pilot
  of its own for :func:`grouped_wiener`, made without the decoder; :func:`two_stage` runs
  the two in turn.

A volume (a Z or T stack fitted as a whole) is grouped the same way in cubes of 4 (BM4D's
side; Maggioni et al., IEEE TIP 2013) within 5 planes, rows and columns either way: the same
values otherwise, and the same code, which works on 2-D and 3-D arrays alike.

Large planes and volumes go in bands of reference rows, each matched on its rows plus a halo of the
search radius, and filtered in chunks of groups, so memory stays bounded; the values do not
depend on the band.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from .wiener_blocks import shrink_blocks, threshold_blocks

BLOCK, STEP, RADIUS, GROUP = 8, 3, 19, 32
VOLUME_BLOCK, VOLUME_RADIUS = 4, 5  # a volume's cubes (BM4D's side) and search radius
TAU = 400 / 255**2  # BM3D's Wiener-stage match threshold (400 on a 0-255 scale), data in [0, 1]
THRESHOLD_GROUP = 16  # BM3D's hard-threshold stage: groups of up to 16 blocks,
THRESHOLD_TAU = 2500 / 255**2  # matched on the noisy data within 2500 (0-255 scale) + 2 sigma^2,
THRESHOLD_LAMBDA = 2.7  # coefficients under 2.7 sigma set to zero
KAISER_BETA = 2.0
BAND_REFS = 32768  # reference blocks matched at once (~30 MB of distances)
MIN_BAND_REFS = 8192  # a band per core only down to this: smaller ones redo too much halo
CHUNK_REFS = 1024  # groups filtered at once (~100 MB of work arrays at 32 blocks)


def _starts(n: int, block: int, step: int) -> np.ndarray:
    """Block corners every ``step`` along an axis of ``n``, the last flush with the end."""
    starts = list(range(0, max(n - block, 0) + 1, step))
    if starts[-1] != n - block:
        starts.append(n - block)
    return np.asarray(starts)


def _box_sums(integral: np.ndarray, sides: tuple[int, ...]) -> np.ndarray:
    """The sums over every box of ``sides`` (by its first corner) from an integral array with
    a leading row of zeros on each axis: inclusion and exclusion over the box's corners."""
    corners = itertools.product((1, 0), repeat=len(sides))
    total = integral[tuple(slice(s, None) for s in sides)].copy()  # the far corner, (1, 1, ...)
    for corner in itertools.islice(corners, 1, None):
        cut = integral[tuple(slice(s, None) if c else slice(None, -s) for c, s in zip(corner, sides))]
        if (len(sides) - sum(corner)) % 2:
            total -= cut
        else:
            total += cut
    return total


def match_blocks(pilot: np.ndarray, refs: tuple, sides: tuple[int, ...], radii: tuple[int, ...], k: int):
    """The blocks of ``pilot`` (2-D or 3-D) that form the groups of the reference blocks whose
    first corners are ``refs`` (one array of coordinates per axis): ``(corners, distances)``,
    the corners one ``(references, k)`` array per axis, the reference first, then the ``k - 1``
    others within ``radii`` (per axis) nearest to it in mean squared distance (the reference
    again where fewer lie within reach)."""
    shape, nd = pilot.shape, pilot.ndim
    p = pilot.astype(np.float64)
    n, others = refs[0].size, k - 1
    shifts = [d for d in itertools.product(*(range(-r, r + 1) for r in radii)) if any(d)]
    best = np.full((others, n), np.inf)
    best_shift = np.zeros((others, n), dtype=np.int32)  # an index into ``shifts``
    found = []
    for i, shift in enumerate(shifts if others else []):
        # the distance between the block at c and the one at c + shift, for every c at once:
        # squared differences summed over blocks by an integral array
        low = [max(0, -d) for d in shift]
        high = [min(m, m - d) for m, d in zip(shape, shift)]
        distance = np.full(n, np.inf)  # at the reference corners only
        if all(h - lo >= s for h, lo, s in zip(high, low, sides)):
            here = tuple(slice(lo, h) for lo, h in zip(low, high))
            there = tuple(slice(lo + d, h + d) for lo, h, d in zip(low, high, shift))
            integral = np.zeros(tuple(h - lo + 1 for lo, h in zip(low, high)))
            inner = integral[(slice(1, None),) * nd]
            np.subtract(p[here], p[there], out=inner)
            np.square(inner, out=inner)
            for axis in range(nd):
                np.cumsum(inner, axis=axis, out=inner)
            boxes = _box_sums(integral, sides)
            inside = np.ones(n, dtype=bool)
            for r, lo, m in zip(refs, low, boxes.shape):
                inside &= (r >= lo) & (r < lo + m)
            distance[inside] = boxes[tuple(r[inside] - lo for r, lo in zip(refs, low))]
        found.append(distance)
        if len(found) == 64 or i == len(shifts) - 1:  # keep the best so far
            d = np.concatenate([best, np.stack(found)])
            ids = np.concatenate(
                [best_shift, np.broadcast_to(np.arange(i + 1 - len(found), i + 1)[:, None], (len(found), n))]
            )
            keep = np.argpartition(d, others - 1, axis=0)[:others]
            best, best_shift = np.take_along_axis(d, keep, 0), np.take_along_axis(ids, keep, 0)
            found = []
    order = np.argsort(best, axis=0, kind="stable")
    best, best_shift = np.take_along_axis(best, order, 0), np.take_along_axis(best_shift, order, 0)
    offsets = np.array(shifts or [(0,) * nd], dtype=np.int32).reshape(-1, nd)
    beyond = ~np.isfinite(best)  # no block there (an array too small for k): the reference again
    corners = []
    for axis, r in enumerate(refs):
        moved = offsets[best_shift, axis]
        moved[beyond] = 0
        corners.append((np.concatenate([np.zeros((1, n), np.int32), moved]) + r).T)
    distances = np.concatenate([np.zeros((1, n)), best]) / np.prod(sides)
    return tuple(corners), distances.T


def grouped_threshold(data: np.ndarray, sigma: float, match_on: np.ndarray | None = None) -> np.ndarray:
    """The grouped hard-threshold estimate of the plane or volume ``data`` (noise ``sigma``),
    float32: BM3D's first stage (BM4D's for a volume). The groups are formed on ``match_on``
    (default the data itself); ``data`` may be ``(planes, H, W)`` with a ``match_on`` of
    ``(H, W)``, as for :func:`grouped_wiener`."""
    return _grouped(data, None, sigma, data if match_on is None else match_on)


def two_stage(data: np.ndarray, sigma: float, on_luminance: bool = False) -> np.ndarray:
    """BM3D's two stages on ``data`` (BM4D's on a volume), with no pilot from outside: the
    grouped hard threshold, then the grouped Wiener estimate guided by it; float32.
    ``on_luminance``: ``data`` is a colour plane ``(3, H, W)`` in the opponent space, grouped
    on its first channel, the data's in the first stage and the first stage's in the second,
    as CBM3D groups them."""
    if on_luminance:
        pilot = grouped_threshold(data, sigma, data[0])
        return grouped_wiener(data, pilot, sigma, pilot[0])
    return grouped_wiener(data, grouped_threshold(data, sigma), sigma)


def grouped_wiener(data: np.ndarray, pilot: np.ndarray, sigma: float, match_on: np.ndarray | None = None) -> np.ndarray:
    """The grouped Wiener estimate of the plane or volume ``data`` (noise ``sigma``) guided by
    ``pilot`` (same shape), float32. The groups are formed on ``match_on`` (default the
    pilot; a 3-D one groups cubes across a volume): a colour plane's two colour differences have little structure of
    their own to match on, so they are grouped on the luminance, as CBM3D does. ``data`` and
    ``pilot`` may also be ``(planes, H, W)`` with a ``match_on`` of ``(H, W)``: every plane is
    filtered in the same groups, matched once. An axis shorter than a block gets blocks of
    its length. Bands of reference rows run on the CPU's cores at once (numpy releases the
    interpreter lock in the work that dominates) and are added up in order, so the values do
    not depend on the number of cores."""
    return _grouped(data, pilot, sigma, pilot if match_on is None else match_on)


def _grouped(data: np.ndarray, pilot: np.ndarray | None, sigma: float, matched: np.ndarray) -> np.ndarray:
    """Either estimate, in bands of reference rows on the cores: Wiener-filtered guided by
    ``pilot``, or hard-thresholded where it is None; groups formed on ``matched`` (a plane:
    blocks of BLOCK; a volume: cubes of VOLUME_BLOCK)."""
    from concurrent.futures import ThreadPoolExecutor

    nd = matched.ndim
    if nd not in (2, 3) or data.shape[-nd:] != matched.shape or (pilot is not None and pilot.shape != data.shape):
        shape = None if pilot is None else pilot.shape
        raise ValueError(
            f"planes {data.shape} and pilot {shape} need one plane or volume to match on, got {matched.shape}"
        )
    planes = data.reshape(-1, *matched.shape)
    pilots = None if pilot is None else pilot.reshape(-1, *matched.shape)
    block, radius = (BLOCK, RADIUS) if nd == 2 else (VOLUME_BLOCK, VOLUME_RADIUS)
    sides = tuple(min(block, n) for n in matched.shape)
    # every pixel lies in a reference block; no shift reaches beyond the array
    starts = [_starts(n, s, min(STEP, s)) for n, s in zip(matched.shape, sides)]
    radii = tuple(min(radius, n - s) for n, s in zip(matched.shape, sides))
    rows, across = starts[-2], int(np.prod([a.size for a in starts])) // starts[-2].size
    workers = max(1, min(os.cpu_count() or 1, rows.size * across // MIN_BAND_REFS))
    rows_per_band = max(1, min(BAND_REFS // across, -(-rows.size // workers)))
    bands = [rows[b : b + rows_per_band] for b in range(0, rows.size, rows_per_band)]
    total = np.zeros((len(planes), *matched.shape))
    weights = np.zeros((len(planes), *matched.shape))

    def one(band):
        return _band(planes, pilots, matched, sigma, [*starts[:-2], band, starts[-1]], sides, radii)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for wave in range(0, len(bands), workers):  # a wave at a time: bounded memory
            for top, part_total, part_weights in pool.map(one, bands[wave : wave + workers]):
                rows_here = slice(top, top + part_total.shape[-2])
                total[..., rows_here, :] += part_total
                weights[..., rows_here, :] += part_weights
    return (total / weights).reshape(data.shape).astype(np.float32)


def _band(planes, pilots, matched, sigma: float, starts: list, sides: tuple, radii: tuple):
    """The weighted estimates of the groups (formed on ``matched``) of the reference blocks
    at ``starts`` (per axis; one band of rows), for each of ``planes`` (Wiener-filtered
    guided by its ``pilots``, or hard-thresholded where ``pilots`` is None), summed per pixel
    over the rows they reach: (first row, sums, weights), the last two ``(planes, *rows' shape)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    band, side, radius = starts[-2], sides[-2], radii[-2]
    top, bottom = max(int(band[0]) - radius, 0), min(int(band[-1]) + side + radius, matched.shape[-2])
    part = matched[..., top:bottom, :]
    refs = tuple(v.ravel() for v in np.meshgrid(*starts[:-2], band - top, starts[-1], indexing="ij"))
    if pilots is not None:
        group, tau = GROUP, TAU
    else:  # two noisy copies of one block lie 2 sigma^2 apart: the threshold is on what lies beyond
        group, tau = THRESHOLD_GROUP, THRESHOLD_TAU + 2 * sigma**2
    corners, distance = match_blocks(part, refs, sides, radii, group)
    # as in BM3D, a group holds a power of two of the blocks within the threshold
    within = np.maximum((distance <= tau).sum(axis=1), 1)
    sizes = np.minimum(2 ** np.floor(np.log2(within)).astype(int), group)
    window = np.ones(())
    for s in sides:  # a Kaiser window over the block
        window = np.multiply.outer(window, np.kaiser(s, KAISER_BETA) if s > 1 else np.ones(1))
    strides = [int(np.prod(part.shape[a + 1 :])) for a in range(part.ndim)]
    offsets = sum(
        np.arange(s).reshape([-1 if a == b else 1 for b in range(len(sides))]) * st
        for a, (s, st) in enumerate(zip(sides, strides))
    )
    flat = sum(c * st for c, st in zip(corners, strides))
    total, weights = np.zeros((len(planes), part.size)), np.zeros((len(planes), part.size))
    axes = tuple(range(1, len(sides) + 2))  # along the group and the block
    tail = (None,) * len(sides)
    for p, data in enumerate(planes):
        noisy, guide = (
            None if plane is None else sliding_window_view(plane[..., top:bottom, :].astype(np.float64), sides)
            for plane in (data, None if pilots is None else pilots[p])
        )
        for size in np.unique(sizes):
            chosen = np.flatnonzero(sizes == size)
            per_chunk = max(1, CHUNK_REFS * GROUP // size)
            for c in range(0, chosen.size, per_chunk):
                ids = chosen[c : c + per_chunk]
                at = tuple(v[ids, :size] for v in corners)
                if guide is None:
                    estimate, weight = threshold_blocks(noisy[at], sigma, THRESHOLD_LAMBDA, axes)
                else:
                    estimate, weight = shrink_blocks(noisy[at], guide[at], sigma, axes)
                weight = np.broadcast_to(weight * window, estimate.shape)  # and a Kaiser window
                where = flat[ids, :size][(...,) + tail] + offsets
                total[p] += np.bincount(where.ravel(), (estimate * weight).ravel(), part.size)
                weights[p] += np.bincount(where.ravel(), weight.ravel(), part.size)
    shape = (len(planes), *part.shape)
    return top, total.reshape(shape), weights.reshape(shape)
