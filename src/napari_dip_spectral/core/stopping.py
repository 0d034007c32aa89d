"""Automatic stopping rule of docs/method.md section 5, vectorised in torch.

``stop_ratio(x) = perceptual_blur(x) / mlv_sharpness(x)`` falls while the network adds
detail and flattens once it stops learning; :class:`WindowedStopRule` stops when the means
of two consecutive windows of ``n`` iterations differ by less than ``epsilon``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .spectral import to_grey


def _grey_batch(x: torch.Tensor) -> torch.Tensor:
    """``(G, C, H, W)`` or ``(C, H, W)`` -> ``(G, 1, H, W)``."""
    g = to_grey(x)
    return g.reshape(-1, 1, *g.shape[-2:])


def perceptual_blur(x: torch.Tensor, filter_size: int = 9) -> torch.Tensor:
    """Crete-Roffet et al. (2007) no-reference blur in [0, 1] (higher = blurrier), per image.

    Re-blur with a ``1 x filter_size`` and a ``filter_size x 1`` box filter ('same', zero
    padded), crop the borders, and measure how much of the absolute first-difference
    variation the re-blur removes, per direction; the result is the larger of the two.
    """
    img = _grey_batch(x.float())
    box = torch.full((1, 1, filter_size, 1), 1.0 / filter_size, dtype=img.dtype, device=img.device)
    half = filter_size // 2
    blur_v = F.conv2d(img, box, padding=(half, 0))
    blur_h = F.conv2d(img, box.transpose(2, 3), padding=(0, half))
    crop = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    img, blur_v, blur_h = img[crop], blur_v[crop], blur_h[crop]

    def lost_fraction(sharp, blurred, dim):
        d_f = sharp.diff(dim=dim).abs()[..., 1:-1, 1:-1]
        d_b = blurred.diff(dim=dim).abs()[..., 1:-1, 1:-1]
        s_f = d_f.flatten(1).sum(1)
        s_v = (d_f - d_b).clamp(min=0).flatten(1).sum(1)
        return (s_f - s_v) / s_f.clamp(min=1e-12)

    return torch.maximum(lost_fraction(img, blur_v, 2), lost_fraction(img, blur_h, 3))


def mlv_sharpness(x: torch.Tensor, top: int = 1000, alpha: float = -0.01) -> torch.Tensor:
    """Maximum-local-variation sharpness (Bahrami and Kot 2014) as in the authors' port.

    MLV of an interior pixel = max over its 8 neighbours of (neighbour - centre). The values
    are sorted in descending order, the largest is dropped, the k-th remaining one is weighted
    by ``exp(alpha * k)``, and the result is the root mean square of weighted entries
    ``2 .. top``. Only the ``top + 1`` largest values are needed, so ``topk`` replaces a sort.
    """
    img = _grey_batch(x.float())[:, 0]
    centre = img[:, 1:-1, 1:-1]
    h, w = centre.shape[-2:]
    shifts = [
        img[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] - centre
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dy, dx) != (0, 0)
    ]
    mlv = torch.stack(shifts).amax(0).flatten(1)
    k = min(top + 1, mlv.shape[1])
    values = torch.topk(mlv, k, dim=1).values[:, 1:]  # drop the single largest
    rank = torch.arange(1, values.shape[1] + 1, device=values.device, dtype=values.dtype)
    weighted = (values * torch.exp(alpha * rank))[:, 1:]  # keep weighted entries 2..top
    return weighted.pow(2).mean(1).sqrt()


def stop_ratio(x: torch.Tensor) -> torch.Tensor:
    """Blur / sharpness ratio per image (``(G,)``); about 2.4-2.9 on clean natural images,
    1.2 on sigma=25 noise, 7-9 on a sigma=1 Gaussian blur (docs/method.md section 5)."""
    return perceptual_blur(x) / mlv_sharpness(x).clamp(min=1e-12)


def plane_contrast(observation: torch.Tensor) -> torch.Tensor:
    """``(G,)``: the range of each plane's observation (at least 1e-3)."""
    flat = observation.flatten(1)
    return (flat.amax(1) - flat.amin(1)).clamp(min=1e-3)


