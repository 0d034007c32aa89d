"""Faithfulness benchmark: our restorations vs the degraded input, classical baselines, the
decoder without Lipschitz control and the paper's digitised numbers, on the paper's images.

    python -m benchmarks.quality --quick              # 2-core CPU, < 15 min
    python -m benchmarks.quality --gpu --data DIR     # representative subset, ~3 min on an H100
    python -m benchmarks.quality --data ../shared/data  # everything, full size (GPU)

Each DIP run uses ``auto_stop=False`` and a fixed budget, logs PSNR against the clean image,
FBC and the stop ratio, and notes where the solver's stopping rule fired (the solver
evaluates it with auto_stop off too), so one run gives: PSNR at the automatic stop (and its iteration), at the
budget, and the run's peak. Tables go to stdout and ``--out`` (tables.md, results.json,
per-iteration CSV logs, images). Imports only numpy, scipy, scikit-image, Pillow, torch and
our package (bm3d if present; no napari, no dask), so it runs on the GPU machine.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from napari_dip_spectral.core.driving import drive
from napari_dip_spectral.engine.job import RestoreJob
from napari_dip_spectral.engine.validate import build_config

from .baselines import BM3D_AVAILABLE, baselines_for
from .common import SHARED_DATA, psnr, psnr_y, ssim, timed
from .datasets import Case, Selection, load_cases

TASK_ORDER = ("denoise", "deblock", "inpaint", "super_resolution", "enhance")

# method name -> options for restore(); the same seed (0) and budget for all three
VARIANTS = {
    "ours (paper profile)": {"profile": "paper"},
    "ours (default profile)": {"profile": "default"},
    "no Lipschitz control (paper profile, lambda=inf)": {"profile": "paper", "lipschitz": float("inf")},
}

PROTOCOL = (
    "PSNR/SSIM: float images in [0, 1], data range 1, all channels, no border crop "
    "(the authors' protocol); super-resolution also PSNR-Y: BT.601 studio-range luma, "
    "4-pixel border removed (DIP's SR protocol). DIP rows: PSNR/SSIM at the fixed budget; "
    "'stop' = where the automatic stop rule fires (the solver evaluates it in the same "
    "run, auto stop off); 'peak' = the best logged PSNR of the run (an oracle)."
)

# method.md section 8.2, F-1 (digitised from the authors' figure; full-size images, 20k
# iterations): (ours stop iter, ours PSNR at stop, ours at 20k, DIP peak, DIP peak iter,
# DIP at 20k, Deep Decoder at 20k, Cheng et al. at 20k)
PAPER_F1 = {
    "Baboon": (8000, 24.5, 24.7, 23.8, 5700, 23.3, 22.3, 23.2),
    "F16": (3900, 30.8, 31.0, 29.8, 2700, 22.8, 27.0, 30.3),
    "House": (2100, 31.1, 31.6, 29.7, 1100, 20.6, 26.0, 29.3),
    "Lena": (3500, 30.7, 31.0, 29.9, 2700, 23.0, 28.3, 29.9),
    "Peppers": (2500, 29.6, 30.0, 28.9, 2700, 23.3, 26.9, 29.0),
    "Kodim01": (5200, 27.3, 27.6, 26.4, 3500, 23.4, 24.8, 26.1),
    "Kodim02": (4600, 30.1, 30.4, 30.3, 2200, 23.4, 28.3, 30.1),
    "Kodim03": (3600, 30.9, 31.2, 31.5, 2700, 23.6, 28.2, 29.9),
    "Kodim12": (3400, 30.4, 30.6, 30.9, 3100, 23.4, 28.3, 29.6),
}


@dataclass(frozen=True)
class Settings:
    """How the DIP runs are sized; ``None`` keeps the profile's own value."""

    mode: str
    iterations: int | None = None  # budget for every task but enhancement (100)
    channels: int | None = None
    device: str = "auto"
    precision: str | None = None  # None: the profile's
    selection: Selection = field(default_factory=Selection)


