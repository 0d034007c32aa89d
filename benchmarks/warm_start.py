"""Warm starts: each plane's decoder starting from its neighbour's, against cold starts.

    python -m benchmarks.warm_start --photons 5,20,100

On the fluorescence benchmark's stack (the stardist nuclei stack, 31 planes of 56 x 56,
recorded as camera counts at each photon level), fitted plane by plane
(``stack_prior="planes"``): cold in one batch (the default before warm starts), cold one
plane at a time, and warm (each plane from the last). Then a series of six unrelated
128 x 128 images (the 2-D cases' crops, ``axes="TYX"``), where a neighbour is no help: cold
one at a time against warm. PSNR of the whole stack, per-plane PSNR range, mean stop
iteration and seconds, each row in the same process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_dip_spectral import restore

from .common import psnr, table
from .microscopy import Case, cases, record

ROWS = {
    "cold, one batch": dict(warm_start=False),
    "cold, plane by plane": dict(warm_start=False, batch_size=1),
    "warm (default on the CPU)": dict(warm_start=True),
}


def run(case: Case, axes: str, rows: dict, extra: dict) -> list[list]:
    out = []
    for name, options in rows.items():
        started = time.perf_counter()
        result = restore(case.counts, "denoise", device="cpu", axes=axes, **extra, **options)
        seconds = time.perf_counter() - started
        image = case.unit(result.image)
        planes = [psnr(image[i], case.clean[i]) for i in range(len(image))]
        out.append(
            [
                case.name,
                f"{case.photons:g}",
                name,
                f"{psnr(image, case.clean):.2f}",
                f"{min(planes):.2f}-{max(planes):.2f}",
                f"{np.mean(result.plane_stop_iterations):.0f}",
                f"{seconds:.0f}",
            ]
        )
        print(" | ".join(out[-1]), flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", default="5,20,100")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    photons = [float(p) for p in args.photons.split(",")]
    rows = []
    everything = cases(False, photons, args.seed)
    for case in everything:
        if case.axes == "ZYX":
            rows += run(case, "ZYX", ROWS, dict(stack_prior="planes"))
    for ph in photons:
        crops = [c.clean for c in everything if c.axes == "YX" and c.photons == ph and c.clean.shape == (128, 128)]
        series = np.stack(crops)
        case = Case(f"{len(crops)} unrelated images", series, record(series, ph, args.seed), ph, "TYX")
        singles = {k: v for k, v in ROWS.items() if k != "cold, one batch"}
        rows += run(case, "TYX", singles, dict(normalize_per="plane"))
    header = ["case", "photons", "row", "PSNR dB", "planes dB", "mean stop it", "seconds"]
    table("Warm starts against cold starts", header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
