"""How well the noise model estimated from the data (noise/noise_fit.py) serves a denoiser.

Every 2-D case of benchmarks/microscopy.py, and grey photos (128 px centre squares of the
paper's images) recorded the same way, at 5, 20 and 100 photons at full scale. Two measures
per case:

* **sd error**: the root mean square, over the pixels, of log(estimated / true noise
  deviation) at each pixel's expected level, so that the levels an image has most of count
  most (a predicted variance at or below zero is taken as 1 % of the true one);
* **BM3D loss**: PSNR of BM3D on the data stabilised with the estimated model minus the same
  with the true model (a denoiser's cost of the estimate; needs the ``bm3d`` package).

``python -m benchmarks.noise_model [--seed N] [--quick]``
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import grey_photos, psnr, table
from benchmarks.microscopy import GAIN, OFFSET, READ, Case, cases, record, unit_range, vst_denoise

PHOTOS = {
    "F16": "image_F16_512rgb.png",
    "House": "image_House256rgb.png",
    "Baboon": "image_Baboon512rgb.png",
    "kodim03": "kodim03.png",
}


def photo_cases(photons: list[float], seed: int) -> list[Case]:
    images = {name: unit_range(image) for name, image in grey_photos(128, PHOTOS).items()}
    return [Case(name, clean, record(clean, ph, seed), ph, "YX") for ph in photons for name, clean in images.items()]


def sd_error(case: Case, estimate) -> float:
    level = OFFSET + GAIN * case.photons * case.clean
    true = GAIN * (level - OFFSET) + (READ * GAIN * case.photons) ** 2
    predicted = np.maximum(estimate.variance(level), 0.01 * true)
    return float(np.sqrt(np.mean((0.5 * np.log(predicted / true)) ** 2)))


def bm3d_loss(case: Case, model) -> float | None:
    try:
        import bm3d
    except ImportError:
        return None
    if model is None:  # taken for signal-independent: BM3D given no transform would differ in kind
        return float("nan")

    def denoise(z, sigma):
        return bm3d.bm3d(z, sigma_psd=sigma)

    return psnr(vst_denoise(case, denoise, model), case.clean) - psnr(vst_denoise(case, denoise), case.clean)


def main(argv=None) -> int:
    from napari_dip_spectral.noise.noise_fit import estimate_noise

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the quick microscopy cases, 20 photons, camera only")
    args = parser.parse_args(argv)
    photons = [20.0] if args.quick else [5.0, 20.0, 100.0]
    try:
        chosen = [c for c in cases(args.quick, photons, args.seed) if c.axes == "YX"]
    except SystemExit as missing:  # the fluorescence images come with the stardist wheel
        print(f"(no fluorescence cases: {missing})")
        chosen = []
    photos = photo_cases(photons, args.seed)
    chosen += photos[:1] if args.quick else photos
    rows, errors, losses = [], [], []
    for case in chosen:
        estimate = estimate_noise(case.counts)
        error = sd_error(case, estimate)
        loss = bm3d_loss(case, estimate.model())
        errors.append(error)
        if loss is not None and np.isfinite(loss):
            losses.append(loss)
        rows.append(
            [
                case.name,
                case.photons,
                round(estimate.gain / GAIN, 3),
                round(error, 3),
                "" if loss is None else round(loss, 2),
            ]
        )
    table(
        f"Noise model estimated from the data (seed {args.seed})",
        ["case", "photons", "gain / true", "sd error", "BM3D loss dB"],
        rows,
    )
    print(f"\nmean sd error {np.mean(errors):.3f}, largest {np.max(errors):.3f}")
    if losses:
        print(f"mean BM3D loss {np.mean(losses):+.3f} dB, worst {np.min(losses):+.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
