"""Does quality hold to the last iteration? Long denoising runs of several configurations at
several image sizes, side by side on the same images, noise and seeds (issue "Beyond the paper").

For each (size, configuration) the denoising images are resized to size x size, degraded with
sigma = 25/255 (seed 0) and fitted together as independent networks in one grouped run. From
the PSNR history (every ``--every`` iterations) it reports, averaged over images and also the
worst image: the peak PSNR and its iteration, the final PSNR and the drop from the peak, the
automatic-stop iteration (where the configuration's own rule fired; runs go on past it), the PSNR there and its
gap to the peak, the PSNR at 4x the stop iteration, and the oscillation (mean |change| of PSNR
between logged iterations over the last 30 % of the run).

    python -m benchmarks.stability --quick            # CPU, minutes: 2 images, 48 px, few configs
    python -m benchmarks.stability --gpu              # GPU, ~2 min: 4 images, 64/128/256 px,
                                                      # default without settling, paper, default

Prints a markdown table per size, writes JSON histories and a PSNR-curve figure to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_dip_spectral.core.config import task_defaults
from napari_dip_spectral.core.driving import drive
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import iterate

from .common import DENOISING, REPO, SHARED_DATA, read_rgb, square

IMAGES = ["image_F16_512rgb.png", "image_Peppers512rgb.png", "image_House256rgb.png", "image_Baboon512rgb.png"]

# name -> (profile, changes). Every configuration uses the power estimator and metrics every
# --every iterations (both measured not to change quality: tests and docs/speed.md), so the
# comparison isolates what each row changes.
CONFIGS = {
    "paper (bilinear, lambda 1.4)": ("paper", {}),
    "paper + output average 0.99": ("paper", {"average": 0.99}),
    "gaussian, lambda 1.8": ("paper", {"upsample": "gaussian", "lipschitz": 1.8}),
    "gaussian 1.8 + average 0.99": ("paper", {"upsample": "gaussian", "lipschitz": 1.8, "average": 0.99}),
    "no Lipschitz control (bilinear)": ("paper", {"lipschitz": None}),
    "paper + data-level head init": ("paper", {"init_output": "data"}),
    "paper + head init + average 0.99": ("paper", {"init_output": "data", "average": 0.99}),
    "gaussian 1.8 + head init + average 0.99": (
        "paper",
        {"upsample": "gaussian", "lipschitz": 1.8, "init_output": "data", "average": 0.99},
    ),
    "paper + head init + warm-up 100": ("paper", {"init_output": "data", "warmup": 100}),
    "gaussian 1.8 + head init": ("paper", {"upsample": "gaussian", "lipschitz": 1.8, "init_output": "data"}),
    "head init, lambda 1.2": ("paper", {"init_output": "data", "lipschitz": 1.2}),
    "head init, lambda 1.0": ("paper", {"init_output": "data", "lipschitz": 1.0}),
    "head init + average 0.99, lambda 1.2": ("paper", {"init_output": "data", "lipschitz": 1.2, "average": 0.99}),
    "head init + average 0.99, lambda 1.0": ("paper", {"init_output": "data", "lipschitz": 1.0, "average": 0.99}),
    "default profile": ("default", {}),
    "head init + average 0.99 + lr decay 500 (lambda 1.4)": (
        "paper",
        {"init_output": "data", "average": 0.99, "lr_decay": 500},
    ),
    "head init + average 0.99 + lr decay 200 (lambda 1.4)": (
        "paper",
        {"init_output": "data", "average": 0.99, "lr_decay": 200},
    ),
    "default, no settling after the stop": ("default", {"settle": 0}),
    "default with the ratio rule only": ("default", {"stop_rule": "ratio"}),
    "default + lambda from the image size": ("default", {"lipschitz_by_size": True}),
}


def load_images(data: Path, names: list[str], size: int, grey: bool = False) -> np.ndarray:
    from skimage import color

    out = []
    for name in names:
        img = square(read_rgb(data / DENOISING / name), size)
        out.append(color.rgb2gray(img)[..., None].astype(np.float32) if grey else img)
    return np.stack(out)  # (G, H, W, 3), or (G, H, W, 1) with grey


def summarise(history, rule_iterations: list[int]) -> list[dict]:
    """Per image: peak, final, where the configuration's own stop rule fired (the solver
    evaluates it with auto_stop off as well) and the PSNR there and at 4x that iteration."""
    its = np.array([h.iteration for h in history])
    psnr = np.array([h.psnr_all for h in history])  # (T, G)
    rows = []
    for g in range(psnr.shape[1]):
        stop = int(rule_iterations[g]) or None
        p = psnr[:, g]
        k = int(p.argmax())
        tail = p[int(len(p) * 0.7) :]

        def at(it, p=p):
            return float(p[np.searchsorted(its, it)]) if it is not None and it <= its[-1] else math.nan

        rows.append(
            dict(
                peak=float(p[k]),
                peak_it=int(its[k]),
                final=float(p[-1]),
                drop=float(p[k] - p[-1]),
                stop=stop,
                at_stop=at(stop),
                gap=float(p[k] - at(stop)) if stop else math.nan,
                at_4x=at(4 * stop) if stop else math.nan,
                osc=float(np.abs(np.diff(tail)).mean()) if len(tail) > 1 else 0.0,
            )
        )
    return rows


def run(images: np.ndarray, profile: str, changes: dict, args) -> tuple[list[dict], list, float]:
    clean = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    rng = np.random.default_rng(0)
    noisy = np.clip(images + rng.normal(0, 25 / 255, images.shape), 0, 1).astype(np.float32)
    obs = torch.from_numpy(noisy.transpose(0, 3, 1, 2).copy())
    config = task_defaults("denoise", profile).replace(
        iterations=args.iterations,
        auto_stop=False,
        sigma_estimator="power",
        metrics_every=args.every,
        device=args.device,
        channels=args.channels,
        seed=0,
        **changes,
    )
    started = time.perf_counter()
    outcome = drive(iterate(obs, Denoise(), config, reference=clean))
    return summarise(outcome.history, outcome.rule_iterations), outcome.history, time.perf_counter() - started


def fmt(v, digits=2):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU-sized run")
    parser.add_argument("--gpu", action="store_true", help="GPU-sized run")
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "stability")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes")
    parser.add_argument("--images", default=None, help="comma-separated indices into the image list")
    parser.add_argument("--configs", default=None, help="comma-separated indices into the config list")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--grey", action="store_true", help="grey versions of the images")
    parser.add_argument("--budget-s", type=float, default=None, help="start no new run after this")
    args = parser.parse_args(argv)
    if args.gpu:
        sizes, names = [128, 64, 256], IMAGES
        args.iterations = args.iterations or 4000
        args.budget_s = args.budget_s or 150
    elif args.quick:
        sizes, names = [48], IMAGES[:2]
        args.iterations = args.iterations or 600
        args.channels = min(args.channels, 32)
    else:
        sizes, names = [64, 128, 256], IMAGES
        args.iterations = args.iterations or 4000
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    if args.images:
        names = [IMAGES[int(i)] for i in args.images.split(",")]
    names = [n for n in names if (args.data / "denoising" / n).exists()]
    if not names:
        print(f"no denoising images under {args.data}; nothing to do")
        return 0
    chosen = list(CONFIGS.items())
    if args.configs:
        chosen = [chosen[int(i)] for i in args.configs.split(",")]
    elif args.quick:
        chosen = [chosen[i] for i in (0, 2, 3, 5)]
    elif args.gpu:  # the default without settling shows its stop, the peak and the slide
        chosen = [chosen[i] for i in (17, 0, 14)]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {}
    print(
        f"# Stability: denoising sigma 25/255, {len(names)} {'grey ' if args.grey else ''}images, "
        f"{args.iterations} iterations, "
        f"channels {args.channels}, metrics every {args.every}, device {args.device}"
    )
    for size in sizes:
        images = load_images(args.data, names, size, args.grey)
        print(f"\n## {size} x {size} px\n")
        print(
            "| configuration | peak PSNR (it) | final | drop mean / worst | auto stop it | at stop "
            "| gap to peak mean / worst | at 4x stop | oscillation | s |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, (profile, changes) in chosen:
            if args.budget_s and time.perf_counter() - started > args.budget_s:
                print(f"| {name} | skipped: time budget spent |")
                continue
            rows, history, seconds = run(images, profile, changes, args)
            mean = {
                k: float(np.nanmean([r[k] for r in rows])) if any(r[k] is not None for r in rows) else math.nan
                for k in ("peak", "peak_it", "final", "drop", "at_stop", "gap", "at_4x", "osc")
            }
            stops = [r["stop"] for r in rows]
            stop_txt = "/".join(str(s) if s else "none" for s in stops)
            worst_drop = max(r["drop"] for r in rows)
            worst_gap = max((r["gap"] for r in rows if not math.isnan(r["gap"])), default=math.nan)
            print(
                f"| {name} | {mean['peak']:.2f} ({mean['peak_it']:.0f}) | {mean['final']:.2f} | "
                f"{mean['drop']:.2f} / {worst_drop:.2f} | {stop_txt} | {fmt(mean['at_stop'])} | "
                f"{fmt(mean['gap'])} / {fmt(worst_gap)} | {fmt(mean['at_4x'])} | {mean['osc']:.3f} | {seconds:.0f} |",
                flush=True,
            )
            print(
                f"KEY stability {size}px {name}: final {mean['final']:.2f} drop {mean['drop']:.2f} "
                f"gap {fmt(mean['gap'])} worst_gap {fmt(worst_gap)}",
                file=sys.stderr,
                flush=True,
            )
            results[f"{size}/{name}"] = dict(
                rows=rows,
                seconds=seconds,
                images=names,
                its=[h.iteration for h in history],
                psnr=[h.psnr_all for h in history],
                ratio=[h.ratio_all for h in history],
                fbc=[h.fbc_all for h in history],
                fit=[h.fit_all for h in history],
                loss=[h.loss_all for h in history],
            )
            (args.out / "stability.json").write_text(json.dumps(results))  # partial results survive
    (args.out / "stability.json").write_text(json.dumps(results))
    plot(results, args.out)
    print(f"\nwrote {args.out / 'stability.json'} in {time.perf_counter() - started:.0f} s")
    return 0


def plot(results: dict, out: Path) -> None:
    from matplotlib.figure import Figure

    sizes = sorted({int(k.split("/")[0]) for k in results})
    if not sizes:
        return
    fig = Figure(figsize=(5 * len(sizes), 3.8), layout="constrained")
    for i, size in enumerate(sizes):
        ax = fig.add_subplot(1, len(sizes), i + 1)
        for key, res in results.items():
            if int(key.split("/")[0]) != size:
                continue
            ax.plot(res["its"], np.mean(res["psnr"], axis=1), label=key.split("/", 1)[1], lw=1.2)
        ax.set(title=f"{size} px: mean PSNR over images", xlabel="iteration", ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(out / "stability_psnr.png", dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
