"""The JSON run record the CLI writes beside every result: what ran (the options, which
``--config`` replays), on what, with which versions, and how it went."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from .noise.noise_fit import noise_summary
from .provenance import versions


def _history(entries) -> list[dict]:
    return [{k: v for k, v in dataclasses.asdict(e).items() if not k.endswith("_all")} for e in entries]


def run_record(args, path: Path, out: Path, image, result, seconds: float) -> dict:
    """Everything needed to reproduce and judge one run."""
    record = {
        "input": str(path),
        "output": str(out),
        "task": args.task,
        "input_shape": list(image.data.shape),
        "input_dtype": str(image.data.dtype),
        "axes": (args.axes or image.axes).upper(),
        "pixel_size": image.pixel_size,
        "unit": image.unit,
        "units": image.units,
        "options": dict(args.options),
        "seed": args.seed,
        "versions": versions(),
        "seconds": round(seconds, 3),
        "command": sys.argv,
    }
    if args.mask:
        record["mask"] = str(args.mask)
    if args.config:
        record["config_file"] = str(args.config)
    if result is None:  # computed on a dask scheduler: image only
        record.update(scheduler=args.scheduler, history=None)
        return record
    record.update(
        config=dataclasses.asdict(result.config),
        device=result.device,
        stop_reason=result.stop_reason,
        stop_iteration=result.stop_iteration,
        stop_rules=result.stop_rules,
        iterations=result.iterations,
        parameters=result.parameters,
        normalization=dataclasses.asdict(result.normalization),
        noise_model=noise_summary(result.anscombe, result.noise_estimate),
        nlm_share=result.nlm_share,
        wiener=result.wiener,
        likelihood=result.likelihood,
        hot_pixels=result.hot_pixels,
        saturated=result.saturated,
        history=_history(result.history),
    )
    if len(result.plane_histories) > 1:
        record.update(batch_size=result.batch_size, warm_start=result.warm_start)
        record["planes"] = [
            {"stop_iteration": it, "stop_reason": reason, "history": _history(hist)}
            for it, reason, hist in zip(
                result.plane_stop_iterations,
                result.plane_stop_reasons,
                result.plane_histories,
            )
        ]
    return record
