"""The optimisation loop as a generator of progress events.

``iterate(observation, operator, config)`` fits ``G`` independent decoders (one per plane of
``observation``, shape ``(G, C, h, w)``, values in [0, 1]) and yields a :class:`ProgressEvent`
after every iteration. Sending a truthy value into the generator (``gen.send(True)``) cancels
the run at that point; the generator's return value (``StopIteration.value``) is a
:class:`SolveOutcome` in every case. :func:`solve` runs it to the end.

Host synchronisation happens only on metric iterations (every ``metrics_every``) and on
preview iterations; other iterations queue GPU work and yield a bare event.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import SolverConfig, lipschitz_for_size
from .devices import resolve_device
from .driving import drive
from .network import Decoder, DecoderSpec, fourier_input, padded_size
from .operators import ForwardOperator
from .spectral import fbc_bands
from .stopping import WindowedStopRule, stop_ratio


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


@dataclass
class ProgressEvent:
    iteration: int                      # 1-based count of iterations done
    total: int                          # the iteration budget
    log: LogEntry | None = None         # set on metric iterations
    preview: np.ndarray | None = None   # (G, C, H, W) float32 in [0, 1], on preview iterations
    stopped: int = 0                    # planes whose stop rule has fired


@dataclass
class SolveOutcome:
    image: np.ndarray                   # (G, C, H, W) float32 in [0, 1]
    history: list[LogEntry]
    iterations: int
    stop_reason: str                    # "auto_stop" | "max_iterations" | "cancelled"
    stop_iterations: list[int]          # per plane: the iteration its result was taken at
    seconds: float
    device: str
    parameters: int
    lipschitz: float | None = None     # the bound used (after the size rule)


class DeviceMemoryError(MemoryError):
    """The device ran out of memory; the message says how big the job was."""


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    mse = (x.clamp(0, 1) - ref).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp(min=1e-12))


def build_network(config: SolverConfig, out_channels: int, groups: int, out_hw: tuple[int, int],
                  generator_seed: int) -> tuple[Decoder, torch.Tensor]:
    """The seeded decoder and its fixed input, on the CPU (reproducible on any device)."""
    spec = DecoderSpec(out_channels=out_channels, channels=config.channels, levels=config.levels,
                       upsample=config.upsample, lipschitz=config.lipschitz,
                       sigma_estimator=config.sigma_estimator, groups=groups,
                       **config.extras.get("decoder", {}))
    hp, wp = (padded_size(s, spec.multiple) for s in out_hw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        net = Decoder(spec)
        z = fourier_input(spec, hp, wp)
    return net, z


def iterate(observation: torch.Tensor, operator: ForwardOperator, config: SolverConfig,
            reference: torch.Tensor | None = None
            ) -> Generator[ProgressEvent, object, SolveOutcome]:
    config.validate()
    if observation.dim() != 4:
        raise ValueError("observation must have shape (planes, channels, height, width)")
    device = resolve_device(config.device)
    started = time.perf_counter()
    groups, channels, h, w = observation.shape
    out_h, out_w = operator.output_shape((h, w))
    if config.lipschitz_by_size and config.lipschitz is not None:
        config = config.replace(lipschitz=lipschitz_for_size(config.lipschitz, min(out_h, out_w)),
                                lipschitz_by_size=False)
    net, z = build_network(config, channels, groups, (out_h, out_w), config.seed)
    hp, wp = z.shape[-2] * net.spec.multiple, z.shape[-1] * net.spec.multiple
    top, left = (hp - out_h) // 2, (wp - out_w) // 2
    try:
        net, z = net.to(device), z.to(device)
        y = observation.to(device=device, dtype=torch.float32)
        ref = None if reference is None else reference.to(device=device, dtype=torch.float32)
        operator = operator.to(device)
        if config.init_output == "data":
            level = y.mean(dim=(2, 3)).reshape(-1)
            net.set_output_level(level)
    except torch.cuda.OutOfMemoryError as error:  # pragma: no cover - needs a GPU
        raise DeviceMemoryError(
            f"out of memory on {device} for {groups} plane(s) of {out_h}x{out_w}; "
            "use smaller tiles or fewer planes per batch") from error

    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = None
    if config.warmup > 0 or config.lr_decay > 0:
        def factor(step: int) -> float:
            ramp = min(1.0, (step + 1) / config.warmup) if config.warmup > 0 else 1.0
            return ramp / (1 + step / config.lr_decay) if config.lr_decay > 0 else ramp

        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    rule = WindowedStopRule(config.stop_window, config.stop_epsilon, config.metrics_every)
    history: list[LogEntry] = []
    stopped_at = torch.zeros(groups, dtype=torch.long)     # 0 = still running
    kept = None        # each plane's result at its stop, allocated when a rule first fires
    average = None
    n_params = sum(p.numel() for p in net.parameters())
    reason = "max_iterations"
    t = 0
    x = None

    def current(x_now):
        return x_now if average is None else average

    try:
        for t in range(1, config.iterations + 1):
            optimiser.zero_grad(set_to_none=True)
            out = net(z).view(groups, channels, hp, wp)
            x = out[..., top:top + out_h, left:left + out_w]
            loss = operator.loss_per_group(x, y)
            loss.sum().backward()
            optimiser.step()
            if schedule is not None:
                schedule.step()
            x = x.detach()
            if config.average > 0:
                # warm-started weight (as TensorFlow's ExponentialMovingAverage with
                # num_updates): early outputs, far from the fit, fade out quickly
                decay = min(config.average, (1 + t) / (10 + t))
                average = x.clone() if average is None else average.lerp_(x, 1 - decay)
            event = ProgressEvent(iteration=t, total=config.iterations)
            if t % config.metrics_every == 0 or t == config.iterations:
                result = current(x)
                fbc = fbc_bands(*operator.fbc_pair(result, y), n_bands=config.n_bands)
                # the rule watches the result (the average of outputs when averaging): on the
                # raw iterate it fired 1.9 dB early on House 128 px (docs/beyond_the_paper.md)
                ratio = stop_ratio(result)
                psnr = _psnr(result, ref) if ref is not None else None
                rows = [loss.detach(), ratio] + ([psnr] if psnr is not None else [])
                stacked = torch.cat([torch.stack(rows, 1), fbc], 1).cpu().numpy().astype(float)
                loss_v, ratio_v = stacked[:, 0], stacked[:, 1]
                psnr_v = stacked[:, 2] if psnr is not None else None
                fbc_v = stacked[:, -config.n_bands:]
                entry = LogEntry(iteration=t, loss=float(loss_v.mean()),
                                 fbc=fbc_v.mean(0).tolist(), ratio=float(ratio_v.mean()),
                                 psnr=None if psnr_v is None else float(psnr_v.mean()),
                                 loss_all=loss_v.tolist(), fbc_all=fbc_v.tolist(),
                                 ratio_all=ratio_v.tolist(),
                                 psnr_all=None if psnr_v is None else psnr_v.tolist())
                history.append(entry)
                event.log = entry
                if config.auto_stop:
                    rule.record(t, ratio)
                    fired = rule.check(t)
                    if fired is not None:
                        newly = fired.cpu() & (stopped_at == 0)
                        if newly.any():
                            kept = torch.empty_like(result) if kept is None else kept
                            on_device = newly.to(device)
                            kept[on_device] = result[on_device]
                            stopped_at[newly] = t
                    event.stopped = int((stopped_at > 0).sum())
            if config.preview_every and t % config.preview_every == 0:
                event.preview = operator.finish(current(x), y).float().cpu().numpy()
            cancel = yield event
            if cancel:
                reason = "cancelled"
                break
            if config.auto_stop and bool((stopped_at > 0).all()):
                reason = "auto_stop"
                break
    except torch.cuda.OutOfMemoryError as error:  # pragma: no cover - needs a GPU
        raise DeviceMemoryError(
            f"out of memory on {device} while fitting {groups} plane(s) of {out_h}x{out_w} "
            f"({n_params:,} parameters); use smaller tiles or fewer planes per batch") from error

    if x is None:
        raise RuntimeError("the solver ran no iteration")
    final = current(x).clone()
    running = stopped_at == 0
    if kept is not None:
        final[(~running).to(device)] = kept[(~running).to(device)]
    stop_iterations = torch.where(running, torch.full_like(stopped_at, t), stopped_at).tolist()
    image = operator.finish(final, y).float().cpu().numpy()
    if not np.isfinite(image).all():
        raise FloatingPointError("the optimisation produced non-finite values")
    return SolveOutcome(image=image, history=history, iterations=t, stop_reason=reason,
                        stop_iterations=stop_iterations, seconds=time.perf_counter() - started,
                        device=str(device), parameters=n_params, lipschitz=config.lipschitz)


def solve(observation, operator, config, reference=None, callback=None) -> SolveOutcome:
    """Run :func:`iterate` to the end. ``callback(event)`` returning ``False`` cancels."""
    return drive(iterate(observation, operator, config, reference), callback)
