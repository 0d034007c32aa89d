"""The command line's flags (``dip-spectral --help``) and the ``restore`` options they stand for."""

from __future__ import annotations

import argparse
from pathlib import Path

from .core.config import PRECISIONS, PROFILES, STOP_RULES, TASKS
from .engine.intensity import NORMALIZE_PER
from .engine.layout import CHANNEL_MODES
from .engine.normalization import CHOICES
from .noise.likelihood import LIKELIHOODS


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


def _ensemble(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
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
        help=(
            "feature channels of the decoder (default 128; 64 for photon-noise denoising, volumes, "
            "and grey or colour denoising on a CPU)"
        ),
    )
    p.add_argument(
        "--ensemble",
        type=_ensemble,
        help="decoders fitted to each plane from different random starts, their results averaged: "
        "better on photon-noise data, about that many times the work (default 1)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="'bf16': the decoder in bfloat16, faster on CPUs with AVX-512 BF16 or AMX and on recent GPUs; "
        "'auto' (the default profile's): bf16 on such a CPU for a fit of at least 64 channels and 128 x 128 "
        "pixels, else fp32 (the paper profile's)",
    )
    p.add_argument(
        "--profile", choices=PROFILES, default="default", help="settings profile: 'default' or the authors' 'paper'"
    )
    p.add_argument("--no-auto-stop", action="store_true", help="run the whole iteration budget")
    p.add_argument(
        "--normalize",
        choices=CHOICES,
        default="auto",
        help="intensity normalisation to [0, 1]; auto: minmax, or the dtype's range in the paper profile",
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
        "--warm-start",
        action="store_true",
        help="fit planes (and tiles) one at a time, each starting from the decoder fitted before it",
    )
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
        "--nlm-share",
        type=float,
        help="share of non-local means of the same data averaged into a denoising result, in [0, 1) "
        "(default: 0.3 with the default profile, 0 with the paper profile; 0: the decoder's result alone)",
    )
    p.add_argument(
        "--wiener",
        action=argparse.BooleanOptionalAction,
        help="denoising: a Wiener pass of the data guided by the result, in 3-D over a Z or T stack "
        "fitted as a whole, mixed evenly with a BM3D-like estimate and run once more on the mean of the "
        "data and that result (default: on with the default profile, off with the paper profile)",
    )
    p.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        help="denoising photon counts: 'poisson' fits the intensity to the counts' Poisson likelihood, "
        "'gaussian' the squared error of the stabilised data (default: see docs/api.md)",
    )
    p.add_argument(
        "--hot-pixels",
        action=argparse.BooleanOptionalAction,
        help="denoising: replace pixels far brighter than all their neighbours (a camera's hot pixels) by "
        "their neighbours' median before the fit (default: on for camera counts with photon noise, "
        "default profile)",
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


def options_from(args) -> dict:
    """The options of ``restore`` the parsed flags ask for (None where a flag was not given)."""
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
        ensemble=args.ensemble,
        stop_rule=args.stop_rule,
        precision=args.precision,
        profile=args.profile,
        auto_stop=False if args.no_auto_stop else None,
        normalize=args.normalize,
        normalize_per=args.normalize_per,
        channel_mode=args.channel_mode,
        batch_size=args.batch_size,
        warm_start=True if args.warm_start else None,
        tile_size=args.tile_size,
        memory_limit=args.memory_limit,
        anscombe=anscombe,
        output_dtype=args.output_dtype,
        nlm_share=args.nlm_share,
        wiener=args.wiener,
        likelihood=args.likelihood,
        hot_pixels=args.hot_pixels,
    )
