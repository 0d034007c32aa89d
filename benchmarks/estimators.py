"""Seconds per iteration of the two sigma estimators, side by side in one process.

Only the estimator differs (same decoder, same image, metrics every 10 iterations for both);
iterations of the two runs alternate so a busy machine slows both alike.

    OMP_NUM_THREADS=1 python benchmarks/estimators.py --sizes 64,128 --iterations 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from napari_dip_spectral.core.config import task_defaults  # noqa: E402
from napari_dip_spectral.core.operators import Denoise  # noqa: E402
from napari_dip_spectral.core.solver import iterate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}")
    print("\n| px | exact s/it | power s/it | exact / power |\n|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        obs = torch.rand(1, 3, size, size)
        gens, times = {}, {}
        for estimator in ("exact", "power"):
            config = task_defaults("denoise").replace(
                sigma_estimator=estimator, auto_stop=False, device=args.device,
                iterations=args.warmup + args.iterations + 1)
            gens[estimator] = iterate(obs, Denoise(), config)
            times[estimator] = 0.0
        for step in range(args.warmup + args.iterations):
            for estimator, gen in gens.items():
                started = time.perf_counter()
                next(gen)
                if step >= args.warmup:
                    times[estimator] += time.perf_counter() - started
        exact, power = (times[e] / args.iterations for e in ("exact", "power"))
        print(f"| {size} | {exact:.3f} | {power:.3f} | {exact / power:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
