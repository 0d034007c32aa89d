"""Decoder width side by side, per task, on grey photos: what a narrower decoder costs in
PSNR and saves in time.

    python -m benchmarks.widths --tasks deblock,inpaint,super_resolution --widths 128,64

Each case (a 128 px centre square of scikit-image's ``camera`` and of the luma of the
paper's F16, House and Peppers, degraded with ``degradations.degrade``'s defaults: JPEG
quality 10, half the pixels kept, x4 Lanczos) is restored with ``restore(..., channels=c)``
for every width in turn, everything else default, one process. Prints PSNR, iterations to
the stop and seconds per width, then each width's mean difference from the first.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_dip_spectral import restore
from napari_dip_spectral.degradations import degrade

from .common import grey_photos, psnr, table

PHOTOS = {"F16": "image_F16_512rgb.png", "House": "image_House256rgb.png", "Peppers": "image_Peppers512rgb.png"}


def photos(size: int) -> dict[str, np.ndarray]:
    return {k: np.clip(v, 0, 1).astype(np.float32) for k, v in grey_photos(size, PHOTOS).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="deblock,inpaint,super_resolution")
    parser.add_argument(
        "--widths", default="128,64", help="decoder channels, comma-separated; the first is the reference"
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", help="comma-separated subset of camera,F16,House,Peppers")
    parser.add_argument("--iterations", type=int, help="a budget instead of the task's (for a quick look)")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    images = photos(args.size)
    if args.images:
        images = {k: v for k, v in images.items() if k in args.images.split(",")}
    differences: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        rows = []
        for name, clean in images.items():
            degraded = degrade(clean, task)
            results = []
            for width in widths:
                started = time.perf_counter()
                result = restore(
                    degraded.image,
                    task,
                    mask=degraded.mask,
                    factor=degraded.factor,
                    channels=width,
                    iterations=args.iterations,
                    device="cpu",
                )
                seconds = time.perf_counter() - started
                results.append((psnr(result.image, degraded.clean), result.stop_iteration, seconds))
            first = results[0]
            for width, (value, _, seconds) in zip(widths[1:], results[1:]):
                differences.setdefault((task, width), []).append((value - first[0], seconds / first[2]))
            rows.append([name] + [f"{v:.2f} ({it}, {s:.0f} s)" for v, it, s in results])
            print(f"  {task} {name}: " + ", ".join(rows[-1][1:]), flush=True)  # runs are long
        table(
            f"{task}, {args.size} px: PSNR dB (iterations, seconds)",
            ["image"] + [f"{w} channels" for w in widths],
            rows,
        )
    for (task, width), pairs in differences.items():
        dps, ratios = zip(*pairs)
        print(
            f"{task}: {width} - {widths[0]} channels mean {np.mean(dps):+.3f} dB "
            f"({min(dps):+.2f} to {max(dps):+.2f}), time {min(ratios):.2f}-{max(ratios):.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
