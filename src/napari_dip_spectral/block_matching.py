"""Grouped estimates of a plane: similar blocks matched across it and filtered together.

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
  coefficient more samples than one neighbourhood (wiener_pass.py's blocks) does.
* :func:`grouped_threshold`: no pilot; the blocks matched on the data, and every coefficient
  under 2.7 sigma set to zero (groups of up to 16, threshold 2500). A pilot of its own for
  :func:`grouped_wiener`, made without the decoder.

Large planes go in bands of reference rows, each matched on its rows plus a halo of the
search radius, and filtered in chunks of groups, so memory stays bounded; the values do not
depend on the band.
"""

from __future__ import annotations

import os

import numpy as np

from .wiener_blocks import shrink_blocks, threshold_blocks

BLOCK, STEP, RADIUS, GROUP = 8, 3, 19, 32
TAU = 400 / 255**2  # BM3D's Wiener-stage match threshold (400 on a 0-255 scale), data in [0, 1]
THRESHOLD_GROUP = 16  # BM3D's hard-threshold stage: groups of up to 16 blocks,
THRESHOLD_TAU = 2500 / 255**2  # matched on the noisy data within 2500 (0-255 scale),
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


def match_blocks(pilot: np.ndarray, ry: np.ndarray, rx: np.ndarray, block: int, radius: int, k: int):
    """Corners ``(y, x)``, each ``(len(ry), k)``, of the blocks of ``pilot`` that form the
    groups of the reference blocks at ``(ry, rx)``: the reference first, then the ``k - 1``
    others within ``radius`` nearest to it in squared distance (the reference again where
    fewer lie within reach)."""
    h, w = pilot.shape
    p = pilot.astype(np.float64)
    n, others = ry.size, k - 1
    shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1) if dy or dx]
    best = np.full((others, n), np.inf)
    best_shift = np.zeros((others, n), dtype=np.int32)  # an index into ``shifts``
    found = []
    for i, (dy, dx) in enumerate(shifts if others else []):
        # the distance between the block at (y, x) and the one at (y + dy, x + dx), for every
        # (y, x) at once: squared differences summed over blocks by an integral image
        y0, y1, x0, x1 = max(0, -dy), min(h, h - dy), max(0, -dx), min(w, w - dx)
        distance = np.full(n, np.inf)  # at the reference corners only
        if y1 - y0 >= block and x1 - x0 >= block:
            square = (p[y0:y1, x0:x1] - p[y0 + dy : y1 + dy, x0 + dx : x1 + dx]) ** 2
            integral = np.zeros((y1 - y0 + 1, x1 - x0 + 1))
            integral[1:, 1:] = square.cumsum(0).cumsum(1)
            boxes = integral[block:, block:] - integral[:-block, block:] - integral[block:, :-block]
            boxes += integral[:-block, :-block]
            inside = (ry >= y0) & (ry < y0 + boxes.shape[0]) & (rx >= x0) & (rx < x0 + boxes.shape[1])
            distance[inside] = boxes[ry[inside] - y0, rx[inside] - x0]
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
    offsets = np.array(shifts or [(0, 0)], dtype=np.int32).reshape(-1, 2)
    best_dy, best_dx = offsets[best_shift, 0], offsets[best_shift, 1]
    beyond = ~np.isfinite(best)  # no block there (a plane too small for k): the reference again
    best_dy[beyond] = 0
    best_dx[beyond] = 0
    ys = np.concatenate([np.zeros((1, n), np.int32), best_dy]) + ry
    xs = np.concatenate([np.zeros((1, n), np.int32), best_dx]) + rx
    distances = np.concatenate([np.zeros((1, n)), best]) / (block * block)
    return ys.T, xs.T, distances.T


def grouped_threshold(data: np.ndarray, sigma: float, match_on: np.ndarray | None = None) -> np.ndarray:
    """The grouped hard-threshold estimate of the plane ``data`` (noise ``sigma``), float32:
    BM3D's first stage. The groups are formed on ``match_on`` (one plane; default the data
    itself); ``data`` may be ``(planes, H, W)`` with a ``match_on`` of ``(H, W)``, as for
    :func:`grouped_wiener`."""
    return _grouped(data, None, sigma, data if match_on is None else match_on)


def grouped_wiener(data: np.ndarray, pilot: np.ndarray, sigma: float, match_on: np.ndarray | None = None) -> np.ndarray:
    """The grouped Wiener estimate of the plane ``data`` (noise ``sigma``) guided by
    ``pilot`` (same shape), float32. The groups are formed on ``match_on`` (one plane;
    default the pilot): a colour plane's two colour differences have little structure of
    their own to match on, so they are grouped on the luminance, as CBM3D does. ``data`` and
    ``pilot`` may also be ``(planes, H, W)`` with a ``match_on`` of ``(H, W)``: every plane is
    filtered in the same groups, matched once. A plane narrower than a block uses blocks of
    its width. Bands of reference rows run on the CPU's cores at once (numpy releases the
    interpreter lock in the work that dominates) and are added up in order, so the values do
    not depend on the number of cores."""
    return _grouped(data, pilot, sigma, pilot if match_on is None else match_on)


