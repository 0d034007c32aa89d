"""The Poisson-Gaussian noise model of an image, estimated from the image itself.

Camera data of a photon-limited sample (fluorescence, low light) follow
``z = gain * p + n`` with ``p ~ Poisson`` and ``n ~ N(offset, read_noise^2)``, so the noise
variance grows linearly with the expected value: ``var(z) = gain * E[z] + floor`` with
``floor = read_noise^2 - gain * offset``. This module fits that line from a single image or
stack, in the spirit of Foi et al. (2008), "Practical Poissonian-Gaussian noise modeling and
fitting for single-image raw-data":

1. every plane is split into a local level (5 x 5 mean, or 7 x 7 or 9 x 9 where the noise
   dominates the 5 x 5 means) and a residual that carries the noise
   and (almost) no signal: Immerkaer's 3 x 3 mask, which cancels flat areas, ramps and edges
   along the axes, scaled so that its response to white noise has the noise's variance;
2. pixels next to clipped values (a pile-up at the data's minimum or maximum, or an integer
   image's values at its type's maximum, however few) are left out, and so are level groups
   within two noise deviations of such a clipping level; at the bright level every pixel whose
   widest level window holds a saturated one is left out (noise/saturation.py);
3. the remaining pixels are grouped by local level, and each group's noise variance is a
   robust one (median absolute deviation), so that the few pixels where structure leaks
   through do not count, except where photons are so few that the residuals are discrete
   and that deviation collapses (then the variance without far outliers,
   ``_group_variance``); the group's level is the mean of its pixels' own values, which is
   the level their noise has (by an edge, the local mean is not);
4. a weighted least-squares line ``variance = gain * level + floor`` through the groups,
   refitted once without the groups that lie far from it.

The generalised Anscombe transform needs only ``gain`` and ``floor``; its inverse also needs
the split of ``floor`` into a dark level and a read noise (nothing maps below the dark
level), made under one stated assumption: the darkest level seen in the image (the 0.5th
percentile of its local means) holds no photons (``offset`` = that level). Explicit
parameters given by the user always override the estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import convolve, maximum_filter, minimum_filter, uniform_filter

from .anscombe import PoissonGaussian, noise_model
from .saturation import clipping_levels

# Immerkaer's mask; its squared entries sum to 36, so response / 6 has the noise's variance.
_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]) / 6.0
_MAD_TO_SIGMA = 1.4826
_MAX_SAMPLES = 2_000_000
_MAX_PLANES = 16  # planes of a stack that "auto" estimates from
_MIN_GROUP = 64
# Below this many usable pixels (a 64 x 64 plane) the slope is too uncertain to act on.
MIN_SAMPLES = 3600
# Pixels are grouped by their mean over the narrowest of these windows whose means vary
# mostly with the signal (RELIABILITY): a wider window puts more pixels by edges into a
# group, a narrower one sorts them more by the noise itself, which flattens the fitted line.
_LEVEL_WINDOWS = (5, 7, 9)
RELIABILITY = 0.8  # the least share of the local means' variance that must be signal
# A model whose variance changes by less than this factor across the image's levels is
# treated as signal-independent: the transform would be nearly linear there.
SIGNAL_DEPENDENT_RATIO = 1.5
# Noise whose standard deviation stays under this fraction of the data's range even at the
# brightest level (about 40 000 photons) is too weak to be worth a transform; it also keeps
# the structure that leaks into the residual of a noise-free image from being taken for noise.
MIN_NOISE_FRACTION = 0.005


@dataclass(frozen=True)
class NoiseEstimate:
    """What :func:`estimate_noise` found, in the data's units.

    ``gain``: variance added per unit of level (data units per photo-electron);
    ``floor``: the variance the line predicts at level 0; ``offset`` and ``read_noise``: the
    dark level and read noise under the assumption that the darkest level holds no photons;
    ``levels`` / ``variances``: the groups the line was fitted to; ``signal_dependent``:
    whether the variance grows enough across the image's levels that the Anscombe transform
    should be used.
    """

    gain: float
    floor: float
    offset: float
    read_noise: float
    signal_dependent: bool
    levels: tuple[float, ...]
    variances: tuple[float, ...]

    def variance(self, level) -> np.ndarray:
        """The model's noise variance at ``level`` (data units), at least 0."""
        return np.maximum(self.gain * np.asarray(level, dtype=np.float64) + self.floor, 0.0)

    def model(self) -> PoissonGaussian | None:
        """The transform's parameters, or None when the noise is signal-independent."""
        if not self.signal_dependent:
            return None
        return PoissonGaussian(gain=self.gain, offset=self.offset, read_noise=self.read_noise)

    def as_dict(self) -> dict:
        """JSON-ready summary (the groups are left out)."""
        out = asdict(self)
        out.pop("levels")
        out.pop("variances")
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}


