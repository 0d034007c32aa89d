"""Settings of ``restore`` side by side on the fluorescence benchmark's 2-D cases.

    python -m benchmarks.variants --photons 5,20,100 \
        --variant default='{}' --variant 'patience 100={"holdout_patience": 100}'

Every variant runs on the same recordings as ``benchmarks.microscopy`` (three raw crops
and three binned ones of the stardist nuclei image, at each photon level), one after the
other in this process. Prints each case's PSNR, stop iteration and seconds per variant,
then every variant's mean difference from the first.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from napari_dip_spectral import restore

from .common import psnr, table
from .microscopy import cases


def variant(text: str) -> tuple[str, dict]:
    name, _, options = text.partition("=")
    if not name or not options:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON, got {text!r}")
    return name, json.loads(options)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", default="5,20,100", help="photon levels, comma-separated")
    parser.add_argument("--variant", type=variant, action="append", required=True, help="NAME=JSON options")
    parser.add_argument("--only", help="run only cases whose name contains this text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    photons = [float(p) for p in args.photons.split(",")]
    names = [name for name, _ in args.variant]
    rows, values = [], {name: [] for name in names}
    for case in cases(False, photons, args.seed):
        if case.axes != "YX" or (args.only and args.only not in case.name):
            continue
        row = [case.name, f"{case.photons:g}"]
        for name, options in args.variant:
            started = time.perf_counter()
            result = restore(case.counts, "denoise", device="cpu", **options)
            seconds = time.perf_counter() - started
            db = psnr(case.unit(result.image), case.clean)
            values[name].append((db, seconds))
            row.append(f"{db:.2f} dB, it {result.stop_iteration}, {seconds:.0f} s")
        rows.append(row)
        print(" | ".join(row), flush=True)
    table("Variants (PSNR, stop iteration, seconds)", ["case", "photons", *names], rows)
    first = np.array(values[names[0]])
    summary = []
    for name in names[1:]:
        other = np.array(values[name])
        gain, ratio = other[:, 0] - first[:, 0], other[:, 1] / first[:, 1]
        summary.append(
            [name, f"{gain.mean():+.2f}", f"{gain.min():+.2f}", f"{gain.max():+.2f}", f"{np.median(ratio):.2f}x"]
        )
    table(
        f"Against {names[0]}",
        ["variant", "mean dB", "worst dB", "best dB", "median time ratio"],
        summary,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