def _grouped(data: np.ndarray, pilot: np.ndarray | None, sigma: float, matched: np.ndarray) -> np.ndarray:
    """Either estimate, in bands of reference rows on the cores: Wiener-filtered guided by
    ``pilot``, or hard-thresholded where it is None; groups formed on ``matched``."""
    from concurrent.futures import ThreadPoolExecutor

    if matched.ndim != 2 or data.shape[-2:] != matched.shape or (pilot is not None and pilot.shape != data.shape):
        shape = None if pilot is None else pilot.shape
        raise ValueError(f"planes {data.shape} and pilot {shape} need one plane to match on, got {matched.shape}")
    planes = data.reshape(-1, *data.shape[-2:])
    pilots = None if pilot is None else pilot.reshape(-1, *data.shape[-2:])
    h, w = matched.shape
    block = min(BLOCK, h, w)
    step = min(STEP, block)  # every pixel lies in a reference block
    ys, xs = _starts(h, block, step), _starts(w, block, step)
    workers = max(1, min(os.cpu_count() or 1, ys.size * xs.size // MIN_BAND_REFS))
    rows_per_band = max(1, min(BAND_REFS // xs.size, -(-ys.size // workers)))
    bands = [ys[b : b + rows_per_band] for b in range(0, ys.size, rows_per_band)]
    total = np.zeros((len(planes), h * w))
    weights = np.zeros((len(planes), h * w))

    def one(band):
        return _band(planes, pilots, matched, sigma, band, xs, block)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for wave in range(0, len(bands), workers):  # a wave at a time: bounded memory
            for top, part_total, part_weights in pool.map(one, bands[wave : wave + workers]):
                total[:, top * w : top * w + part_total.shape[1]] += part_total
                weights[:, top * w : top * w + part_weights.shape[1]] += part_weights
    return (total / weights).reshape(data.shape).astype(np.float32)


def _band(planes, pilots, matched, sigma: float, band: np.ndarray, xs: np.ndarray, block: int):
    """The weighted estimates of the groups (formed on ``matched``) of one band of reference
    rows, for each of ``planes`` (Wiener-filtered guided by its ``pilots``, or hard-thresholded
    where ``pilots`` is None), summed per pixel over the rows they reach: (first row, sums,
    weights), the last two ``(planes, pixels)``."""
    from numpy.lib.stride_tricks import sliding_window_view

    h, w = matched.shape
    window = np.outer(np.kaiser(block, KAISER_BETA), np.kaiser(block, KAISER_BETA)) if block > 1 else np.ones((1, 1))
    top, bottom = max(int(band[0]) - RADIUS, 0), min(int(band[-1]) + block + RADIUS, h)
    ry, rx = (v.ravel() for v in np.meshgrid(band - top, xs, indexing="ij"))
    group, tau = (GROUP, TAU) if pilots is not None else (THRESHOLD_GROUP, THRESHOLD_TAU)
    gy, gx, distance = match_blocks(matched[top:bottom], ry, rx, block, RADIUS, group)
    # as in BM3D, a group holds a power of two of the blocks within the threshold
    within = np.maximum((distance <= tau).sum(axis=1), 1)
    sizes = np.minimum(2 ** np.floor(np.log2(within)).astype(int), group)
    n = (bottom - top) * w
    total, weights = np.zeros((len(planes), n)), np.zeros((len(planes), n))
    offsets = np.arange(block)[:, None] * w + np.arange(block)
    for p, data in enumerate(planes):
        noisy, guide = (
            None if plane is None else sliding_window_view(plane[top:bottom].astype(np.float64), (block, block))
            for plane in (data, None if pilots is None else pilots[p])
        )
        for size in np.unique(sizes):
            chosen = np.flatnonzero(sizes == size)
            per_chunk = max(1, CHUNK_REFS * GROUP // size)
            for c in range(0, chosen.size, per_chunk):
                part = chosen[c : c + per_chunk]
                cy, cx = gy[part, :size], gx[part, :size]
                if guide is None:
                    estimate, weight = threshold_blocks(noisy[cy, cx], sigma, THRESHOLD_LAMBDA, (1, 2, 3))
                else:
                    estimate, weight = shrink_blocks(noisy[cy, cx], guide[cy, cx], sigma, (1, 2, 3))
                weight = np.broadcast_to(weight * window, estimate.shape)  # and a Kaiser window
                where = (cy * w + cx)[..., None, None] + offsets
                total[p] += np.bincount(where.ravel(), (estimate * weight).ravel(), n)
                weights[p] += np.bincount(where.ravel(), weight.ravel(), n)
    return top, total, weights
