"""The steps after a denoising fit, replayed on kept fits: what a change there is worth, in
minutes instead of a whole benchmark run.

    python -m benchmarks.after_fit keep --images held-out --photons 20,100 --out kept/
    python -m benchmarks.after_fit compare kept/

``keep`` runs the default on the fluorescence cases of ``benchmarks.microscopy`` (the same
images, photon levels and seeds) and saves, per case, the fit's output as the steps after it
receive it (before ``refinement.refine``) with the counts and the clean image. The fits are
the slow part; the steps after them take seconds. ``compare`` rebuilds each case's job (the
noise model is estimated again, the same way) and runs those steps on the kept output once
per variant: the default, without the boost, and other weights of the estimate that the
decoder does not guide. It checks that the default reproduces the kept result, then prints
dB against the clean image, per case and as means per photon level. The variants are the
keyword arguments of ``refinement.refine.refine``; add one to ``VARIANTS`` to try it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .common import table
from .microscopy import Case, cases, held_out_cases, psnr

# name -> keyword arguments of refinement.refine.refine (the first is the default)
VARIANTS = {
    "default": {},
    "no boost": {"boost": False},
    "share 1/4": {"threshold": 0.25},
    "share 3/4": {"threshold": 0.75},
}


def _job(case: Case, **options):
    from napari_dip_spectral.engine.job import RestoreJob

    axes = None if case.axes == "YX" else case.axes
    return RestoreJob(case.counts, "denoise", device="cpu", axes=axes, **options)


def keep(chosen: list[Case], folder: Path, **options) -> list[Path]:
    """Run the default on each case, keeping what the steps after the fit receive; one
    ``.npz`` per case in ``folder``. ``options`` go to the job (a test shortens the fit)."""
    import napari_dip_spectral.engine.job as job_module

    folder.mkdir(parents=True, exist_ok=True)
    original, seen, paths = job_module.refine, {}, []

    def hook(job, state):
        seen["out"] = state.out.copy()
        original(job, state)

    job_module.refine = hook
    try:
        for i, case in enumerate(chosen):
            result = _job(case, **options).restore()
            path = folder / f"{i:03d}.npz"
            np.savez_compressed(
                path,
                name=case.name,
                photons=case.photons,
                axes=case.axes,
                clean=case.clean,
                counts=case.counts,
                kept=seen.pop("out"),
                result=result.image,
                options=json.dumps(options),
            )
            print(f"kept {case.name} at {case.photons:g} photons: {psnr(case.unit(result.image), case.clean):.2f} dB")
            paths.append(path)
    finally:
        job_module.refine = original
    return paths


def replay(path: Path, variants: dict[str, dict]) -> tuple[Case, dict[str, float], float]:
    """One kept case: (the case, dB per variant, the largest difference between the image of
    the variant without arguments, the job's own steps, and the kept result, which should be
    float rounding). The job is built again with the options ``keep`` was given."""
    from napari_dip_spectral.refinement.refine import refine

    saved = np.load(path)
    case = Case(str(saved["name"]), saved["clean"], saved["counts"], float(saved["photons"]), str(saved["axes"]))
    job = _job(case, **json.loads(str(saved["options"])))
    scores, drift = {}, 0.0
    for name, kwargs in variants.items():
        state = SimpleNamespace(out=saved["kept"].copy(), cancelled=False, nlm_share=0.0, wiener=False)
        refine(job, state, **kwargs)
        image = job.to_output(state.out)
        if not kwargs:
            drift = float(np.max(np.abs(image - saved["result"])))
        scores[name] = psnr(case.unit(image), case.clean)
    return case, scores, drift


def compare(folder: Path, variants: dict[str, dict] = VARIANTS) -> dict[str, dict[str, float]]:
    """Replay every kept case in ``folder``; print the tables; the dB per case and variant."""
    rows, means, out = [], defaultdict(list), {}
    names = list(variants)
    for path in sorted(folder.glob("*.npz")):
        case, scores, drift = replay(path, variants)
        if drift > 1e-3 * max(1.0, float(np.ptp(case.counts))):
            print(f"warning: {case.name} at {case.photons:g} photons: the default is {drift:.3g} off the kept result")
        base = scores[names[0]]
        rows.append([case.name, f"{case.photons:g}", f"{base:.2f}"] + [f"{scores[n] - base:+.2f}" for n in names[1:]])
        means[f"{case.photons:g}"].append([scores[n] - base for n in names[1:]])
        out[f"{case.name}@{case.photons:g}"] = scores
    header = ["case", "photons", f"{names[0]} (dB)"] + [f"{n} - {names[0]}" for n in names[1:]]
    table("Per case", header, rows)
    summary = [[ph, str(len(v))] + [f"{x:+.3f}" for x in np.mean(v, axis=0)] for ph, v in means.items()]
    table("Mean per photon level", ["photons", "cases"] + [f"{n} - {names[0]}" for n in names[1:]], summary)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keep", help="run the default and keep the fits")
    k.add_argument("--images", choices=("stardist", "held-out"), default="held-out")
    k.add_argument("--photons", default="20,100", help="photons at full scale, comma-separated")
    k.add_argument("--quick", action="store_true", help="the calibration set's quick cases")
    k.add_argument("--only", choices=("2d", "3d"), help="only the 2-D or the stack cases")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare", help="replay the kept fits with each variant")
    c.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "compare":
        compare(args.folder)
        return 0
    photons = [float(p) for p in args.photons.split(",")]
    chosen = held_out_cases(photons, args.seed) if args.images == "held-out" else cases(args.quick, photons, args.seed)
    chosen = [c for c in chosen if not args.only or (c.axes == "ZYX") == (args.only == "3d")]
    keep(chosen, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