MODES = {
    "quick": Settings(
        "quick",
        iterations=350,
        channels=32,
        device="cpu",
        selection=Selection(
            denoise=("F16", "House", "Peppers"),
            deblock=("barbara", "lena"),
            qualities=(10,),
            inpaint=("Cameraman256", "house"),
            super_resolution=("CSet5/butterfly",),
            factors=(4,),
            shrink_to=128,
            crop=64,
        ),
    ),
    # measured on an H100 at 256x256, 128 channels (2026-11-26): paper profile ~60 ms/iteration
    # (exact SVD every step), default ~17 ms, lambda=inf ~11 ms, so ~0.09 s per case-iteration:
    # 5 cases x 400 iterations + enhancement is about 3 minutes. --iterations 2000: ~15 min.
    "gpu": Settings(
        "gpu",
        iterations=400,
        channels=None,
        selection=Selection(
            denoise=("F16", "House"),
            deblock=("lena",),
            qualities=(10,),
            inpaint=("Cameraman256",),
            super_resolution=("CSet5/butterfly",),
            factors=(4,),
            crop=256,
        ),
    ),
    "full": Settings("full"),
}


@dataclass
class Row:
    """One (case, method) line of a table; DIP-only fields stay None for other methods."""

    task: str
    group: str
    case: str
    method: str
    kind: str  # input | baseline | dip | paper
    psnr: float | None = None
    ssim: float | None = None
    psnr_y: float | None = None
    stop_iteration: int | None = None
    psnr_stop: float | None = None
    ssim_stop: float | None = None
    psnr_y_stop: float | None = None
    peak_psnr: float | None = None
    peak_iteration: int | None = None
    iterations: int | None = None
    seconds: float | None = None
    extra: dict = field(default_factory=dict)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:80]


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)


def write_log(path: Path, history) -> None:
    """Per-iteration CSV: iteration, loss, psnr, ratio, fbc_1..fbc_n."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(history[0].fbc) if history else 0
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["iteration", "loss", "psnr", "ratio"] + [f"fbc_{k + 1}" for k in range(n)])
        for e in history:
            out.writerow(
                [e.iteration, f"{e.loss:.6g}", "" if e.psnr is None else f"{e.psnr:.4f}", f"{e.ratio:.9g}"]
                + [f"{v:.5f}" for v in e.fbc]
            )


def _scores(case: Case, image: np.ndarray) -> dict:
    scores = {"psnr": psnr(image, case.clean), "ssim": ssim(image, case.clean)}
    if case.task == "super_resolution":
        scores["psnr_y"] = psnr_y(image, case.clean)
    return scores


def _enhance_metrics(case: Case, image: np.ndarray) -> dict:
    """FBC of the enhanced image against the input, MLV sharpness and blur before/after."""
    import torch

    from napari_dip_spectral.core.spectral import fbc_bands
    from napari_dip_spectral.core.stopping import mlv_sharpness, perceptual_blur

    def planes(a):
        return torch.from_numpy(np.ascontiguousarray(np.atleast_3d(a).transpose(2, 0, 1))).float()

    x, e = planes(case.observed), planes(image)
    return {
        "fbc_vs_input": [round(float(v), 4) for v in fbc_bands(e, x)],
        "sharpness_before": float(mlv_sharpness(x)[0]),
        "sharpness_after": float(mlv_sharpness(e)[0]),
        "blur_before": float(perceptual_blur(x)[0]),
        "blur_after": float(perceptual_blur(e)[0]),
    }


def run_dip(case: Case, method: str, options: dict, settings: Settings, out: Path | None) -> Row:
    """One fixed-budget run with PSNR logging; notes where the solver's stop rule fired."""
    run_opts = dict(options, channels=settings.channels, device=settings.device, seed=0, auto_stop=False)
    if settings.precision is not None:
        run_opts["precision"] = settings.precision
    if case.task != "enhance":
        run_opts["iterations"] = settings.iterations
    profile = run_opts.pop("profile")
    config = build_config(case.task, profile, **run_opts)
    run_opts["preview_every"] = config.metrics_every  # keep the image where the rule fires
    reference = None if case.task == "enhance" else case.clean
    job = RestoreJob(
        case.observed,
        case.task,
        mask=case.mask,
        factor=case.factor,
        reference=reference,
        profile=profile,
        normalize="none",
        **run_opts,
    )
    kept: dict[str, np.ndarray] = {}
    fired: dict[str, int] = {}

    def watch(event):
        # the solver evaluates its stop rule (the profile's: ratio, or noise level for the
        # default's denoising) even with auto_stop off; event.stopped says it has fired
        if event.log is not None and event.stopped and "it" not in fired:
            fired["it"] = event.iteration
            if event.preview is not None:
                kept["stop"] = job.to_output(event.preview)

    result = drive(job.run(), watch)
    if not result.finished:
        raise RuntimeError(f"{case.label} {method}: the run did not finish")
    row = Row(
        case.task,
        case.group,
        case.name,
        method,
        "dip",
        iterations=result.iterations,
        seconds=round(result.seconds, 1),
        extra={
            "profile": profile,
            "lambda": config.lipschitz,
            "channels": config.channels,
            "metrics_every": config.metrics_every,
            "stop_window": config.stop_window,
            "stop_epsilon": config.stop_epsilon,
            "device": result.device,
            # the result averages in non-local means and has the Wiener pass after the fit; the
            # peak is the decoder's own
            "nlm_share": result.nlm_share,
            "wiener": result.wiener,
        },
    )
    if fired and "stop" not in kept:
        kept["stop"] = result.image  # fired on the last iteration
    if case.task == "enhance":
        row.extra.update(_enhance_metrics(case, result.image))
        row.extra["fbc_fit_final"] = [round(v, 4) for v in result.history[-1].fbc]
    else:
        final = _scores(case, result.image)
        row.psnr, row.ssim, row.psnr_y = final["psnr"], final["ssim"], final.get("psnr_y")
        logged = [(e.psnr, e.iteration) for e in result.history if e.psnr is not None]
        row.peak_psnr, row.peak_iteration = max(logged)
        row.stop_iteration = fired.get("it")
        stop = _scores(case, kept["stop"]) if "stop" in kept else final
        row.psnr_stop, row.ssim_stop, row.psnr_y_stop = stop["psnr"], stop["ssim"], stop.get("psnr_y")
    print(f"  {method}: {result.iterations} iterations in {result.seconds:.1f} s on {result.device}", flush=True)
    if out is not None:
        write_log(out / "logs" / f"{_slug(case.label)}__{_slug(method)}.csv", result.history)
        _save_png(out / "images" / _slug(case.label) / f"{_slug(method)}.png", result.image)
    return row


