"""Before / after figure for docs/beyond_the_paper.md from stability.py results.

    python -m benchmarks.stability_figure results/v64/stability.json results/v64p/stability.json \
        --out docs/images/stability_64px.png

One panel per image: the PSNR curve of every configuration in the given files (same size),
with each configuration's automatic stop marked; a lower panel row shows the FBC of the
highest band (noise being fitted shows as a rise) when logged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runs = {}
    for f in args.files:
        for key, res in json.loads(f.read_text()).items():
            if isinstance(res, dict) and "psnr" in res:
                runs[key] = res
    if not runs:
        raise SystemExit("no runs in the given files")
    from matplotlib.figure import Figure

    images = next(iter(runs.values()))["images"]
    fig = Figure(figsize=(3.6 * len(images), 5.6), layout="constrained")
    axes = fig.subplots(2, len(images), squeeze=False, sharex="col")
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange"]
    for c, (key, res) in enumerate(runs.items()):
        size, name = key.split("/", 1)
        its = np.array(res["its"])
        psnr = np.array(res["psnr"])
        fbc = np.array(res["fbc"]) if res.get("fbc") else None  # (T, G, bands)
        for g, image in enumerate(res["images"]):
            if image not in images:
                continue
            col = images.index(image)
            ax = axes[0, col]
            ax.plot(its, psnr[:, g], color=colours[c % 5], lw=1.2, label=name)
            stop = res["rows"][g]["stop"]
            if stop:
                k = int(np.searchsorted(its, stop))
                ax.plot([stop], [psnr[k, g]], "o", color=colours[c % 5], ms=6)
            ax.set(
                title=f"{image.split('_')[1].replace('512rgb.png', '').replace('256rgb.png', '')}, {size} px",
                ylabel="PSNR (dB)",
            )
            ax.grid(alpha=0.3)
            if fbc is not None:
                axes[1, col].plot(its, fbc[:, g, -1], color=colours[c % 5], lw=1.0)
                axes[1, col].set(xlabel="iteration", ylabel="FBC, highest band")
                axes[1, col].grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle("PSNR and highest-frequency FBC over iterations; dots: automatic stop", fontsize=10)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
