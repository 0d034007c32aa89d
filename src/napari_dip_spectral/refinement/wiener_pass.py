"""A Wiener pass over a denoised result, guided by it.

After the fit (and the share of non-local means, refinement/nonlocal_share.py) the result serves as a
pilot estimate: the data's local cosine spectrum, in blocks of 64 coefficients at every
position, is shrunk coefficient by coefficient by ``pilot**2 / (pilot**2 + sigma**2)``, the
empirical Wiener filter, and the overlapping blocks are averaged with weights that favour the
blocks shrunk most. This is the second stage of BM3D / BM4D without their block matching.

* A Z (or T) stack fitted as a whole is filtered in 3-D, 4 x 4 x 4 blocks: signal is
  correlated from plane to plane and noise is not, which neither the decoder (planes as
  channels) nor the per-plane share uses. The stack then takes its share (THRESHOLD_SHARE)
  of a BM4D-like estimate the decoder does not guide: refinement/block_matching.py's two stages on
  cubes grouped across the volume.
* A plane (an image, a plane of a stack fitted plane by plane, a colour channel) is filtered
  in 2-D, 8 x 8 blocks, and also by the grouped Wiener filter of refinement/block_matching.py (blocks
  matched across the plane on the pilot); the result is the mean of the plane before, the
  filtered plane and the grouped estimate. Each estimate alone lost on some images; their
  mean raised the average over fluorescence crops and photos (docs/beyond_the_paper.md
  section 11, "Planes: a grouped estimate as well"). Under Gaussian noise a plane goes
  through this twice, the second time guided by the first's result (plane_rounds). A plane
  then ends as the mean of that and a BM3D-like estimate that the decoder does not guide
  (the grouped hard threshold of refinement/block_matching.py as the pilot of its grouped Wiener
  estimate; THRESHOLD_SHARE): on fluorescence references cleaner than the benchmark's
  nuclei crops, and on photos, that pilot beat the decoder's result (docs/beyond_the_paper.md
  section 14).
* All of this then runs once more, from the same pilot, on the mean of the data and its
  first result with half the noise sigma (``boost``; docs/beyond_the_paper.md section 17).

Measured in docs/beyond_the_paper.md section 11. It works in the units the fit saw
(stabilised, for photon counts) with the noise sigma of those units. ``wiener=False`` keeps
the result without it; the result records whether it ran.
"""

from __future__ import annotations

import itertools

import numpy as np

from .block_matching import grouped_wiener, two_stage
from .wiener_blocks import shrink_blocks

# Block sides (docs/beyond_the_paper.md section 11, "Stacks: how the 3-D pass was chosen" and
# "Planes: the 2-D pass, half and half"):
BLOCK_3D = 4  # 4 x 4 x 4: 8 in Y and X gained less, 8 in Z gained nothing more for more work
BLOCK_2D = 8  # 8 x 8: the same 64 coefficients; 4 x 4 lost much on textured images


def resolve_wiener(value, task: str, profile: str) -> bool:
    """Whether to run the pass: ``None`` runs it when denoising with the default profile;
    ``True`` asks for it (ValueError for another task); ``False`` never."""
    if value is None:
        return task == "denoise" and profile == "default"
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"wiener must be True, False or None, got {value!r}")
    if value and task != "denoise":
        raise ValueError(f"wiener is only used by task 'denoise', not {task!r}")
    return bool(value)


BAND_VOXELS = 1 << 21  # larger arrays go in bands of rows: the work arrays are ~35x the input