def run_baselines(case: Case, out: Path | None) -> list[Row]:
    rows = []
    for method, restore_fn in baselines_for(case).items():
        image, seconds = timed(restore_fn)
        image = np.clip(image, 0, 1).astype(np.float32)
        row = Row(case.task, case.group, case.name, method, "baseline", seconds=round(seconds, 1))
        if case.task == "enhance":
            row.extra.update(_enhance_metrics(case, image))
        else:
            scores = _scores(case, image)
            row.psnr, row.ssim, row.psnr_y = scores["psnr"], scores["ssim"], scores.get("psnr_y")
        if out is not None:
            _save_png(out / "images" / _slug(case.label) / f"{_slug(method)}.png", image)
        rows.append(row)
    return rows


def input_row(case: Case) -> Row:
    """The degraded input itself (not for SR, whose input is smaller: bicubic is its baseline)."""
    scores = _scores(case, case.observed)
    return Row(case.task, case.group, case.name, "degraded input", "input", psnr=scores["psnr"], ssim=scores["ssim"])


def paper_rows(case: Case) -> list[Row]:
    """method.md F-1 values for a denoising image (full size, 20k iterations; figure readings)."""
    if case.task != "denoise" or case.name not in PAPER_F1:
        return []
    s_it, s_psnr, ours20k, dip_peak, dip_it, dip20k, dd20k, cheng20k = PAPER_F1[case.name]
    base = dict(task=case.task, group=case.group, case=case.name, kind="paper", iterations=20_000)
    return [
        Row(method="paper F-1: Ours (figure)", psnr=ours20k, stop_iteration=s_it, psnr_stop=s_psnr, **base),
        Row(method="paper F-1: DIP (figure)", psnr=dip20k, peak_psnr=dip_peak, peak_iteration=dip_it, **base),
        Row(method="paper F-1: Deep Decoder (figure)", psnr=dd20k, **base),
        Row(method="paper F-1: Cheng et al. (figure)", psnr=cheng20k, **base),
    ]