def _unclipped_range(data: np.ndarray, low, high) -> float:
    """The span of the values between the clipping levels (the whole span without any)."""
    inside = np.ones(data.shape, dtype=bool)
    for clip in (low, high):
        if clip is not None:
            inside &= data != clip
    values = data[inside] if inside.any() else data
    return float(values.max()) - float(values.min())


def _samples(planes: np.ndarray, low, high, high_reach: int = 3):
    """Of every usable interior pixel of every plane: its local means (one array per window
    of ``_LEVEL_WINDOWS``), residual and value; and per window the darkest local mean seen
    (0.5th percentile of a plane's, pixels by clipped ones included). Pixels within
    ``high_reach // 2`` of a value at ``high`` are left out."""
    levels = {window: [] for window in _LEVEL_WINDOWS}
    darkest = dict.fromkeys(_LEVEL_WINDOWS, np.inf)
    residuals, centres = [], []
    # a fixed, even subsample of every plane keeps big stacks quick and small in memory
    step = max(1, int(np.ceil(planes.size / _MAX_SAMPLES)))
    for plane in planes:
        x = plane.astype(np.float64)
        keep = np.ones((x.shape[0] - 2, x.shape[1] - 2), dtype=bool)
        if low is not None:
            keep &= minimum_filter(x, 3)[1:-1, 1:-1] > low
        if high is not None:
            keep &= maximum_filter(x, high_reach)[1:-1, 1:-1] < high
        residuals.append(convolve(x, _MASK, mode="reflect")[1:-1, 1:-1][keep][::step])
        centres.append(x[1:-1, 1:-1][keep][::step])
        for window in _LEVEL_WINDOWS:
            level = uniform_filter(x, window, mode="reflect")[1:-1, 1:-1]
            levels[window].append(level[keep][::step])
            darkest[window] = min(darkest[window], float(np.percentile(level[::step], 0.5)))
    local = {window: np.concatenate(parts) for window, parts in levels.items()}
    return local, np.concatenate(residuals), np.concatenate(centres), darkest


def _groups(level: np.ndarray, resid: np.ndarray, centre: np.ndarray, n_groups: int):
    """Per level group: mean level, robust variance and pixel count. Pixels are grouped by
    their local mean ``level``, but a group's level is the mean of its pixels' own values
    (``centre``): the local mean of a pixel by an edge is not the level its noise has."""
    order = np.argsort(level, kind="stable")
    level, resid, centre = level[order], resid[order], centre[order]
    lo, hi = level[int(0.001 * (level.size - 1))], level[int(0.999 * (level.size - 1))]
    edges = np.linspace(lo, hi, n_groups + 1)
    index = np.searchsorted(level, edges)
    means, variances, counts = [], [], []
    start = index[0]
    for stop in index[1:]:
        if stop - start < _MIN_GROUP:  # merge a sparse group into the next one
            continue
        means.append(centre[start:stop].mean())
        variances.append(_group_variance(resid[start:stop]))
        counts.append(stop - start)
        start = stop
    return np.array(means), np.array(variances), np.array(counts, dtype=np.float64)