def contrast_free_ratio(x: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """:func:`stop_ratio` of ``x`` times its planes' ``contrast`` (:func:`plane_contrast` of
    the observation): the blur part is a fraction and the sharpness part scales with
    contrast, so this is the ratio of the planes scaled to a unit range, and one ``epsilon``
    means the same for a 12-bit image in a 16-bit container as for a full-range one
    (unchanged for min-max normalised planes)."""
    return stop_ratio(x) * contrast.to(x.device)


class WindowedStopRule:
    """Stop once ``|mean(ratio over [t-2n, t-n)) - mean(ratio over (t-n, t))| < epsilon``.

    With ratios recorded every iteration (``every=1``) this is the authors' rule: the second
    window holds ``n - 1`` values, ``t-n+1 .. t-1``. Ratios may be recorded every ``k``
    iterations instead (``every=k``): the windows are then the samples in ``[t-2n, t-n)`` and
    ``[t-n, t)``, so that both hold ``n / k`` samples and their centres stay ``n`` apart. Works
    on ``G`` independent series at once; a series that has stopped stays stopped. Ratios stay on
    the device; :meth:`check` returns a boolean tensor, so the caller decides when to
    synchronise.
    """

    def __init__(self, window: int = 100, epsilon: float = 0.01, every: int = 1):
        if window < 1 or not epsilon > 0 or every < 1:
            raise ValueError("window and every must be >= 1 and epsilon > 0")
        self.window, self.epsilon, self.every = int(window), float(epsilon), int(every)
        self.iterations: list[int] = []
        self.ratios: list[torch.Tensor] = []

    def record(self, iteration: int, ratio: torch.Tensor) -> None:
        self.iterations.append(int(iteration))
        self.ratios.append(ratio.detach().reshape(-1))
        # only the last 2n iterations are ever needed
        while self.iterations and self.iterations[0] < iteration - 2 * self.window:
            self.iterations.pop(0)
            self.ratios.pop(0)

    def check(self, iteration: int) -> torch.Tensor | None:
        """Boolean ``(G,)`` tensor (True = stop), or None while fewer than 2n iterations ran."""
        t, n = int(iteration), self.window
        if t <= 2 * n or not self.ratios:
            return None
        first = [r for i, r in zip(self.iterations, self.ratios) if t - 2 * n <= i < t - n]
        start = t - n + 1 if self.every == 1 else t - n
        second = [r for i, r in zip(self.iterations, self.ratios) if start <= i < t]
        if not first or not second:
            return None
        m1 = torch.stack(first).mean(0)
        m2 = torch.stack(second).mean(0)
        # a flat output has ratio 0 (no variation to blur or sharpen) and so a ratio that
        # "stopped changing": never a stop (it would return a blank image as finished)
        return ((m1 - m2).abs() < self.epsilon) & (m2 > 0)


class NoiseLevelStopRule:
    """Stop once the result's data term falls to ``fraction`` of the noise variance.

    The discrepancy principle (Morozov): an estimate that fits a noisy observation more
    closely than the noise allows has started to fit the noise. ``sigma`` is per plane
    (``(G,)``, e.g. from :func:`core.noise.estimate_noise_sigma`); ``fraction`` absorbs that
    estimate's bias and the degrees of freedom the fit spends on the signal
    (:func:`core.config.noise_fraction_for`).
    """

    def __init__(self, sigma: torch.Tensor, fraction: float):
        if not fraction > 0:
            raise ValueError(f"fraction must be > 0, got {fraction!r}")
        self.threshold = fraction * sigma.detach().float().reshape(-1) ** 2

    def check(self, fit: torch.Tensor) -> torch.Tensor:
        """Boolean ``(G,)`` tensor: True where the data term ``fit`` is at or below the level."""
        return fit.reshape(-1) <= self.threshold.to(fit.device)


class LowestErrorRule:
    """Per plane: the lowest error estimate seen (held-out pixels' error, core/holdout.py, or
    SURE, core/sure.py), where it was, and whether the plane has gone ``patience`` iterations
    without improving on it.

    With ``wait_while_falling`` a plane whose error fell since the previous record is not
    stopped yet, however long ago its lowest error was: early in a fit the held-out error can
    rise for a few records (Adam's steps overshoot) and then fall below its old lowest, and a
    stop that came in such a bump kept a result from far too early (docs/speed.md, "A stop
    that waits while the error falls"). Once the fit starts to fit noise the error rises, so
    the wait costs few iterations.
    """

    def __init__(self, groups: int, patience: int, wait_while_falling: bool = False):
        if patience < 1:
            raise ValueError(f"stop patience must be >= 1, got {patience!r}")
        self.patience = int(patience)
        self.wait_while_falling = bool(wait_while_falling)
        self.best = torch.full((groups,), float("inf"))
        self.best_iteration = torch.zeros(groups, dtype=torch.long)
        self.last = torch.full((groups,), float("inf"))
        self.falling = torch.zeros(groups, dtype=torch.bool)

    def record(self, iteration: int, error: torch.Tensor) -> torch.Tensor:
        """Boolean ``(G,)``: the planes whose error improved at ``iteration``."""
        error = error.detach().float().cpu().reshape(-1)
        improved = error < self.best
        self.best = torch.where(improved, error, self.best)
        self.best_iteration[improved] = iteration
        self.falling = error < self.last
        self.last = error
        return improved

    def check(self, iteration: int) -> torch.Tensor:
        """Boolean ``(G,)``: the planes that have not improved for ``patience`` iterations
        (and, with ``wait_while_falling``, whose error did not fall at the last record)."""
        waited = (iteration - self.best_iteration) >= self.patience
        return waited & ~self.falling if self.wait_while_falling else waited
