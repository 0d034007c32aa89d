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

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import SolverConfig, lipschitz_for_size, noise_fraction_for
from .devices import resolve_device
from .driving import drive
from .holdout import HeldOutPixels
from .network import Decoder, DecoderSpec, fourier_input, padded_size
from .noise import estimate_noise_sigma
from .operators import ForwardOperator
from .spectral import fbc_bands
from .stopping import LowestErrorRule, NoiseLevelStopRule, WindowedStopRule, contrast_free_ratio, plane_contrast
from .volume import VolumeDecoder
from .warm_start import plane_weights, start_from


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


NO_NOISE = 0.5 / 255  # estimated noise sigma below which the "noise" rule cannot work


class DeviceMemoryError(MemoryError):
    """The device ran out of memory; the message says how big the job was."""


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each plane of ``x`` (clipped to [0, 1]) against ``ref``, data range 1: the
    package's one PSNR (the logged metric and the demo's numbers)."""
    mse = (x.clamp(0, 1) - ref).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp(min=1e-12))


_SEEDED_BUILD = threading.Lock()


def build_network(
    config: SolverConfig, out_channels: int, groups: int, out_hw: tuple[int, int], generator_seed: int
) -> tuple[Decoder | VolumeDecoder, torch.Tensor]:
    """The seeded decoder and its fixed input, on the CPU (reproducible on any device)."""
    spec = DecoderSpec(
        out_channels=out_channels,
        channels=config.channels,
        levels=config.levels,
        upsample=config.upsample,
        lipschitz=config.lipschitz,
        sigma_estimator=config.sigma_estimator,
        groups=groups,
        power_block=config.power_block,
        power_exact_first=config.power_exact_first,
        fast_cpu_backward=config.fast_cpu_backward,
    )
    hp, wp = (padded_size(s, spec.multiple) for s in out_hw)
    # layer initialisation draws from torch's global generator: two runs building their
    # networks at once (two widgets, dask threads) would interleave their draws and neither
    # would get its seed's network, so construction is one run at a time
    with _SEEDED_BUILD, torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        if config.decoder == "volume":
            net = VolumeDecoder(spec, depth=out_channels)
            z = fourier_input(spec, hp, wp, depth=out_channels)
        else:
            net = Decoder(spec)
            z = fourier_input(spec, hp, wp)
    return net, z


def make_optimiser(params: list[torch.nn.Parameter], learning_rate: float) -> torch.optim.Adam:
    """Adam, fused (one kernel over all parameters) where this torch and device support it:
    the same update formula, 0-4 % of an iteration on the CPU (docs/speed.md)."""
    try:
        return torch.optim.Adam(params, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):  # older torch: fused Adam is CUDA-only
        return torch.optim.Adam(params, lr=learning_rate)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per plane, the mean isotropic total variation of ``x`` (G, C, H, W)."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return torch.sqrt(dx * dx + dy * dy + 1e-8).mean((1, 2, 3))


def iterate(
    observation: torch.Tensor,
    operator: ForwardOperator,
    config: SolverConfig,
    reference: torch.Tensor | None = None,
    start: dict[str, torch.Tensor] | None = None,
    keep_weights: bool = False,
) -> Generator[ProgressEvent, object, SolveOutcome]:
    """``start``: one plane's fitted decoder (``SolveOutcome.weights``) that every plane's
    decoder starts from instead of its random initialisation (a warm start).
    ``keep_weights``: return the last plane's decoder for the next fit to start from; only
    then is it copied off the device, at each new best result of that plane."""
    config.validate()
    if observation.dim() != 4:
        raise ValueError("observation must have shape (planes, channels, height, width)")
    device = resolve_device(config.device)
    started = time.perf_counter()
    groups, channels, h, w = observation.shape
    out_h, out_w = operator.output_shape((h, w))
    if config.lipschitz_by_size and config.lipschitz is not None:
        config = config.replace(
            lipschitz=lipschitz_for_size(config.lipschitz, min(out_h, out_w)), lipschitz_by_size=False
        )
    net, z = build_network(config, channels, groups, (out_h, out_w), config.seed)
    if start is not None:
        start_from(net, groups, start)
    hp, wp = (padded_size(s, net.spec.multiple) for s in (out_h, out_w))
    top, left = (hp - out_h) // 2, (wp - out_w) // 2
    holdout = None
    if config.stop_rule == "holdout":
        operator = HeldOutPixels(operator, tuple(observation.shape), config.holdout_fraction, config.seed)
        holdout = LowestErrorRule(groups, config.patience("holdout"))
    try:
        net, z = net.to(device), z.to(device)
        y = observation.to(device=device, dtype=torch.float32)
        ref = None if reference is None else reference.to(device=device, dtype=torch.float32)
        operator = operator.to(device)
        if config.init_output == "data" and start is None:
            level = operator.data_level(y)
            net.set_output_level(level)
    except torch.cuda.OutOfMemoryError as error:  # pragma: no cover - needs a GPU
        raise DeviceMemoryError(
            f"out of memory on {device} for {groups} plane(s) of {out_h}x{out_w}; "
            "use smaller tiles or fewer planes per batch"
        ) from error

    optimiser = make_optimiser(list(net.parameters()), config.learning_rate)
    schedule = None
    if config.warmup > 0 or config.lr_decay > 0:

        def factor(step: int) -> float:
            ramp = min(1.0, (step + 1) / config.warmup) if config.warmup > 0 else 1.0
            return ramp / (1 + step / config.lr_decay) if config.lr_decay > 0 else ramp

        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    rule = WindowedStopRule(config.stop_window, config.stop_epsilon, config.metrics_every)
    # the rules are always evaluated (cheap, on metric iterations): with auto_stop off they only
    # report where they fired (SolveOutcome.rule_iterations) and start settling, if enabled
    noise_rule = None
    # planes the ratio rule may stop (none when the held-out pixels decide)
    ratio_planes = torch.full((groups,), holdout is None, dtype=torch.bool)
    sigma = None
    if config.stop_rule == "noise" or config.tv_weight > 0:
        sigma = (
            torch.full((groups,), float(config.noise_sigma)) if config.noise_sigma else estimate_noise_sigma(y).cpu()
        )
    tv_scale = None
    if config.tv_weight > 0:
        tv_scale = (2 * config.tv_weight * sigma**2).to(device)
    if config.stop_rule == "noise":
        noise_rule = NoiseLevelStopRule(sigma, noise_fraction_for(config, out_h, out_w, channels))
        # the ratio rule fired long before the peak at 256 px (docs/beyond_the_paper.md
        # section 3); it only stands in where there is no measurable noise
        ratio_planes = sigma < NO_NOISE
    if holdout is not None:
        rules = ["holdout"] * groups
    elif noise_rule is not None:
        rules = ["ratio (no measurable noise)" if r else "noise" for r in ratio_planes.tolist()]
    else:
        rules = ["ratio"] * groups
    contrast = plane_contrast(y)  # the ratio rule's unit-contrast scale, constant over the run
    params = list(net.parameters())
    history: list[LogEntry] = []
    stopped_at = torch.zeros(groups, dtype=torch.long)  # where a rule fired; 0 = not yet
    kept = None  # each plane's result at its stop, allocated when a rule first fires
    best = None  # "holdout": each plane's result where its held-out error was lowest
    kept_weights = None  # the last plane's decoder where its result was kept (a warm start)
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
            x = out[..., top : top + out_h, left : left + out_w]
            loss = operator.loss_per_group(x, y)
            if tv_scale is None:
                loss.sum().backward()
            else:
                (loss + tv_scale * total_variation(x)).sum().backward()
            settle = None
            if config.settle > 0 and bool((stopped_at > 0).any()):
                # planes whose rule fired move less and less: their step is scaled per plane
                # (all parameters are group-major, so a plane is a slice of every tensor),
                # and their average of outputs (the result) takes in no more outputs
                age = (t - stopped_at).clamp(min=0).float()
                settle = torch.where(stopped_at > 0, torch.exp(-age / config.settle), torch.ones(groups)).to(device)
                taking = (stopped_at == 0).float().to(device).view(-1, 1, 1, 1)
                before = [p.detach().clone() for p in params]
            optimiser.step()
            if settle is not None:
                with torch.no_grad():
                    for p, old in zip(params, before):
                        moved = p.view(groups, -1)
                        moved.copy_(old.view(groups, -1).lerp(moved, settle[:, None]))
            if schedule is not None:
                schedule.step()
            x = x.detach()
            if config.average > 0:
                # warm-started weight (as TensorFlow's ExponentialMovingAverage with
                # num_updates): early outputs, far from the fit, fade out quickly
                decay = min(config.average, (1 + t) / (10 + t))
                if average is None:
                    average = x.clone()
                else:
                    # after a stop (with settling) the raw output, which runs ahead of the
                    # average into the noise, would pull the average after it
                    # (docs/beyond_the_paper.md section 3, holding the result)
                    average.lerp_(x, (1 - decay) if settle is None else (1 - decay) * taking)
            event = ProgressEvent(iteration=t, total=config.iterations)
            if t % config.metrics_every == 0 or t == config.iterations:
                result = current(x)
                fbc = fbc_bands(*operator.fbc_pair(result, y), n_bands=config.n_bands)
                # the rule watches the result (the average of outputs when averaging): the raw
                # iterate oscillates (docs/beyond_the_paper.md section 1), and on it the rule
                # fired far too early
                ratio = contrast_free_ratio(result, contrast)
                psnr_now = psnr(result, ref) if ref is not None else None
                fit = operator.loss_per_group(result, y) if average is not None else loss.detach()
                rows = [loss.detach(), ratio, fit] + ([psnr_now] if psnr_now is not None else [])
                if holdout is not None:  # taken to the host with the other metrics
                    rows.append(operator.heldout_error(result, y).detach())
                stacked = torch.cat([torch.stack(rows, 1), fbc], 1).cpu().numpy().astype(float)
                loss_v, ratio_v = stacked[:, 0], stacked[:, 1]
                fit_v = stacked[:, 2]
                psnr_v = stacked[:, 3] if psnr_now is not None else None
                fbc_v = stacked[:, -config.n_bands :]
                entry = LogEntry(
                    iteration=t,
                    loss=float(loss_v.mean()),
                    fbc=fbc_v.mean(0).tolist(),
                    ratio=float(ratio_v.mean()),
                    psnr=None if psnr_v is None else float(psnr_v.mean()),
                    loss_all=loss_v.tolist(),
                    fbc_all=fbc_v.tolist(),
                    ratio_all=ratio_v.tolist(),
                    psnr_all=None if psnr_v is None else psnr_v.tolist(),
                    fit_all=fit_v.tolist(),
                    noise_level_all=None if noise_rule is None else noise_rule.threshold.tolist(),
                )
                history.append(entry)
                event.log = entry
                rule.record(t, ratio)
                fired = rule.check(t)
                newly = torch.zeros(groups, dtype=torch.bool)
                if fired is not None:
                    newly |= fired.cpu() & ratio_planes
                if noise_rule is not None:
                    newly |= noise_rule.check(fit).cpu()
                snapshot, at = result, torch.full((groups,), t, dtype=torch.long)
                if holdout is not None:
                    improved = holdout.record(t, torch.from_numpy(stacked[:, len(rows) - 1]))
                    if improved.any():
                        best = result.clone() if best is None else best
                        on_device = improved.to(device)
                        best[on_device] = result[on_device]
                        if keep_weights and improved[-1]:
                            kept_weights = plane_weights(net, groups, groups - 1)
                    newly |= holdout.check(t)
                    snapshot, at = best, holdout.best_iteration
                newly &= stopped_at == 0
                if newly.any():
                    if config.auto_stop:
                        kept = torch.empty_like(result) if kept is None else kept
                        on_device = newly.to(device)
                        kept[on_device] = snapshot[on_device]
                    stopped_at[newly] = at[newly].clamp(min=1)
                    if keep_weights and newly[-1] and holdout is None:
                        kept_weights = plane_weights(net, groups, groups - 1)
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
            f"({n_params:,} parameters); use smaller tiles or fewer planes per batch"
        ) from error

    if x is None:
        raise RuntimeError("the solver ran no iteration")
    final = current(x).clone()
    rule_iterations = stopped_at.tolist()
    if not config.auto_stop:  # the rule only settled the run; every plane ran to t
        stopped_at.zero_()
    running = stopped_at == 0
    if kept is not None:
        final[(~running).to(device)] = kept[(~running).to(device)]
    stop_iterations = torch.where(running, torch.full_like(stopped_at, t), stopped_at).tolist()
    if keep_weights and (kept_weights is None or not config.auto_stop):
        kept_weights = plane_weights(net, groups, groups - 1)  # no stop to take it at: the end
    image = operator.finish(final, y).float().cpu().numpy()
    if not np.isfinite(image).all():
        raise FloatingPointError("the optimisation produced non-finite values")
    return SolveOutcome(
        image=image,
        history=history,
        iterations=t,
        stop_reason=reason,
        stop_iterations=stop_iterations,
        seconds=time.perf_counter() - started,
        device=str(device),
        parameters=n_params,
        lipschitz=config.lipschitz,
        rule_iterations=rule_iterations,
        rules=rules,
        weights=kept_weights,
    )


def solve(observation, operator, config, reference=None, callback=None) -> SolveOutcome:
    """Run :func:`iterate` to the end. ``callback(event)`` returning ``False`` cancels."""
    return drive(iterate(observation, operator, config, reference), callback)
