"""``dip-spectral``: restore image files from the command line.

    dip-spectral TASK INPUT... -o OUTDIR [options] [--config PRESET_OR_RUN_RECORD.json]
    dip-spectral demo -o OUTDIR

For every input it writes ``<name>_<task>.tif`` (metadata of the input kept), a JSON run
record ``<name>_<task>.json`` and the FBC / stopping plots ``<name>_<task>_fbc.png`` and
``..._stopping.png``. Inputs are never overwritten; outputs are written atomically. Exit
codes: 0 all inputs done, 1 some inputs failed (each reported and skipped), 2 usage error.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from .cli_options import build_parser, options_from
from .core.config import task_defaults
from .engine.remaining import RemainingTime
from .presets import CAMERA_KEYS, read_preset, to_options
from .records import run_record
from .refinement.refine import describe_denoising

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# the options whose command-line flags have other names than the option
FLAGS = {"auto_stop": ("no_auto_stop",), "anscombe": ("anscombe", "no_anscombe")}


def given_flags(argv: list[str], args) -> set[str]:
    """The destinations of the options written on the command line, told apart from their
    defaults by parsing again with a default no flag can give (argparse would convert a
    string default such as ``argparse.SUPPRESS`` with the option's type)."""
    unset = object()
    quiet = build_parser()
    quiet.set_defaults(**dict.fromkeys(vars(args), unset))
    return {dest for dest, value in vars(quiet.parse_args(argv)).items() if value is not unset}


def resolve_options(args, given: set[str], preset: dict | None) -> dict:
    """The run's options: the flags' values, where a preset (``--config``) sets a key and
    its flag was not written on the command line, the preset's value."""
    options = options_from(args)
    if preset is None:
        return options
    settings = to_options(preset["settings"])
    settings.pop("preview_every", None)  # the CLI shows no previews
    for key, value in settings.items():
        if not given & set(FLAGS.get(key, (key,))):
            options[key] = value
    camera = {key: getattr(args, f"anscombe_{key}") for key in CAMERA_KEYS if f"anscombe_{key}" in given}
    if camera and isinstance(options["anscombe"], dict):  # e.g. the preset's camera with another gain
        options["anscombe"] = {**options["anscombe"], **camera}
    return options


def output_stem(path: Path, task: str) -> str:
    """``cells.czi`` -> ``cells_denoise``: the format's suffix goes, and an ``.ome`` before it
    (``.ome.tif``, ``.ome.zarr``), so that the result's name says only what was done."""
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    if name.lower().endswith(".ome"):
        name = name[: -len(".ome")]
    return f"{name}_{task}"


def process(args, path: Path, mask, client) -> tuple[Path, str | None]:
    """Restore one file; returns the output path and a line on the noise model used.
    Raises on any failure."""
    from .api import restore
    from .files import read_image, write_atomic, write_tiff
    from .plots import save_plots

    image = read_image(path, args.axes)
    axes = (args.axes or image.axes).upper()
    if args.estimate:
        from .engine.job import RestoreJob

        job = RestoreJob(image.data, args.task, mask=mask, axes=axes, **args.options)
        return None, job.estimate().text()
    out = args.output_dir / f"{output_stem(path, args.task)}.tif"
    inputs = {Path(p).resolve() for p in args.inputs} | ({args.mask.resolve()} if args.mask else set())
    for target in (out, out.with_suffix(".json")):
        if target.resolve() in inputs:
            raise ValueError(f"refusing to overwrite the input {target}")
    started = time.perf_counter()
    options = args.options
    if client is not None:
        import dask.array as da

        lazy = restore(da.from_array(image.data), args.task, mask=mask, axes=axes, **options)
        restored, result = client.compute(lazy).result(), None
    else:
        auto_stop = options.get("auto_stop")
        if auto_stop is None:  # the task's default ("enhance" runs its whole budget)
            auto_stop = task_defaults(args.task, options.get("profile", "default")).auto_stop
        report = IterationReport(path.name, auto_stop=bool(auto_stop))
        result = restore(image.data, args.task, mask=mask, axes=axes, callback=report, **options)
        if not result.finished:
            raise RuntimeError("the run was cancelled")
        restored = result.image
    seconds = time.perf_counter() - started
    write_tiff(out, restored, axes, image, scale=args.factor or 1)
    record = run_record(args, path, out, image, result, seconds)
    write_atomic(out.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1, default=str)))
    if result is not None and result.history:
        save_plots(result.history, args.output_dir, out.stem, result.stop_iteration)
    if result is None:
        return out, None
    return out, describe_denoising(result)