def wiener_pass(data: np.ndarray, pilot: np.ndarray, sigma: float, block: int) -> np.ndarray:
    """The empirical Wiener estimate of ``data`` (2-D or 3-D; noise ``sigma``) guided by
    ``pilot`` (same shape): every block of side ``block`` (shorter along a thinner axis),
    shrunk in the cosine domain and averaged over all positions. A large array is done in
    bands of rows, each with ``block`` rows of the neighbours on either side, which gives the
    same values (every block over a pixel lies inside its band) in bounded memory."""
    rows = data.shape[-2]
    band = max(block, BAND_VOXELS // max(data.size // rows, 1))
    if rows <= band + 2 * block:
        return _whole(data, pilot, sigma, block)
    out = np.empty(data.shape, dtype=np.float32)
    for top in range(0, rows, band):
        low, high = max(top - block, 0), min(top + band + block, rows)
        part = _whole(data[..., low:high, :], pilot[..., low:high, :], sigma, block)
        out[..., top : top + band, :] = part[..., top - low : top - low + min(band, rows - top), :]
    return out


def _whole(data: np.ndarray, pilot: np.ndarray, sigma: float, block: int) -> np.ndarray:
    sides = tuple(min(block, n) for n in data.shape)
    pads = [(s, s) for s in sides]
    mode = "reflect" if min(data.shape) > 1 else "edge"
    noisy = np.pad(data.astype(np.float64), pads, mode=mode)
    guide = np.pad(pilot.astype(np.float64), pads, mode=mode)
    total = np.zeros_like(noisy)
    weights = np.zeros_like(noisy)
    axes = tuple(range(1, 2 * data.ndim, 2))
    for start in itertools.product(*(range(s) for s in sides)):
        # the blocks of one grid: cut, reshape to (ny, by, nx, bx) (or with nz, bz first),
        # transform per block
        region = tuple(slice(o, o + (n - o) // s * s) for o, n, s in zip(start, noisy.shape, sides))
        shape = noisy[region].shape
        split = tuple(v for n, s in zip(shape, sides) for v in (n // s, s))
        estimate, weight = shrink_blocks(noisy[region].reshape(split), guide[region].reshape(split), sigma, axes)
        total[region] += (estimate * weight).reshape(shape)
        weights[region] += np.broadcast_to(weight, split).reshape(shape)
    inner = tuple(slice(s, s + n) for s, n in zip(sides, data.shape))
    return (total[inner] / weights[inner]).astype(np.float32)


def plane_rounds(photon_noise: bool) -> int:
    """How many times a plane goes through the pass, each round guided by the one before:
    twice under Gaussian noise, where the second round raised the photos; once under photon
    noise (stabilised), where a second round gained nothing on average and lost a little at a
    few photons (docs/beyond_the_paper.md section 11, "A second round under Gaussian noise")."""
    return 1 if photon_noise else 2


# The weight of the estimate the decoder does not guide (the grouped Wiener estimate whose
# pilot is the grouped hard threshold: BM3D's two stages, BM4D's on a stack) in the result:
# an even mix. Of the weights compared on kept fits (docs/beyond_the_paper.md section 14) a
# half was within 0.02 dB of the best on the calibration crops and stacks and above a third
# on the held-out fluorescence images, the held-out stack and grey and colour photos.
THRESHOLD_SHARE = 1 / 2


def apply_wiener(
    out: np.ndarray,
    data: np.ndarray,
    sigmas: list[float | None],
    whole_stack: bool,
    rounds: int = 1,
    colour: bool = False,
    threshold: float = 0.0,
    boost: bool = False,
) -> None:
    """In place on ``out`` (units, channels, H, W), guided by itself: a whole-stack unit
    (its channels are the Z or T planes) becomes the 3-D estimate; otherwise each channel
    plane the mean of itself, the 2-D estimate and the grouped estimate, ``rounds`` times
    over, each round guided by the last. ``colour``: the channels are a colour plane in the
    opponent space (refinement/opponent.py), and all three channels are grouped on the luminance of
    the round's guide, as CBM3D groups them. ``threshold``: the share of the plane's
    BM3D-like estimate, which does not depend on the decoder, mixed in at the end (a colour
    plane's grouped on the luminance, as CBM3D's; a whole-stack unit's BM4D-like, grouped in
    cubes). ``boost``: all of this a second time, from the same ``out``, on the mean of the
    data and the first time's result with half the noise sigma (one step of SOS boosting,
    Romano and Elad, SIAM J. Imaging Sci. 2015, with the whole pass as the denoiser: the
    signal is twice as strong against the noise there, which sharpens both the matching of
    blocks and the thresholds). A unit with ``None`` keeps its values."""
    start = out.copy() if boost else None
    _passes(out, data, sigmas, whole_stack, rounds, colour, threshold)
    if boost:
        strengthened = (data + out) / 2
        out[...] = start
        halved = [None if s is None else s / 2 for s in sigmas]
        _passes(out, strengthened, halved, whole_stack, rounds, colour, threshold)


def _passes(out, data, sigmas, whole_stack: bool, rounds: int, colour: bool, threshold: float) -> None:
    """apply_wiener's passes, once."""
    for u, sigma in enumerate(sigmas):
        if sigma is None:
            continue
        if whole_stack:
            out[u] = wiener_pass(data[u], out[u], sigma, BLOCK_3D)
        else:
            for _ in range(rounds):
                if colour:  # one grouping, matched once on this round's luminance
                    grouped = grouped_wiener(data[u], out[u], sigma, out[u, 0])
                else:
                    grouped = [grouped_wiener(data[u, c], out[u, c], sigma) for c in range(out.shape[1])]
                for c in range(out.shape[1]):
                    filtered = wiener_pass(data[u, c], out[u, c], sigma, BLOCK_2D)
                    out[u, c] = (out[u, c] + filtered + grouped[c]) / 3
        if threshold:
            out[u] = (1 - threshold) * out[u] + threshold * _unguided(data[u], sigma, whole_stack, colour)


def _unguided(data: np.ndarray, sigma: float, whole_stack: bool, colour: bool) -> np.ndarray:
    """The estimate of one unit's channels ``data`` that the decoder does not guide: BM4D's
    two stages over a whole stack (its channels are the planes of a volume), CBM3D's over a
    colour plane, BM3D's over each grey plane."""
    if whole_stack:
        return two_stage(data, sigma)
    if colour:
        return two_stage(data, sigma, on_luminance=True)
    return np.stack([two_stage(plane, sigma) for plane in data])


def describe_wiener(applied: bool, whole_stack: bool) -> str:
    """For a status line after the noise model and share."""
    if not applied:
        return ""
    return "; Wiener pass (3-D over the stack)" if whole_stack else "; Wiener pass"
