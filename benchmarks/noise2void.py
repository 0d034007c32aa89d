"""Noise2Void (careamics) on one noisy image or stack: the learned self-supervised peer.

Runs in its own Python environment, because careamics needs a torchvision that does not
install beside the CPU build of torch this project tests with:

    python -m venv ~/n2v-env
    ~/n2v-env/bin/pip install torch==2.14.1 torchvision==0.29.1   # or the pair your platform has
    ~/n2v-env/bin/pip install --no-deps careamics
    ~/n2v-env/bin/pip install bioimageio-core lightning microssim pydantic torchmetrics zarr tifffile scikit-image

    ~/n2v-env/bin/python benchmarks/noise2void.py noisy.npy denoised.npy --axes YX

``benchmarks.microscopy --n2v-python ~/n2v-env/bin/python`` calls this file that way, on the
same counts as every other row. It imports nothing from this project. The network is
careamics' default N2V U-Net, trained on the noisy data itself (nothing else is seen) for a
fixed budget of steps, then applied to the same data; the input is the raw counts (careamics
normalises by their mean and standard deviation).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def denoise(noisy: np.ndarray, axes: str, steps: int, batch_size: int, patch: int, seed: int) -> np.ndarray:
    spatial = [s for a, s in zip(axes, noisy.shape) if a in "YX"]
    if min(spatial) < patch:
        raise SystemExit(f"image {noisy.shape} is smaller than the {patch}-pixel patch")
    from careamics import CAREamist
    from careamics.config import create_n2v_config

    patch_size = [patch, patch]
    if "Z" in axes:
        depth = noisy.shape[axes.index("Z")]
        patch_size = [min(16, 1 << (depth.bit_length() - 1)), patch, patch]
    epochs = 10
    config = create_n2v_config(
        experiment_name="n2v",
        data_type="array",
        axes=axes,
        patch_size=patch_size,
        batch_size=batch_size,
        num_epochs=epochs,
    )
    config.data_config.seed = seed
    with tempfile.TemporaryDirectory() as work:
        careamist = CAREamist(config, work_dir=work, enable_progress_bar=False)
        data = noisy.astype(np.float32)
        # careamics draws about one patch per patch-sized block of each training array in
        # an epoch: copies of the one observation give each epoch its share of the steps
        blocks = [s // p for s, p in zip(data.shape[-len(patch_size) :], patch_size)]
        per_copy = int(np.prod(data.shape[: -len(patch_size)]) * np.prod(blocks))  # S and T: images
        copies = -(-batch_size * max(1, steps // epochs) // per_copy)
        careamist.train(train_data=[data] * copies, val_data=data)
        out, _ = careamist.predict(data, axes=axes)
    return np.asarray(out[0] if isinstance(out, (list, tuple)) else out, dtype=np.float32).reshape(noisy.shape)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("noisy", help=".npy file: the noisy counts")
    parser.add_argument("out", help=".npy file to write the result to")
    parser.add_argument("--axes", default="YX", help="YX, SYX (2-D planes) or ZYX (a 3-D network)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps in all (default 1000)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64, help="patch side in Y and X (default 64)")
    parser.add_argument("--seed", type=int, default=1, help="careamics seed, at least 1")
    args = parser.parse_args(argv)
    noisy = np.load(args.noisy)
    t = time.perf_counter()
    out = denoise(noisy, args.axes, args.steps, args.batch_size, args.patch, args.seed)
    np.save(args.out, out)
    print(f"noise2void: {args.steps} steps of {args.batch_size} patches in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
