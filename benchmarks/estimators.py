"""The sigma estimators of the Lipschitz bound: their cost per iteration, side by side in one
process, and (``--accuracy``) how closely the power estimator's clip follows the exact one.

Timing: only the estimator differs (same decoder, same image, metrics every 10 iterations);
iterations of the runs alternate so a busy machine slows all alike. Variants: ``exact``
(an SVD per layer per call) and ``power`` with 1, 4 (the default) and 8 warm vectors.

Accuracy: a 64 px fit (Adam, lr 1e-3) of the decoder with the power estimator; after every
step the clip each layer applied, ``max(1, sigma_estimate / lambda)``, is compared with the
clip of the exact SVD of the same weights; the table gives the worst relative difference per
window of steps, for one vector without an exact start (the estimator of earlier versions),
four vectors without it, and the default (four vectors, exact for the first 25 calls).

    OMP_NUM_THREADS=2 python -m benchmarks.estimators --sizes 64,128 --iterations 20
    OMP_NUM_THREADS=2 python -m benchmarks.estimators --accuracy --channels 64,128 --steps 120
"""

from __future__ import annotations

import argparse
import time

import torch

from napari_dip_spectral.core.config import task_defaults
from napari_dip_spectral.core.network import Decoder, DecoderSpec, fourier_input
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import iterate

from .common import alternate

TIMING_VARIANTS = (
    ("exact", "exact", 1),
    ("power, 1 vector", "power", 1),
    ("power, 4 vectors (default)", "power", 4),
    ("power, 8 vectors", "power", 8),
)
ACCURACY_VARIANTS = (
    ("1 vector, no exact start", 1, 0),
    ("4 vectors, no exact start", 4, 0),
    ("4 vectors, exact for 25 calls (default)", 4, 25),
)


def timing(args) -> None:
    names = [name for name, *_ in TIMING_VARIANTS]
    print("\n| px | " + " | ".join(f"{n} ms/it" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for size in (int(s) for s in args.sizes.split(",")):
        obs = torch.rand(1, 3, size, size)
        gens = []
        for _, estimator, block in TIMING_VARIANTS:
            config = task_defaults("denoise").replace(
                sigma_estimator=estimator,
                power_block=block,
                auto_stop=False,
                device=args.device,
                iterations=args.warmup + args.iterations + 1,
            )
            gens.append(iterate(obs, Denoise(), config))
        times = alternate([lambda gen=gen: next(gen) for gen in gens], args.iterations, args.warmup)
        cells = [f"{t * 1e3:.1f}" for t in times]
        print(f"| {size} | " + " | ".join(cells) + " |", flush=True)


def clip_errors(channels: int, block: int, exact_first: int, steps: int) -> list[float]:
    """Per step: the worst relative difference between the clip the power estimator applied
    and the exact clip, over the decoder's bounded layers."""
    spec = DecoderSpec(
        out_channels=3,
        channels=channels,
        lipschitz=1.4,
        sigma_estimator="power",
        power_block=block,
        power_exact_first=exact_first,
    )
    torch.manual_seed(1)
    net = Decoder(spec)
    z, target = fourier_input(spec, 64, 64), torch.rand(1, 3, 64, 64)
    bounded = [(conv, conv.parametrizations.weight[0]) for conv in net.modules() if hasattr(conv, "parametrizations")]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    errors = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        (net(z) - target).pow(2).mean().backward()
        worst = 0.0
        with torch.no_grad():
            for conv, bound in bounded:
                w = conv.parametrizations.weight.original.double()
                exact = torch.linalg.svdvals(w.reshape(1, w.shape[0], -1))[:, 0]
                clip_est = (bound.sigma.double() / bound.lipschitz).clamp(min=1)
                clip_exact = (exact / bound.lipschitz).clamp(min=1)
                worst = max(worst, float(((clip_est - clip_exact) / clip_exact).abs().max()))
        errors.append(worst)
        opt.step()
    return errors


def accuracy(args, window: int = 20) -> None:
    windows = [(a, min(a + window, args.steps)) for a in range(0, args.steps, window)]
    print("\nWorst relative error of the applied clip, per window of steps")
    print("\n| channels | estimator | " + " | ".join(f"{a}-{b}" for a, b in windows) + " |")
    print("|---|---|" + "---|" * len(windows))
    for channels in (int(c) for c in args.channels.split(",")):
        for name, block, exact_first in ACCURACY_VARIANTS:
            errors = clip_errors(channels, block, exact_first, args.steps)
            cells = [f"{max(errors[a:b]):.1e}" for a, b in windows]
            print(f"| {channels} | {name} | " + " | ".join(cells) + " |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=30, help="untimed iterations first (past the exact start)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--channels", default="64,128", help="--accuracy: decoder widths")
    parser.add_argument("--steps", type=int, default=120, help="--accuracy: Adam steps")
    args = parser.parse_args(argv)
    print(
        f"# estimators.py: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}"
    )
    if args.accuracy:
        accuracy(args)
    else:
        timing(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
