"""Time a T x 128 x 128 uint16 stack restored batched (all planes as one grouped network)
versus one plane at a time (batch_size=1).

    OMP_NUM_THREADS=2 python -m benchmarks.stack_batching --planes 10 --iterations 20 --channels 16
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

from napari_dip_spectral import restore

from .common import timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--planes", type=int, default=10)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: args.size, : args.size]
    base = 1000 + 2000 * (np.sin(xx / 9.0) * np.cos(yy / 13.0) > 0)
    stack = np.stack([rng.poisson(base + 100 * t) for t in range(args.planes)]).astype(np.uint16)
    print(
        f"stack {stack.shape} {stack.dtype}, iterations {args.iterations}, "
        f"channels {args.channels}, {platform.processor() or platform.machine()}"
    )
    print("| mode | batch size | seconds | seconds per plane |")
    print("|---|---|---|---|")
    for name, batch in (("batched", args.planes), ("one by one", 1)):
        result, seconds = timed(
            restore,
            stack,
            "denoise",
            axes="TYX",
            iterations=args.iterations,
            channels=args.channels,
            auto_stop=False,
            batch_size=batch,
            device=args.device,
            output_dtype="input",
        )
        assert result.image.shape == stack.shape and result.image.dtype == stack.dtype
        print(f"| {name} | {batch} | {seconds:.1f} | {seconds / args.planes:.2f} |")


if __name__ == "__main__":
    main()
