"""The paper's two signature figures on one denoising image: FBC per frequency band over the
iterations, and PSNR over the iterations, for the Lipschitz-controlled decoder (paper profile,
lambda = 1.4) and the same decoder without control (lambda = inf).

    python -m benchmarks.figures                      # F16 at 64x64, 1500 iterations, 64 channels
    python -m benchmarks.figures --size 256 --iterations 10000 --channels 128   # paper scale (GPU)

Writes docs/images/fbc_controlled_vs_uncontrolled.png and psnr_controlled_vs_uncontrolled.png
(``--images``) and the per-iteration CSV logs under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from napari_dip_spectral.api import restore
from napari_dip_spectral.degradations import degrade

from .common import SHARED_DATA, psnr, read_rgb, square
from .quality import write_log
from .stop_replay import replay_stop

BAND_COLOURS = ["#4a2106", "#8c4a0c", "#c8741a", "#eda046", "#fbd08a"]  # band 1 dark -> 5 light
RUNS = {"controlled (lambda = 1.4)": None, "uncontrolled (lambda = inf)": float("inf")}


def fbc_figure(results: dict, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(results), sharey=True)
    for ax, (name, result) in zip(axes, results.items()):
        its = [e.iteration for e in result.history]
        fbc = np.array([e.fbc for e in result.history])
        for k in range(fbc.shape[1]):
            ax.plot(
                its,
                fbc[:, k],
                color=BAND_COLOURS[k % 5],
                lw=1.4,
                label=f"band {k + 1}" + (" (lowest)" if k == 0 else " (highest)" if k == fbc.shape[1] - 1 else ""),
            )
        peak = max(result.history, key=lambda e: e.psnr)
        ax.axvline(peak.iteration, color="green", lw=1, ls="--", label=f"peak PSNR (it {peak.iteration})")
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("FBC (H̄) vs the noisy image")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def psnr_figure(results: dict, stops: dict, noisy_psnr: float, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    for (name, result), colour in zip(results.items(), ("tab:blue", "tab:red")):
        its = [e.iteration for e in result.history]
        ax.plot(its, [e.psnr for e in result.history], color=colour, lw=1.4, label=name)
        peak = max(result.history, key=lambda e: e.psnr)
        ax.plot(peak.iteration, peak.psnr, "o", color=colour, ms=5)
        if stops[name] is not None:
            ax.axvline(stops[name], color=colour, lw=0.8, ls=":", label=f"auto stop (it {stops[name]})")
    ax.axhline(noisy_psnr, color="grey", lw=0.8, ls="--", label=f"noisy input ({noisy_psnr:.2f} dB)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR vs clean (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    fig.savefig(path)


def read_log(path: Path) -> list[SimpleNamespace]:
    """A CSV log written by :func:`quality.write_log` back as history entries."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    bands = sorted((k for k in rows[0] if k.startswith("fbc_")), key=lambda k: int(k[4:]))
    return [
        SimpleNamespace(
            iteration=int(r["iteration"]),
            psnr=float(r["psnr"]),
            ratio=float(r["ratio"]),
            ratio_all=None,
            fbc=[float(r[k]) for k in bands],
        )
        for r in rows
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--image", default="denoising/image_F16_512rgb.png")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", default="docs/images")
    parser.add_argument("--out", default="results/figures")
    parser.add_argument("--from-logs", action="store_true", help="redraw from the CSV logs in --out instead of running")
    args = parser.parse_args(argv)
    path = Path(args.data) / args.image
    if not path.is_file():
        print(f"[skip] no image {path}")
        return 1
    clean = square(read_rgb(path), args.size)
    noisy = degrade(clean, "denoise", sigma=25 / 255, seed=0).image
    noisy_psnr = psnr(noisy, clean)
    results, stops = {}, {}
    for name, lipschitz in RUNS.items():
        log = Path(args.out) / f"{path.stem}_{'controlled' if lipschitz is None else 'uncontrolled'}.csv"
        if args.from_logs:
            history = read_log(log)
            results[name] = SimpleNamespace(history=history)
            stops[name] = replay_stop(history, 100, 0.01)  # paper profile: window 100, eps 0.01, every 1
            continue
        t0 = time.perf_counter()
        result = restore(
            noisy,
            "denoise",
            profile="paper",
            lipschitz=lipschitz,
            auto_stop=False,
            iterations=args.iterations,
            channels=args.channels,
            device=args.device,
            reference=clean,
            normalize="none",
            seed=0,
        )
        results[name] = result
        stops[name] = replay_stop(
            result.history, result.config.stop_window, result.config.stop_epsilon, result.config.metrics_every
        )
        write_log(log, result.history)
        peak = max(result.history, key=lambda e: e.psnr)
        print(
            f"{name}: {time.perf_counter() - t0:.0f} s; PSNR at {args.iterations}: "
            f"{result.history[-1].psnr:.2f} dB, peak {peak.psnr:.2f} dB at {peak.iteration}, "
            f"auto stop at {stops[name]}",
            flush=True,
        )
    setting = f"{path.stem} {args.size}x{args.size}, sigma 25/255, paper profile, {args.channels} channels"
    images = Path(args.images)
    fbc_figure(results, images / "fbc_controlled_vs_uncontrolled.png", f"FBC per band: {setting}")
    psnr_figure(results, stops, noisy_psnr, images / "psnr_controlled_vs_uncontrolled.png", f"PSNR: {setting}")
    print(f"wrote {images}/fbc_controlled_vs_uncontrolled.png, psnr_controlled_vs_uncontrolled.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