def _group_variance(r: np.ndarray) -> float:
    """The noise variance of one group's residuals ``r``: robust (median absolute deviation)
    where the noise looks Gaussian, so that structure leaking into a few residuals does not
    count. At a few photons per pixel the residuals are discrete (most neighbourhoods hold
    no photon, and their residual is exactly 0), the median deviation collapses towards 0
    and the darkest, largest groups pinned the line far below the true gain (a tenth of it
    at 1-2 photons). There the deviation falls under half the variance, and the group's
    variance is its plain variance instead, without residuals beyond 5 standard deviations
    (structure)."""
    deviation = np.abs(r - np.median(r))
    robust = (_MAD_TO_SIGMA * np.median(deviation)) ** 2
    plain = float(r.var())
    for _ in range(3):
        kept = r[deviation <= 5 * np.sqrt(plain)]
        if kept.size > 1:
            plain = float(kept.var())
    return plain if robust < 0.5 * plain else float(robust)


def _fit_line(x, y, weights) -> tuple[float, float]:
    w = weights / weights.sum()
    xm, ym = (w * x).sum(), (w * y).sum()
    sxx = (w * (x - xm) ** 2).sum()
    slope = 0.0 if sxx <= 0 else (w * (x - xm) * (y - ym)).sum() / sxx
    return float(slope), float(ym - slope * xm)


def estimate_noise(image, plane_axes: tuple[int, int] = (-2, -1), n_groups: int = 40) -> NoiseEstimate:
    """Fit ``variance = gain * level + floor`` to ``image`` (2-D or any stack of planes whose
    spatial axes are ``plane_axes``); see the module docstring for how.

    Raises ``ValueError`` when the image is too small or too flat to measure noise on.
    """
    data = np.asarray(image)
    if data.dtype == bool or data.dtype.kind not in "uif":
        raise ValueError(f"noise estimation needs a numeric image, got dtype {data.dtype}")
    if data.ndim < 2:
        raise ValueError(f"noise estimation needs at least 2 dimensions, got shape {data.shape}")
    planes = np.moveaxis(data, plane_axes, (-2, -1))
    if min(planes.shape[-2:]) < 8:
        raise ValueError(f"planes of {planes.shape[-2:]} are too small to estimate noise on")
    planes = planes.reshape((-1,) + planes.shape[-2:])
    if not np.isfinite(planes).all():
        raise ValueError("image contains NaN or inf values")
    low, high = clipping_levels(planes)
    # saturated pixels are outliers in every level window that holds them and pull those
    # local means up: their neighbours are left out as far as the widest window reaches
    # (only the rim where that leaves too few)
    local, resid, centre, darkest = _samples(planes, low, high, max(_LEVEL_WINDOWS))
    if resid.size < 4 * _MIN_GROUP and high is not None:
        local, resid, centre, darkest = _samples(planes, low, high, 3)
    if resid.size < 4 * _MIN_GROUP:
        raise ValueError("too few unclipped pixels to estimate the noise")
    for window in _LEVEL_WINDOWS:
        level = local[window]
        means, variances, counts = _groups(level, resid, centre, n_groups)
        # groups within reach of a clipping level have a truncated, narrower noise distribution
        near = np.zeros(means.shape, dtype=bool)
        for clip in (low, high):
            if clip is not None:
                near |= np.abs(means - clip) < 2 * np.sqrt(variances)
        if (~near).sum() >= 2:
            means, variances, counts = means[~near], variances[~near], counts[~near]
        if means.size == 0 or not np.any(variances > 0):
            raise ValueError("the image shows no noise to estimate (constant or quantised flat)")
        gain, floor, gain_error = _line(means, variances, counts)
        # the share of the local means' variance that the fitted noise does not explain
        noise = np.maximum(gain * level + floor, 0.0).mean() / window**2
        if level.var() <= 0 or 1 - noise / level.var() >= RELIABILITY:
            break
    # a slope within noise of flat, or too few pixels to tell, is signal-independent
    measurable = gain >= 4 * gain_error and level.size >= MIN_SAMPLES
    data_range = _unclipped_range(planes, low, high)
    return _estimate(gain, floor, means, variances, data_range, measurable, darkest[window])


