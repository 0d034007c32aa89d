"""What a fit reports: a :class:`ProgressEvent` after every iteration, a :class:`LogEntry` on
metric iterations, and a :class:`SolveOutcome` at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class LogEntry:
    """Metrics of one logged iteration (one value per plane for batched runs in ``*_all``)."""

    iteration: int
    loss: float
    fbc: list[float]
    ratio: float
    psnr: float | None = None
    loss_all: list[float] = field(default_factory=list)
    fbc_all: list[list[float]] = field(default_factory=list)
    ratio_all: list[float] = field(default_factory=list)
    psnr_all: list[float] | None = None
    fit_all: list[float] | None = None  # data term of the result (the average when averaging)
    noise_level_all: list[float] | None = None  # the "noise" rule's threshold for fit_all


@dataclass
class ProgressEvent:
    iteration: int  # 1-based count of iterations done
    total: int  # the iteration budget
    log: LogEntry | None = None  # set on metric iterations
    preview: np.ndarray | None = None  # (G, C, H, W) float32 in [0, 1], on preview iterations
    stopped: int = 0  # planes whose stop rule has fired


@dataclass
class SolveOutcome:
    image: np.ndarray  # (G, C, H, W) float32 in [0, 1]
    history: list[LogEntry]
    iterations: int
    stop_reason: str  # "auto_stop" | "max_iterations" | "cancelled"
    stop_iterations: list[int]  # per plane: the iteration its result was taken at
    seconds: float
    device: str
    parameters: int
    lipschitz: float | None = None  # the bound used (after the size rule)
    precision: str = "fp32"  # the decoder's arithmetic ("auto" resolved)
    rule_iterations: list[int] = field(default_factory=list)  # per plane: where a stop rule
    # fired (0 = never), also when auto_stop is off
    rules: list[str] = field(default_factory=list)  # per plane: the rule that decided its stop
    # ("holdout", "noise", "ratio", or "ratio (no measurable noise)" where the noise rule
    # could not run)
    weights: dict[str, torch.Tensor] | None = None  # the last plane's decoder where its result
    # was kept (the stop; the end without one), one plane's slice of every tensor, on the CPU:
    # a warm start for a neighbouring plane. A decoder from the end of a fit carries that
    # plane's noise into the next, and the loss grew along a stack (docs/speed.md, warm
    # starts)


class DeviceMemoryError(MemoryError):
    """The device ran out of memory; the message says how big the job was."""
