"""Overlapping tiles, smooth blending weights, and the memory estimate that sizes tiles and
batches.

A plane of ``H x W`` is cut into square tiles of ``tile`` pixels that overlap by ``overlap``
pixels; the last tile of a row or column is moved back so that it ends at the border (all
tiles have the same size, so tiles of many planes can share one grouped network). Each
tile's weight ramps smoothly (raised cosine) from near 0 to 1 across the overlap on the sides
that touch another tile and is 1 elsewhere; the weights are then divided by their sum, so
they add up to exactly 1 at every pixel and a tiled result has no seams.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

MIN_TILE = 16


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``y0:y0+h`` and columns ``x0:x0+w`` of the input plane."""

    y0: int
    x0: int
    h: int
    w: int

    def slices(self, scale: int = 1) -> tuple[slice, slice]:
        """The tile's region in a plane ``scale`` times larger (super-resolution output)."""
        return (slice(self.y0 * scale, (self.y0 + self.h) * scale), slice(self.x0 * scale, (self.x0 + self.w) * scale))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile`` overlapping by >= ``overlap``."""
    if tile >= length:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def check_tiling(tile: int, overlap: int = 0) -> None:
    if not isinstance(tile, (int, np.integer)) or tile < MIN_TILE:
        raise ValueError(f"tile_size must be an integer >= {MIN_TILE}, got {tile!r}")
    if not 0 <= overlap < tile / 2:
        raise ValueError(f"tile overlap must be in [0, tile_size / 2), got {overlap!r}")


def plan_tiles(shape: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """The tiles covering a plane of ``shape`` (one tile when the plane fits)."""
    check_tiling(tile, overlap)
    h, w = shape
    th, tw = min(tile, h), min(tile, w)
    return [Tile(y, x, th, tw) for y in tile_starts(h, tile, overlap) for x in tile_starts(w, tile, overlap)]


def _ramp(length: int, overlap: int, rising: bool, falling: bool) -> np.ndarray:
    """1-D weight: raised-cosine ramps of ``overlap`` samples at the chosen ends, never 0."""
    r = np.ones(length, dtype=np.float64)
    if overlap > 0:
        k = np.arange(overlap, dtype=np.float64)
        up = np.sin(0.5 * np.pi * (k + 0.5) / overlap) ** 2
        if rising:
            r[:overlap] = up
        if falling:
            r[length - overlap :] = up[::-1]
    return r


def blend_weights(shape: tuple[int, int], tiles: list[Tile], overlap: int, scale: int = 1) -> list[np.ndarray]:
    """Per-tile weights (in a plane ``scale`` times larger) that sum to 1 at every pixel."""
    h, w = shape[0] * scale, shape[1] * scale
    o = overlap * scale
    raw = []
    for t in tiles:
        ys, xs = t.slices(scale)
        wy = _ramp(ys.stop - ys.start, o, ys.start > 0, ys.stop < h)
        wx = _ramp(xs.stop - xs.start, o, xs.start > 0, xs.stop < w)
        raw.append(np.outer(wy, wx))
    total = np.zeros((h, w))
    for t, r in zip(tiles, raw):
        total[t.slices(scale)] += r
    return [(r / total[t.slices(scale)]).astype(np.float32) for t, r in zip(tiles, raw)]


def unit_bytes(channels: int, levels: int, out_channels: int, height: int, width: int) -> int:
    """Rough device memory for fitting one plane (or tile) of ``height x width`` output
    pixels: the finest level holds about 16 activation/gradient tensors of ``channels``
    feature maps (float32), and the coarser levels add a third of that."""
    multiple = 2**levels
    hp = max(2 * multiple, -(-height // multiple) * multiple)
    wp = max(2 * multiple, -(-width // multiple) * multiple)
    return int(4 * hp * wp * (16 * channels * 4 / 3 + 8 * out_channels))


def memory_budget(device) -> int:
    """Bytes one batch may use: half the free memory of a CUDA device, else a quarter of
    the machine's RAM capped at 4 GiB (CPU and Apple MPS)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(min(4 << 30, ram // 4))


def auto_tile(
    shape: tuple[int, int], budget: int, channels: int, levels: int, out_channels: int, scale: int = 1
) -> int | None:
    """``None`` when a whole plane fits the budget, else the largest tile side (a multiple
    of 32, at least 64) whose estimate fits."""
    h, w = shape
    if unit_bytes(channels, levels, out_channels, h * scale, w * scale) <= budget:
        return None
    tile = 32 * (max(h, w) // 32)
    while tile > 64 and unit_bytes(channels, levels, out_channels, tile * scale, tile * scale) > budget:
        tile -= 32
    return max(tile, 64)