def _line(means, variances, counts) -> tuple[float, float, float]:
    """(gain, floor, standard error of the gain) of the weighted line through the groups."""
    if means.size < 2:
        return 0.0, float(variances.mean()), float("inf")
    # the variance of a MAD-based variance estimate scales as variance^2 / count
    weights = counts / np.maximum(variances, 1e-30) ** 2
    gain, floor = _fit_line(means, variances, weights)
    for _ in range(2):  # reweight by the fitted variance, drop far-off groups, refit
        fitted = np.maximum(gain * means + floor, 1e-30)
        spread = fitted * np.sqrt(2.0 / counts) * 1.65  # MAD's efficiency is ~0.37
        keep = np.abs(variances - fitted) < 3 * spread
        if keep.sum() < 2:
            break
        gain, floor = _fit_line(means[keep], variances[keep], counts[keep] / fitted[keep] ** 2)
    fitted = np.maximum(gain * means + floor, 1e-30)
    # a MAD-based variance from n values has a variance of about 5.4 v^2 / n
    w = counts / (5.4 * fitted**2)
    spread = (w * (means - (w * means).sum() / w.sum()) ** 2).sum()
    return gain, floor, float(np.inf if spread <= 0 else 1 / np.sqrt(spread))


def _estimate(
    gain: float, floor: float, means, variances, data_range: float, measurable: bool, darkest: float
) -> NoiseEstimate:
    dark, bright = float(means.min()), float(means.max())
    gain = max(gain, 0.0)
    low_var = gain * dark + floor
    high_var = gain * bright + floor
    if low_var <= 0:  # the line meets zero inside the data: no Gaussian floor there
        signal_dependent = gain > 0
    else:
        signal_dependent = gain > 0 and high_var / low_var >= SIGNAL_DEPENDENT_RATIO
    if not measurable or high_var <= (MIN_NOISE_FRACTION * data_range) ** 2:
        signal_dependent = False
    if gain > 0:
        # the groups leave out pixels by clipped ones, so the data may go darker than they do;
        # an offset above the data's dark level would lift every darker pixel up to it
        offset = min(dark, darkest)
        read2 = floor + gain * offset
        if read2 < 0:  # the line says the dark level is higher; keep the same floor
            offset, read2 = -floor / gain, 0.0
    else:
        offset, read2 = 0.0, max(floor, 0.0)
    return NoiseEstimate(
        gain=float(gain),
        floor=float(floor),
        offset=float(offset),
        read_noise=float(np.sqrt(read2)),
        signal_dependent=bool(signal_dependent),
        levels=tuple(float(m) for m in means),
        variances=tuple(float(v) for v in variances),
    )


def resolve_anscombe(
    anscombe, image, task: str, plane_axes: tuple[int, int] = (-2, -1)
) -> tuple[PoissonGaussian | None, NoiseEstimate | None]:
    """The transform a run uses, and the estimate behind it (None when nothing was estimated).

    ``anscombe="auto"`` (the default of ``restore()``): for denoising, estimate the noise
    model from ``image`` and use the transform when the noise is signal-dependent; for the
    other tasks, no transform. ``False`` / ``None``: off. ``True``, a dict or a
    :class:`PoissonGaussian`: the given parameters (see :func:`~.anscombe.noise_model`).
    """
    if isinstance(anscombe, str):
        if anscombe != "auto":
            raise ValueError(f"anscombe must be 'auto', True/False, a dict or a PoissonGaussian, got {anscombe!r}")
        if task != "denoise":
            return None, None
        try:
            planes = np.prod(np.shape(image)) // (np.shape(image)[plane_axes[0]] * np.shape(image)[plane_axes[1]])
            if planes > _MAX_PLANES:  # a deep stack: evenly spaced planes tell as much
                image, plane_axes = sample_planes(image, plane_axes, _MAX_PLANES), (-2, -1)
            estimate = estimate_noise(image, plane_axes)
        except ValueError:  # nothing to measure (e.g. constant): the job says what is wrong
            return None, None
        return estimate.model(), estimate
    return noise_model(anscombe), None


