"""``dip-spectral``: restore image files from the command line.

    dip-spectral TASK INPUT... -o OUTDIR [options] [--config PRESET_OR_RUN_RECORD.json]
    dip-spectral demo -o OUTDIR

For every input it writes ``<name>_<task>.tif`` (metadata of the input kept), a JSON run
record ``<name>_<task>.json`` and the FBC / stopping plots ``<name>_<task>_fbc.png`` and
``..._stopping.png``. Inputs are never overwritten; outputs are written atomically. Exit
codes: 0 all inputs done, 1 some inputs failed (each reported and skipped), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from .core.config import PROFILES, STOP_RULES, TASKS, task_defaults
from .intensity import NORMALIZE_PER
from .layout import CHANNEL_MODES
from .noise_fit import describe_noise
from .normalization import METHODS
from .presets import CAMERA_KEYS, read_preset, to_options
from .records import run_record
from .remaining import RemainingTime

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _lipschitz(text: str):
    if text.lower() in ("none", "off", "inf"):
        return float("inf")
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dip-spectral",
        description="Restore images with the spectral-bias-controlled deep image prior "
        "(Shi et al., IJCV 2022). 'dip-spectral demo -o OUTDIR' runs a bundled "
        "example.",
        epilog="Exit codes: 0 all inputs done, 1 some inputs failed (reported and skipped), "
        "2 usage error. Docs: docs/stacks.md.",
    )
    p.add_argument("task", choices=TASKS, help="what to do")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files: TIFF / OME-TIFF (any axes), PNG, JPEG or BMP; CZI, ND2, LIF and other microscope "
        'formats with the bioio extra (pip install "napari-dip-spectral[bioio]")',
    )
    p.add_argument("-o", "--output-dir", required=True, type=Path, help="folder for the results (created if missing)")
    p.add_argument(
        "--axes", help="axes of every input, e.g. ZYX, TCYX, YXS (default: from the file's metadata, else a guess)"
    )
    p.add_argument("--mask", type=Path, help="inpaint: mask image, nonzero = observed pixel")
    p.add_argument("--factor", type=int, choices=(2, 4, 8), help="super_resolution: scale factor")
    p.add_argument(
        "--config",
        type=Path,
        metavar="JSON",
        help="settings from a preset file (saved by the napari widgets) or a run record (<name>_<task>.json) "
        "to replay; options given on the command line override it",
    )
    p.add_argument("--iterations", type=int, help="iteration budget (default: the task's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--estimate",
        action="store_true",
        help="time a few iterations on the chosen device and print how long each file would take; restore nothing",
    )
    p.add_argument("--lipschitz", type=_lipschitz, help="Lipschitz bound lambda per layer, or 'none' for no control")
    p.add_argument(
        "--upsample", choices=("gaussian", "bilinear", "nearest", "deconv"), help="upsampling layer of the decoder"
    )
    p.add_argument(
        "--stop-rule",
        choices=STOP_RULES,
        help="the automatic stop (default: held-out pixels for photon-noise denoising, else the task's); "
        "'sure': an unbiased error estimate from a twin fit, denoising only, twice the work",
    )
    p.add_argument(
        "--channels",
        type=int,
        help="feature channels of the decoder (default 128; 64 for photon-noise denoising and volumes)",
    )
    p.add_argument(
        "--profile", choices=PROFILES, default="default", help="settings profile: 'default' or the authors' 'paper'"
    )
    p.add_argument("--no-auto-stop", action="store_true", help="run the whole iteration budget")
    p.add_argument(
        "--normalize", choices=METHODS, default="minmax", help="intensity normalisation to [0, 1] (default minmax)"
    )
    p.add_argument(
        "--normalize-per",
        choices=NORMALIZE_PER,
        default="stack",
        help="one intensity range per stack (per channel) or per plane (default stack)",
    )
    p.add_argument(
        "--channel-mode",
        choices=CHANNEL_MODES,
        default="auto",
        help="channels fitted independently or jointly (default: RGB jointly, other channel axes independently)",
    )
    p.add_argument("--batch-size", type=int, help="planes fitted together (default: from memory)")
    p.add_argument(
        "--tile-size",
        type=int,
        help="tile side in pixels (default: tiles only when a plane does not fit the memory budget)",
    )
    p.add_argument(
        "--memory-limit",
        type=float,
        help="GiB one batch may use (default: half the GPU's free memory, or a quarter of RAM up to 4 GiB)",
    )
    noise = p.add_mutually_exclusive_group()
    noise.add_argument(
        "--anscombe",
        action="store_true",
        help="generalised Anscombe transform with the parameters given below "
        "(default for denoising: the noise model is estimated from each "
        "image and the transform used when the noise grows with the signal)",
    )
    noise.add_argument(
        "--no-anscombe", action="store_true", help="no noise model and no transform (signal-independent noise)"
    )
    p.add_argument(
        "--anscombe-gain", type=float, default=1.0, help="camera gain, data units per photo-electron (default 1)"
    )
    p.add_argument("--anscombe-offset", type=float, default=0.0, help="camera offset / dark level (default 0)")
    p.add_argument(
        "--anscombe-read-noise", type=float, default=0.0, help="read noise standard deviation in data units (default 0)"
    )
    p.add_argument(
        "--output-dtype",
        choices=("input", "float32"),
        default="input",
        help="'input': keep uint8/uint16 (rounded, clipped); float inputs give float32 (default input)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="send planes to this dask.distributed scheduler (e.g. tcp://host:8786); "
        "no per-iteration history is recorded then",
    )
    return p


def _options(args) -> dict:
    anscombe = False if args.no_anscombe else "auto"
    if args.anscombe:
        anscombe = {"gain": args.anscombe_gain, "offset": args.anscombe_offset, "read_noise": args.anscombe_read_noise}
    return dict(
        factor=args.factor,
        iterations=args.iterations,
        device=args.device,
        seed=args.seed,
        lipschitz=args.lipschitz,
        upsample=args.upsample,
        channels=args.channels,
        stop_rule=args.stop_rule,
        profile=args.profile,
        auto_stop=False if args.no_auto_stop else None,
        normalize=args.normalize,
        normalize_per=args.normalize_per,
        channel_mode=args.channel_mode,
        batch_size=args.batch_size,
        tile_size=args.tile_size,
        memory_limit=args.memory_limit,
        anscombe=anscombe,
        output_dtype=args.output_dtype,
    )


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
    options = _options(args)
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
        from .job import RestoreJob

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
    return out, (None if result is None else describe_noise(result.anscombe, result.noise_estimate))


class IterationReport:
    """Progress within one file on stderr, at most once a second (a run can take minutes):
    the iteration, the planes being fitted, the time so far and at most how long is left
    (``remaining.py``). Needs nothing installed."""

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


def _progress(paths):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=len(paths), unit="file", file=sys.stderr)


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
    bar = _progress(paths)
    failed = 0
    try:
        for i, path in enumerate(paths, 1):
            if bar is None:
                print(f"[{i}/{len(paths)}] {path.name}", file=sys.stderr)
            try:
                out, note = process(args, path, mask, client)
                if out is None:  # --estimate
                    message = f"{path.name}: {note}"
                else:
                    message = f"{path.name} -> {out}" + (f" ({note})" if note else "")
            except Exception as error:  # one bad file never stops the others
                failed += 1
                message = f"FAILED {path}: {type(error).__name__}: {error}"
            if bar is not None:
                bar.write(message, file=sys.stderr)
                bar.update(1)
            else:
                print(message, file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
