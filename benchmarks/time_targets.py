"""Time to a result in units that hold across machines, side by side in one run.

    python -m benchmarks.time_targets                       # 128 and 256 px, and a stack
    python -m benchmarks.time_targets --sizes 128 --no-stack \
        --variant 'before={"channels": 128}' --cap-s 1800

Three measures:

* **Overhead per iteration**: the default's iteration (Lipschitz control, metrics every 10,
  output average, stop rule) against a plain decoder of the same width (no control, no
  metrics, plain Adam on the MSE), stepped alternately, one iteration each.
* **Time to result in plain-decoder units**: a grey photo (scikit-image's ``camera``, resized)
  with Gaussian noise of sigma 25/255, restored with ``restore(noisy)`` and nothing else. Its
  wall seconds divided by one iteration of the plain 128-channel decoder at the same size
  (from the overhead measure, in the same process). Each ``--variant NAME=JSON`` adds a row with those options (for
  example the settings of an earlier default); a row still running after ``--cap-s`` seconds
  is cancelled and shown as cut, with the PSNR of its last iterate.
* **A stack against one plane**: 16 planes of the stardist nuclei stack (the fluorescence
  benchmark's recording at 20 photons, ``axes="ZYX"``) with defaults, against its middle
  plane restored alone and against the planes fitted one by one from cold starts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_dip_spectral import restore
from napari_dip_spectral.core.config import SolverConfig
from napari_dip_spectral.engine.validate import build_config

from .common import psnr, table
from .speed import LoopStepper, SolverStepper, side_by_side
from .variants import variant


def noisy_photo(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data, transform

    clean = transform.resize(data.camera().astype(np.float32) / 255, (size, size), anti_aliasing=True)
    clean = clean.astype(np.float32)
    noisy = clean + np.random.default_rng(seed).normal(0, 25 / 255, clean.shape)
    return clean, noisy.astype(np.float32)


def plain_config(channels: int) -> SolverConfig:
    return SolverConfig(channels=channels, lipschitz=None, metrics_every=10**9, device="cpu")


def overhead(size: int, channels: int, timed: int) -> tuple[float, float]:
    """Seconds per iteration of the plain decoder and of the default, same width."""
    obs = torch.from_numpy(noisy_photo(size)[1].clip(0, 1))[None, None]
    default = build_config("denoise", "default").replace(
        channels=channels, auto_stop=False, iterations=10**6, device="cpu"
    )
    plain = LoopStepper("plain", obs, plain_config(channels), torch.device("cpu"))
    ours = SolverStepper("default", obs, default)
    try:
        return tuple(side_by_side([plain, ours], warmup=30, timed=timed, block=1, device=torch.device("cpu")))
    finally:
        ours.close()


def capped(cap_s: float):
    started = time.perf_counter()
    return lambda event: time.perf_counter() - started < cap_s


def photo_rows(size: int, variants: dict, unit: float, cap_s: float) -> list[list]:
    clean, noisy = noisy_photo(size)
    rows = []
    for name, options in variants.items():
        started = time.perf_counter()
        result = restore(noisy, "denoise", device="cpu", callback=capped(cap_s), **options)
        seconds = time.perf_counter() - started
        image = np.clip(result.image, 0, 1)
        stop = "cut at the cap" if result.stop_reason == "cancelled" else result.stop_reason
        rows.append(
            [
                f"{size}",
                name,
                f"{result.config.channels}",
                f"{psnr(image, clean):.2f}",
                f"{result.iterations}",
                stop,
                f"{seconds:.0f}",
                f"{seconds / unit:.0f}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


def stack_rows(planes: int, photons: float) -> list[list]:
    from .microscopy import cases

    case = next(c for c in cases(False, [photons], 0) if c.axes == "ZYX")
    z0 = (len(case.counts) - planes) // 2
    counts, clean = case.counts[z0 : z0 + planes], case.clean[z0 : z0 + planes]
    mid = planes // 2
    runs = {
        "middle plane alone": (counts[mid], clean[mid], {}),
        "stack, defaults": (counts, clean, dict(axes="ZYX")),
        "stack, one volume decoder": (counts, clean, dict(axes="ZYX", stack_prior="volume")),
        "stack, planes from cold starts": (
            counts,
            clean,
            dict(axes="ZYX", stack_prior="planes", warm_start=False, batch_size=1),
        ),
        "stack, planes from warm starts": (counts, clean, dict(axes="ZYX", stack_prior="planes", warm_start=True)),
    }
    rows, alone = [], None
    for name, (data, truth, options) in runs.items():
        started = time.perf_counter()
        result = restore(data, "denoise", device="cpu", **options)
        seconds = time.perf_counter() - started
        alone = seconds if alone is None else alone
        rows.append([name, f"{psnr(case.unit(result.image), truth):.2f}", f"{seconds:.0f}", f"{seconds / alone:.1f}x"])
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="128,256", help="photo sides in pixels, comma-separated ('' for the stack rows only)"
    )
    parser.add_argument("--variant", type=variant, action="append", default=[], help="NAME=JSON options")
    parser.add_argument("--cap-s", type=float, default=1800.0, help="cancel a photo row after this many seconds")
    parser.add_argument("--timed", type=int, default=20, help="timed iterations per overhead measure")
    parser.add_argument("--no-stack", dest="stack", action="store_false")
    parser.add_argument("--stack-planes", type=int, default=16)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    variants = {"default": {}, **dict(args.variant)}
    over, photos = [], []
    for size in sizes:
        for channels in sorted({128, build_config("denoise", "default").channels}):
            plain, ours = overhead(size, channels, args.timed)
            over.append([f"{size}", f"{channels}", f"{plain * 1e3:.0f}", f"{ours * 1e3:.0f}", f"{ours / plain:.2f}x"])
            print(" | ".join(over[-1]), flush=True)
            if channels == 128:
                unit = plain  # the unit: the plain 128-channel decoder's iteration, timed alongside
        photos += photo_rows(size, variants, unit, args.cap_s)
    if sizes:
        report(over, photos)
    if args.stack:
        table(
            f"A {args.stack_planes}-plane stack against one plane (nuclei, 20 photons)",
            ["run", "PSNR dB", "seconds", "time / one plane"],
            stack_rows(args.stack_planes, 20.0),
        )
    return 0


def report(over: list[list], photos: list[list]) -> None:
    table(
        "Overhead per iteration (default against a plain decoder of the same width)",
        ["px", "channels", "plain ms/it", "default ms/it", "ratio"],
        over,
    )
    table(
        "Time to result, grey photo, sigma 25 (units: iterations of the plain 128-channel decoder)",
        ["px", "row", "channels", "PSNR dB", "iterations", "stop", "seconds", "units"],
        photos,
    )


if __name__ == "__main__":
    raise SystemExit(main())