def sample_planes(image, plane_axes: tuple[int, int], limit: int = 16) -> np.ndarray:
    """Up to ``limit`` evenly spaced planes of a (possibly lazy) stack, as one numpy array
    ``(n, Y, X)``, for estimating the noise of a stack too large to read whole."""
    moved = np.moveaxis(image, plane_axes, (-2, -1))  # dask arrays stay lazy here
    flat = moved.reshape((-1,) + tuple(moved.shape[-2:]))
    index = np.unique(np.linspace(0, flat.shape[0] - 1, min(limit, flat.shape[0])).round().astype(int))
    return np.asarray(flat[index])


def noise_summary(model: PoissonGaussian | None, estimate: NoiseEstimate | None) -> dict | None:
    """JSON-ready, from a result's ``anscombe`` and ``noise_estimate``: the noise model a run
    used, estimated (with the fit) or given; None when there was none."""
    if model is None and estimate is None:
        return None
    return {
        "source": "estimated" if estimate is not None else "given",
        "transform": None if model is None else asdict(model),
        "estimate": None if estimate is None else estimate.as_dict(),
    }


def describe_noise(model: PoissonGaussian | None, estimate: NoiseEstimate | None) -> str:
    """One line for a status bar or terminal, from a result's ``anscombe`` and
    ``noise_estimate``: the noise model a run used."""
    if model is None:
        if estimate is None:
            return "noise model: none (signal-independent noise assumed)"
        return "noise model: estimated signal-independent, no transform"
    source = "estimated" if estimate is not None else "given"
    return (
        f"noise model ({source}): gain {model.gain:.4g}, offset {model.offset:.4g}, "
        f"read noise {model.read_noise:.4g}; Anscombe transform used"
    )


STACK_ENSEMBLE = 4  # decoders averaged on a photon-noise Z stack fitted as joint channels


def photon_options(options: dict, model: PoissonGaussian | None, profile: str, joint_stack: bool = False) -> dict:
    """The solver options for data with a noise model, with the default profile: a
    variance-stabilised fit stops by held-out pixels unless a stop rule was chosen (its
    decoder width: engine/widths.py). The noise-level rule's fraction of
    sigma^2 was calibrated on natural images with Gaussian noise; on stabilised photon
    counts of small planes it stopped far past the best result, where the held-out error
    finds it. A Z stack whose planes are the joint
    channels of one 2-D decoder (``joint_stack``, engine/layout.py ``photon_stack``) averages
    ``STACK_ENSEMBLE`` decoders unless ``ensemble`` was chosen (section 9)."""
    if model is None or profile != "default":
        return options
    changes = {}
    if options.get("stop_rule") is None:
        changes["stop_rule"] = "holdout"
    if joint_stack and options.get("ensemble") is None:
        changes["ensemble"] = STACK_ENSEMBLE
    return dict(options, **changes)


def stabilised_sigma(config, model: PoissonGaussian | None, normalizations) -> object:
    """The configuration with the noise sigma the transform promises: 1 in stabilised units,
    ``1 / (high - low)`` once normalised, where every plane shares one range and the SURE rule,
    which needs it, runs. The wavelet estimate misses it widely on stabilised counts
    (low at a few photons, where the transform's output is coarse; docs/beyond_the_paper.md
    section 8, "A SURE stop")."""
    spans = {n.high - n.low for n in normalizations if n is not None}
    if model is None or config.stop_rule != "sure" or config.noise_sigma is not None or len(spans) != 1:
        return config
    return config.replace(noise_sigma=1.0 / spans.pop())