def run_case(
    case: Case, settings: Settings, out: Path | None = None, variants: dict[str, dict] | None = None
) -> list[Row]:
    """Every method on one case: input, baselines, the DIP variants, paper rows."""
    rows = [] if case.task in ("enhance", "super_resolution") else [input_row(case)]
    rows += run_baselines(case, out)
    rows += [run_dip(case, method, options, settings, out) for method, options in (variants or VARIANTS).items()]
    rows += paper_rows(case)
    if out is not None:
        _save_png(out / "images" / _slug(case.label) / "input.png", case.observed)
    return rows


def run_all(cases: list[Case], settings: Settings, out: Path | None) -> list[Row]:
    """All cases, one after another, with a progress line per case."""
    rows: list[Row] = []
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        rows += run_case(case, settings, out)
        print(
            f"[{i}/{len(cases)}] {case.label} {case.clean.shape} done in {time.perf_counter() - t0:.0f} s", flush=True
        )
    return rows


# ----------------------------------------------------------------------------- tables


def _f(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _stop_cell(row: Row) -> str:
    if row.kind == "dip" and row.stop_iteration is None:
        return "no stop"
    return _f(row.stop_iteration)


def _delta(a, b) -> float | None:
    return None if a is None or b is None else a - b


DETAIL_COLUMNS = [
    "case",
    "method",
    "PSNR",
    "SSIM",
    "stop it",
    "PSNR@stop",
    "SSIM@stop",
    "peak PSNR",
    "peak it",
    "end − peak",
    "s",
]


def detail_table(rows: list[Row]) -> list[str]:
    """One line per (case, method); for SR two extra PSNR-Y columns."""
    sr = any(r.task == "super_resolution" for r in rows)
    cols = (
        DETAIL_COLUMNS[:4]
        + (["PSNR-Y"] if sr else [])
        + DETAIL_COLUMNS[4:6]
        + (["PSNR-Y@stop"] if sr else [])
        + DETAIL_COLUMNS[6:]
    )
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = (
            [r.case, r.method, _f(r.psnr), _f(r.ssim, 4)]
            + ([_f(r.psnr_y)] if sr else [])
            + [_stop_cell(r), _f(r.psnr_stop)]
            + ([_f(r.psnr_y_stop)] if sr else [])
            + [
                _f(r.ssim_stop, 4),
                _f(r.peak_psnr),
                _f(r.peak_iteration),
                _f(_delta(r.psnr, r.peak_psnr) if r.kind == "dip" else None),
                _f(r.seconds, 1),
            ]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


SUMMARY_COLUMNS = [
    "method",
    "n",
    "mean PSNR",
    "mean SSIM",
    "mean PSNR-Y",
    "mean PSNR@stop",
    "mean stop it",
    "mean peak PSNR",
    "mean end − peak",
    "mean stop − peak",
]


def summary_table(rows: list[Row]) -> list[str]:
    """Means per method over the cases of one group (in first-seen method order)."""
    methods = list(dict.fromkeys(r.method for r in rows))
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    for m in methods:
        sel = [r for r in rows if r.method == m]
        dip = [r for r in sel if r.kind == "dip"]
        stops = [r.stop_iteration for r in sel if r.stop_iteration is not None]
        cells = [
            m,
            str(len(sel)),
            _f(_mean(r.psnr for r in sel)),
            _f(_mean(r.ssim for r in sel), 4),
            _f(_mean(r.psnr_y for r in sel)),
            _f(_mean(r.psnr_stop for r in sel)),
            (
                f"{np.mean(stops):.0f}"
                + ("" if len(stops) == len(sel) or not dip else f" ({len(sel) - len(stops)} no stop)")
            )
            if stops
            else ("no stop" if dip else "–"),
            _f(_mean(r.peak_psnr for r in sel)),
            _f(_mean(_delta(r.psnr, r.peak_psnr) for r in dip)),
            _f(_mean(_delta(r.psnr_stop, r.peak_psnr) for r in dip)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def enhance_table(rows: list[Row]) -> list[str]:
    cols = [
        "case",
        "method",
        "FBC(enhanced vs input), bands 1-5",
        "MLV sharpness before → after",
        "blur before → after",
        "s",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        e = r.extra
        lines.append(
            f"| {r.case} | {r.method} | {' '.join(f'{v:.3f}' for v in e['fbc_vs_input'])} | "
            f"{e['sharpness_before']:.4f} → {e['sharpness_after']:.4f} | "
            f"{e['blur_before']:.4f} → {e['blur_after']:.4f} | {_f(r.seconds, 1)} |"
        )
    return lines


def render(rows: list[Row], header: list[str]) -> str:
    """The whole markdown report: per group a summary and a per-case table."""
    lines = list(header)
    for group in dict.fromkeys(r.group for r in rows):
        sel = [r for r in rows if r.group == group]
        lines += ["", f"### {group}", ""]
        if sel[0].task == "enhance":
            lines += enhance_table(sel)
            continue
        lines += ["Means:", ""] + summary_table(sel) + ["", "Per image:", ""] + detail_table(sel)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def settings_from_args(args) -> Settings:
    base = MODES["quick" if args.quick else "gpu" if args.gpu else "full"]
    changes = {}
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    if args.channels is not None:
        changes["channels"] = args.channels
    if args.device is not None:
        changes["device"] = args.device
    if args.precision is not None:
        changes["precision"] = args.precision
    return dataclasses.replace(base, **changes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small subset, 64x64 crops, 2-core CPU")
    mode.add_argument("--gpu", action="store_true", help="representative subset, 256 crops, one GPU")
    parser.add_argument("--data", default=str(SHARED_DATA), help="folder with the shared/data layout")
    parser.add_argument("--out", default="results/quality", help="results folder (git-ignored)")
    parser.add_argument("--tasks", default=",".join(TASK_ORDER), help="comma-separated subset of tasks")
    parser.add_argument("--iterations", type=int, help="override the budget (not enhancement)")
    parser.add_argument("--channels", type=int, help="override the decoder width")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the mode's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="every run's (default: the profile's)")
    args = parser.parse_args(argv)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = set(tasks) - set(TASK_ORDER)
    if unknown:
        parser.error(f"unknown task(s) {sorted(unknown)}; choose from {TASK_ORDER}")
    settings = settings_from_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = load_cases(Path(args.data), settings.selection, tasks)
    if not cases:
        print(f"no benchmark images found under {args.data}; nothing to do")
        return 1
    import torch

    started = time.perf_counter()
    command = "python -m benchmarks.quality " + " ".join(sys.argv[1:] if argv is None else argv)
    machine = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available() and settings.device != "cpu"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    )
    print(f"{len(cases)} cases, mode {settings.mode}, bm3d {'available' if BM3D_AVAILABLE else 'not installed'}")
    rows = run_all(cases, settings, out)
    sel = settings.selection
    header = [
        f"# Quality benchmark ({settings.mode} mode)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}; machine: {machine}; torch {torch.__version__}",
        f"- command: `{command}`",
        f"- total wall time: {time.perf_counter() - started:.0f} s",
        f"- images: shrink_to={sel.shrink_to or 'none'}, crop={sel.crop or 'none'} (then a multiple of 32); "
        f"DIP budget: {settings.iterations or 'profile default'} iterations (enhancement: 100); "
        f"decoder channels: {settings.channels or 'profile default (128)'}; seed 0",
        f"- protocol: {PROTOCOL}",
        "- paper F-1 rows: digitised from the authors' figure (method.md 8.2): full-size images, "
        "20k iterations, so not the same setting as this run's crops/budget.",
    ]
    report = render(rows, header)
    print(report)
    (out / "tables.md").write_text(report)
    (out / "results.json").write_text(
        json.dumps(
            {
                "settings": {
                    "mode": settings.mode,
                    "iterations": settings.iterations,
                    "channels": settings.channels,
                    "device": settings.device,
                    "selection": asdict(sel),
                },
                "command": command,
                "machine": machine,
                "protocol": PROTOCOL,
                "rows": [asdict(r) for r in rows],
            },
            indent=1,
        )
    )
    print(f"wrote {out / 'tables.md'}, {out / 'results.json'}, logs/ and images/ under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
