"""``dip-spectral demo -o OUTDIR`` (or ``python -m napari_dip_spectral.demo -o OUTDIR``):
denoise a bundled sample headless and write what the CLI writes.

The sample is scikit-image's ``camera`` downscaled to 128 x 128, with Gaussian noise of
sigma 25/255 from ``degrade(seed=0)``. A narrower network (64 channels) and at most 800
iterations keep it short enough to run on a CPU (a measured run: docs/stacks.md, "Command
line"); ``--channels 128 --iterations 3000`` runs the full-size configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def sample() -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) float32 128 x 128 images in [0, 1]."""
    from skimage import data, transform

    from .degradations import degrade

    clean = transform.resize(data.camera().astype(np.float32) / 255, (128, 128), anti_aliasing=True).astype(np.float32)
    return clean, degrade(clean, "denoise", sigma=25 / 255, seed=0).image


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """The solver's PSNR of one image, in float64 (the record keeps three decimals)."""
    import torch

    from .core.solver import psnr as plane_psnr

    return float(
        plane_psnr(
            torch.from_numpy(np.asarray(x, np.float64))[None], torch.from_numpy(np.asarray(ref, np.float64))[None]
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="dip-spectral demo",
        description="Denoise a bundled 128x128 sample and write the result, FBC and stopping plots and a run record.",
    )
    p.add_argument("-o", "--output-dir", required=True, type=Path, help="folder for the results")
    p.add_argument("--iterations", type=int, default=800, help="iteration budget (default 800)")
    p.add_argument("--channels", type=int, default=64, help="decoder channels (default 64)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    from PIL import Image

    from .api import restore
    from .files import write_atomic
    from .plots import save_plots
    from .provenance import versions

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    clean, noisy = sample()
    started = time.perf_counter()
    result = restore(
        noisy,
        "denoise",
        iterations=args.iterations,
        channels=args.channels,
        device=args.device,
        seed=args.seed,
        reference=clean,
        normalize="none",
    )
    seconds = time.perf_counter() - started
    for name, img in (("noisy", noisy), ("restored", result.image)):
        pil = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
        write_atomic(out / f"demo_{name}.png", lambda tmp, pil=pil: pil.save(tmp, format="PNG"))
    import tifffile

    write_atomic(out / "demo_restored.tif", lambda tmp: tifffile.imwrite(tmp, result.image))
    save_plots(result.history, out, "demo", result.stop_iteration)
    before, after = psnr(noisy, clean), psnr(result.image, clean)
    record = {
        "task": "denoise",
        "sample": "skimage camera 128x128, sigma 25/255, degrade(seed=0)",
        "iterations": result.iterations,
        "channels": args.channels,
        "seed": args.seed,
        "device": result.device,
        "stop_reason": result.stop_reason,
        "stop_iteration": result.stop_iteration,
        "seconds": round(seconds, 2),
        "psnr_noisy": round(before, 3),
        "psnr_restored": round(after, 3),
        "versions": versions(),
        "history": [{"iteration": h.iteration, "fbc": h.fbc, "ratio": h.ratio, "psnr": h.psnr} for h in result.history],
    }
    write_atomic(out / "demo_record.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
    print(
        f"PSNR noisy {before:.2f} dB -> restored {after:.2f} dB "
        f"({result.iterations} iterations, {result.stop_reason}, {seconds:.0f} s on {result.device})"
    )
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
