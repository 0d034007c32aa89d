"""Solver settings and the per-task defaults (docs/method.md sections 3, 6 and 7).

Two profiles:

* ``"paper"``: the authors' released configuration: bilinear upsampling, their per-task
  lambda, Adam lr 1e-3, exact SVD every step, every metric every iteration, default head
  initialisation, the last iterate as the result.
* ``"default"``: ours. Same network and loss, with the changes that measured better (each is
  documented in docs/api.md and docs/beyond_the_paper.md and can be switched back one by
  one).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

TASKS = ("denoise", "deblock", "inpaint", "super_resolution", "enhance")
PROFILES = ("default", "paper")
DECODERS = ("plane", "volume")
STOP_RULES = ("ratio", "noise", "holdout", "sure")
HOLDOUT_PATIENCE, SURE_PATIENCE = 30, 100  # see SolverConfig.holdout_patience
PRECISIONS = ("auto", "fp32", "bf16")
UPSAMPLERS = ("gaussian", "bilinear", "nearest", "deconv")  # here, not in network.py, so that checks need no torch
# the "power" sigma estimator's defaults (core/layers.py LipschitzBound explains the choice);
# here so that SolverConfig, DecoderSpec and the layers share one value without torch
POWER_BLOCK = 4  # vectors the estimator iterates (subspace iteration if > 1)
POWER_EXACT_FIRST = 25  # training calls computed exactly before the power steps take over

# lambda per task in the authors' scripts (super-resolution has no released script).
PAPER_LIPSCHITZ = {"denoise": 1.4, "deblock": 1.4, "inpaint": 1.6, "super_resolution": 1.4, "enhance": 1.0}
PAPER_ITERATIONS = {"denoise": 10_000, "deblock": 10_000, "inpaint": 10_000, "super_resolution": 10_000, "enhance": 100}


@dataclass
class SolverConfig:
    """Every knob of one optimisation. ``None`` never appears here: the API fills defaults."""

    iterations: int = 10_000
    lipschitz: float | None = 1.4  # None: no Lipschitz control (plain decoder)
    upsample: str = "bilinear"
    channels: int = 128
    decoder: str = "plane"  # "plane": 2-D decoder per plane; "volume": one 3-D
    # decoder whose output channels are the Z planes
    levels: int = 5
    sigma_estimator: str = "exact"
    learning_rate: float = 1e-3
    warmup: int = 0  # linear learning-rate warm-up iterations
    lr_decay: int = 0  # 0 = constant; else lr / (1 + t / lr_decay)
    init_output: str = "default"  # "default" | "data": head starts at the data's mean level
    auto_stop: bool = True
    stop_window: int = 100
    stop_epsilon: float = 0.01
    stop_rule: str = "ratio"  # "ratio": the paper's blur/sharpness rule; "noise":
    # stop when the result fits the data to the noise
    # level (denoising; the ratio rule stands in on planes
    # without measurable noise); "holdout": stop
    # where the error on held-out pixels was lowest
    # (core/holdout.py; denoising and deblocking); "sure":
    # where an unbiased estimate of the error was lowest
    # (core/sure.py; denoising)
    holdout_fraction: float = 0.1  # "holdout" rule: share of pixels left out of the fit
    holdout_patience: int | None = None  # "holdout" and "sure" rules: stop after this many
    # iterations without a lower error estimate; None: HOLDOUT_PATIENCE for "holdout" (on
    # the fluorescence cases a longer patience never kept another result), SURE_PATIENCE for
    # "sure" (its one-probe estimate is noisier and a short patience lost; docs/speed.md);
    # the "holdout" rule also waits while its error is still falling (core/stopping.py)
    noise_sigma: float | None = None  # the noise sigma in [0, 1] units; None: estimated
    noise_fraction: float | None = None  # "noise" rule: stop at fit <= fraction * sigma^2;
    # None: from the image size (noise_fraction_for)
    settle: int = 0  # after a plane's rule fires, its learning rate
    # decays as exp(-(t - t_stop) / settle) and its average
    # of outputs is kept as it is (0 = off), so a run
    # that goes on keeps the stopped result
    tv_weight: float = 0.0  # total-variation term added to the data term, in units
    # of the plane's noise variance: loss = fit + 2 w sigma^2
    # mean|grad x| (0 = off)
    metrics_every: int = 1  # FBC / ratio / PSNR (and the stop rule) every k iterations
    n_bands: int = 5
    average: float = 0.0  # exponential average of outputs (0 = off, e.g. 0.99;
    # the weight ramps up as min(average, (1+t)/(10+t)))
    lipschitz_by_size: bool = False  # scale lambda down for small images (see lipschitz_for_size)
    preview_every: int = 0  # 0: no previews
    seed: int = 0
    device: str = "auto"
    power_block: int = POWER_BLOCK  # "power" estimator: warm vectors per layer
    power_exact_first: int = POWER_EXACT_FIRST  # "power" estimator: exact calls at the start
    precision: str = "fp32"  # "bf16": the decoder's forward and backward under bfloat16 autocast
    # (the Lipschitz bounds, the loss, Adam, the average and the metrics stay fp32), faster
    # where the processor computes in bf16 (AVX-512 BF16 or AMX CPUs, recent GPUs); "auto"
    # (the default profile): bf16 for a large enough fit on a CPU that computes in bf16
    # natively (core/devices.py resolve_precision), else fp32 (docs/speed.md, "bfloat16")
    ensemble: int = 1  # decoders fitted to each plane, each from its own random start (and its
    # own held-out pixels), whose results are averaged (core/ensemble.py); a fit stopped early
    # varies with its start, and the average keeps what the starts agree on
    fast_cpu_backward: bool = True  # CPU convolutions: weight gradient as a forward convolution
    # (core/convolution.py; same sums, other kernels); False runs torch's own backward

    def validate(self) -> None:
        self._check_types()
        if self.iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {self.iterations!r}")
        if self.lipschitz is not None and not (self.lipschitz > 0):
            raise ValueError(f"lipschitz must be > 0 (or None for no control), got {self.lipschitz!r}")
        if self.sigma_estimator not in ("exact", "power"):
            raise ValueError(f"sigma_estimator must be 'exact' or 'power', got {self.sigma_estimator!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.channels < 1 or self.channels > 4096:
            raise ValueError(f"channels must be between 1 and 4096, got {self.channels!r}")
        if self.ensemble < 1 or self.ensemble > 64:
            raise ValueError(f"ensemble must be between 1 and 64, got {self.ensemble!r}")
        if self.ensemble > 1 and self.stop_rule == "sure":
            raise ValueError("ensemble > 1 cannot be combined with stop_rule='sure' (its twin fit is one decoder)")
        if self.levels < 1 or self.levels > 8:
            raise ValueError(f"levels must be between 1 and 8, got {self.levels!r}")
        if self.lr_decay < 0 or self.warmup < 0:
            raise ValueError("lr_decay and warmup must be >= 0")
        if self.metrics_every < 1:
            raise ValueError(f"metrics_every must be >= 1, got {self.metrics_every!r}")
        if not 0 <= self.average < 1:
            raise ValueError(f"average must be in [0, 1), got {self.average!r}")
        if self.init_output not in ("default", "data"):
            raise ValueError(f"init_output must be 'default' or 'data', got {self.init_output!r}")
        if self.stop_rule not in STOP_RULES:
            raise ValueError(f"stop_rule must be one of {STOP_RULES}, got {self.stop_rule!r}")
        if not 0 < self.holdout_fraction < 0.5 or (self.holdout_patience is not None and self.holdout_patience < 1):
            raise ValueError("holdout_fraction must be in (0, 0.5) and holdout_patience >= 1")
        if self.noise_sigma is not None and not 0 < self.noise_sigma < 1:
            raise ValueError(f"noise_sigma must be in (0, 1) (image units), got {self.noise_sigma!r}")
        if self.noise_fraction is not None and not 0 < self.noise_fraction <= 4:
            raise ValueError(f"noise_fraction must be in (0, 4], got {self.noise_fraction!r}")
        if not 0 <= self.tv_weight < 1e4:
            raise ValueError(f"tv_weight must be in [0, 1e4), got {self.tv_weight!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.settle < 0:
            raise ValueError(f"settle must be >= 0, got {self.settle!r}")
        if self.n_bands < 1:
            raise ValueError(f"n_bands must be >= 1, got {self.n_bands!r}")
        if self.power_block < 1 or self.power_exact_first < 0:
            raise ValueError("power_block must be >= 1 and power_exact_first >= 0")

    def _check_types(self) -> None:
        """Each field holds its annotated kind: an integer (not a bool), a finite real
        number, a string or a bool; the range checks in :meth:`validate` come after."""
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if kind.endswith("| None") and value is None:
                continue
            kind = kind.replace(" | None", "")
            if kind == "int":
                ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
                what = "an integer"
            elif kind == "float":
                ok = (
                    isinstance(value, (int, float, np.integer, np.floating))
                    and not isinstance(value, (bool, np.bool_))
                    and math.isfinite(value)
                )
                what = "a finite number"
            elif kind == "bool":
                ok, what = isinstance(value, (bool, np.bool_)), "True or False"
            else:
                ok, what = isinstance(value, str), "a string"
            if not ok:
                raise ValueError(f"{f.name} must be {what}, got {value!r}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed!r}")

    def patience(self, rule: str) -> int:
        """The lowest-error rules' patience: the one given, else the rule's own."""
        if self.holdout_patience is not None:
            return self.holdout_patience
        return SURE_PATIENCE if rule == "sure" else HOLDOUT_PATIENCE

    def replace(self, **changes) -> SolverConfig:
        return dataclasses.replace(self, **changes)


def noise_fraction_for(config: SolverConfig, height: int, width: int, channels: int = 3) -> float:
    """The "noise" rule's fraction of sigma^2: the fixed ``noise_fraction`` if set, else
    ``1 - 0.15 * (64 / side) ** 1.74 / channels ** 0.37`` with ``side = sqrt(height * width)``,
    at least 0.5. RGB: 0.90 at 64 px, 0.970 at 128, 0.991 at 256; grey: 0.85 at 64 px,
    0.955 at 128, 0.986 at 256.

    A fit that has used ``dof`` degrees of freedom on ``n`` noisy values leaves a residual of
    about ``(1 - dof / n) sigma^2`` (the discrepancy principle). Measured with the default
    profile (docs/beyond_the_paper.md), the averaged output peaked at 0.77-0.97 (median
    0.87) of the estimated sigma^2 on RGB images at 64 px, 0.78-0.86 on grey ones, and at
    0.946-0.970 on RGB at 128 px: the fraction the decoder spends on the signal shrinks with
    the image's side and grows less than in proportion with its channels. A stop a little
    before the peak costs less than one after it, so the fraction sits above the median.
    """
    if config.noise_fraction is not None:
        return float(config.noise_fraction)
    side = max(height * width, 1) ** 0.5
    return max(0.5, 1.0 - 0.15 * (64.0 / side) ** 1.74 / max(channels, 1) ** 0.37)


def lipschitz_for_size(lipschitz: float, size: int) -> float:
    """Lambda for an output whose shorter side is ``size`` px: the given value at >= 256 px,
    6/7 of it at <= 64 px (1.4 -> 1.2), log-linear in between.

    A smaller image gives the same decoder more capacity per pixel: at 64 px lambda 1.4
    slid far from its peak where 1.2 held much closer, while at 256 px 1.4 held
    (docs/beyond_the_paper.md sections 1-2).
    """
    import math

    t = min(1.0, max(0.0, math.log2(max(size, 1) / 64) / 2))
    return lipschitz * (6 / 7 + t / 7)


def task_defaults(task: str, profile: str = "default") -> SolverConfig:
    """The configuration a task runs with when the caller sets nothing."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    paper = SolverConfig(
        iterations=PAPER_ITERATIONS[task],
        lipschitz=PAPER_LIPSCHITZ[task],
        upsample="bilinear",
        sigma_estimator="exact",
        metrics_every=1,
        auto_stop=task != "enhance",
    )
    if profile == "paper":
        return paper
    if task == "enhance":  # a 100-iteration low-pass fit: averaging and stop rules do not apply
        return paper.replace(sigma_estimator="power", metrics_every=10, init_output="data")
    return paper.replace(
        sigma_estimator="power",
        metrics_every=10,
        init_output="data",
        precision="auto",
        average=0.99,
        settle=50,
        stop_rule="noise" if task == "denoise" else "ratio",
    )
