"""What the steps after a denoising fit cost: on one plane the share of non-local means, the
8 x 8 Wiener filter, the grouped (block-matched) Wiener filter and the BM3D-like estimate
mixed in at the end; on a stack fitted as a whole the 3-D Wiener pass and the BM4D-like
estimate; at several sizes.

    python -m benchmarks.pass_cost                     # 128, 256, 512 and 1024 px
    python -m benchmarks.pass_cost --sizes 128,256 --repeats 3 --stacks 8x64x64,32x128x128

Each step runs on scikit-image's ``camera`` resized to the size, with Gaussian noise of sigma
0.1 and a Gaussian-smoothed copy as the pilot (the values do not depend on the pilot's
quality, only on the size); a stack is a smooth random volume (smoother along Z, as nuclei
through a confocal stack) with the same noise; median seconds of ``--repeats`` calls, the
steps interleaved.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .common import alternate, square, table


def plane(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, pilot) at ``size`` x ``size``, float32."""
    from scipy.ndimage import gaussian_filter
    from skimage import data

    clean = square(data.camera() / 255.0, size)
    noisy = (clean + np.random.default_rng(seed).normal(0, 0.1, clean.shape)).astype(np.float32)
    return noisy, gaussian_filter(noisy, 1.0).astype(np.float32)


def volume(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, pilot) of ``shape`` (Z, Y, X), float32."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random(shape), (2, 1.5, 1.5))
    clean = (clean - clean.min()) / (clean.max() - clean.min())
    noisy = (clean + rng.normal(0, 0.1, shape)).astype(np.float32)
    return noisy, gaussian_filter(noisy, (0.7, 1, 1)).astype(np.float32)


def main(argv=None) -> int:
    from napari_dip_spectral.refinement.block_matching import grouped_wiener, two_stage
    from napari_dip_spectral.refinement.nonlocal_share import mix_nonlocal
    from napari_dip_spectral.refinement.wiener_pass import BLOCK_2D, BLOCK_3D, wiener_pass

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="128,256,512,1024", help="plane sides in pixels, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stacks", default="", help="stack shapes ZxYxX, comma-separated (default none)")
    args = parser.parse_args(argv)

    def steps(noisy, pilot):
        return [
            lambda: mix_nonlocal(pilot[None, None].copy(), noisy[None, None], [0.1], 0.3),
            lambda: wiener_pass(noisy, pilot, 0.1, BLOCK_2D),
            lambda: grouped_wiener(noisy, pilot, 0.1),
            lambda: two_stage(noisy, 0.1),
        ]

    def stack_steps(noisy, pilot):
        return [lambda: wiener_pass(noisy, pilot, 0.1, BLOCK_3D), lambda: two_stage(noisy, 0.1)]

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        seconds = alternate(steps(*plane(size)), args.repeats, warmup=1)
        rows.append([size, *seconds, sum(seconds), 1e6 * sum(seconds) / size**2])
    table(
        "Seconds per plane after the fit",
        [
            "px",
            "non-local means share",
            "Wiener 8 x 8",
            "grouped Wiener",
            "BM3D-like estimate",
            "total",
            "microseconds per pixel",
        ],
        rows,
    )
    if not args.stacks:
        return 0
    rows = []
    for text in args.stacks.split(","):
        shape = tuple(int(n) for n in text.lower().split("x"))
        noisy, pilot = volume(shape)
        seconds = alternate(stack_steps(noisy, pilot), args.repeats, warmup=1)
        rows.append([text, *seconds, sum(seconds), 1e6 * sum(seconds) / noisy.size])
    table(
        "Seconds per stack fitted as a whole after the fit",
        ["Z x Y x X", "Wiener 4 x 4 x 4", "BM4D-like estimate", "total", "microseconds per voxel"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