class IterationReport:
    """Progress within one file on stderr, at most once a second (a run can take minutes):
    the iteration, the planes being fitted, the time so far and at most how long is left
    (``engine/remaining.py``). Needs nothing installed."""

    def __init__(self, name: str, every: float = 1.0, stream=None, auto_stop: bool = True, clock=time.perf_counter):
        self.name, self.every, self.stream, self.clock = name, every, stream or sys.stderr, clock
        self.started = self.last = clock()
        self.remaining = RemainingTime(auto_stop=auto_stop, clock=clock)

    def __call__(self, event) -> None:
        self.remaining.update(event)  # every event: the rate is measured between them
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        planes = (
            f", planes {event.planes[0] + 1}-{event.planes[-1] + 1} of {event.n_planes}" if event.n_planes > 1 else ""
        )
        left = self.remaining.text()
        print(
            f"  {self.name}: iteration {event.iteration} / {event.total}{planes} ({now - self.started:.0f} s"
            + (f", {left})" if left else ")"),
            file=self.stream,
            flush=True,
        )


def _unwritable(folder: Path) -> str | None:
    """Why no result could be written to ``folder`` (made if missing), or None: found before
    any work rather than after the first file's run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return demo_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    preset = None
    if args.config is not None:
        try:
            preset = read_preset(args.config, args.task)
        except (OSError, ValueError) as error:
            print(f"dip-spectral: error: --config: {error}", file=sys.stderr)
            return EXIT_USAGE
    args.options = resolve_options(args, given_flags(argv, args), preset)
    args.factor, args.seed = args.options["factor"], args.options["seed"]
    if args.mask is not None and args.task != "inpaint":
        parser.print_usage(sys.stderr)
        print("dip-spectral: error: --mask is only used by the inpaint task", file=sys.stderr)
        return EXIT_USAGE
    if args.task == "inpaint" and args.mask is None:
        print("dip-spectral: error: inpaint needs --mask", file=sys.stderr)
        return EXIT_USAGE
    if args.task == "super_resolution" and args.factor is None:
        print("dip-spectral: error: super_resolution needs --factor (or a --config that sets it)", file=sys.stderr)
        return EXIT_USAGE
    problem = _unwritable(args.output_dir)
    if problem:
        print(
            f"dip-spectral: error: -o: cannot write to the output folder {args.output_dir}: {problem}", file=sys.stderr
        )
        return EXIT_USAGE
    mask = None
    if args.mask is not None:
        from .files import read_image

        try:
            mask = read_image(args.mask).data
        except (OSError, ValueError) as error:
            print(f"dip-spectral: error: cannot read the mask {args.mask}: {error}", file=sys.stderr)
            return EXIT_USAGE
    client = None
    if args.scheduler:
        from dask.distributed import Client

        client = Client(args.scheduler)
    paths = [Path(p) for p in args.inputs]
    bar = tqdm(total=len(paths), unit="file", file=sys.stderr)  # files done, under each file's own progress
    failed = 0
    try:
        for path in paths:
            try:
                out, note = process(args, path, mask, client)
                if out is None:  # --estimate
                    message = f"{path.name}: {note}"
                else:
                    message = f"{path.name} -> {out}" + (f" ({note})" if note else "")
            except Exception as error:  # one bad file never stops the others
                failed += 1
                message = f"FAILED {path}: {type(error).__name__}: {error}"
            bar.write(message, file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
        if client is not None:
            client.close()
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
