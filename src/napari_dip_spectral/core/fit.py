"""One fit of ``G`` decoders to the ``G`` planes of an observation, a step at a time.

:class:`Fit` holds everything a fit carries between iterations (the decoders, their input,
Adam, the output average, the stop rules and what each plane kept) and offers the four things
a loop does with it: :meth:`Fit.step`, :meth:`Fit.log` on metric iterations, :attr:`Fit.done`
and :meth:`Fit.outcome`. ``core/solver.py`` is that loop; the benchmarks drive the same object.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch

from .config import SolverConfig, lipschitz_for_size, noise_fraction_for
from .devices import resolve_device, resolve_precision
from .holdout import HeldOutPixels
from .network import Decoder, DecoderSpec, fourier_input, padded_size
from .noise import estimate_noise_sigma
from .operators import ForwardOperator
from .progress import DeviceMemoryError, LogEntry, SolveOutcome
from .spectral import fbc_bands
from .stopping import LowestErrorRule, NoiseLevelStopRule, WindowedStopRule, contrast_free_ratio, plane_contrast
from .volume import VolumeDecoder
from .warm_start import plane_weights, start_from, update_member

NO_NOISE = 0.5 / 255  # estimated noise sigma below which the "noise" rule cannot work


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
    the same update formula, slightly faster (docs/speed.md, "CPU kernels")."""
    try:
        return torch.optim.Adam(params, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):  # older torch: fused Adam is CUDA-only
        return torch.optim.Adam(params, lr=learning_rate)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per plane, the mean isotropic total variation of ``x`` (G, C, H, W)."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return torch.sqrt(dx * dx + dy * dy + 1e-8).mean((1, 2, 3))


class Fit:
    """The state of one fit. ``start``: one plane's fitted decoder (``SolveOutcome.weights``)
    that every plane's decoder starts from instead of its random initialisation (a warm
    start). ``keep_weights``: keep the last plane's decoder for the next fit to start from;
    only then is it copied off the device, at each new best result of that plane.
    Construction validates the configuration and moves everything to the device."""

    def __init__(
        self,
        observation: torch.Tensor,
        operator: ForwardOperator,
        config: SolverConfig,
        reference: torch.Tensor | None = None,
        start: dict[str, torch.Tensor] | None = None,
        keep_weights: bool = False,
    ):
        config.validate()
        if observation.dim() != 4:
            raise ValueError("observation must have shape (planes, channels, height, width)")
        self.device = device = resolve_device(config.device)
        self.started = time.perf_counter()
        groups, channels, h, w = observation.shape
        self.groups, self.channels = groups, channels
        out_h, out_w = self.out_hw = operator.output_shape((h, w))
        if config.lipschitz_by_size and config.lipschitz is not None:
            config = config.replace(
                lipschitz=lipschitz_for_size(config.lipschitz, min(out_h, out_w)), lipschitz_by_size=False
            )
        depth = channels if config.decoder == "volume" else 1  # a volume's Z planes are its channels
        precision = resolve_precision(config.precision, device, config.channels, out_h * out_w * depth)
        config = config.replace(precision=precision)
        self.config, self.keep_weights = config, keep_weights
        net, z = build_network(config, channels, groups, (out_h, out_w), config.seed)
        if start is not None:
            start_from(net, groups, start)
        self.hp, self.wp = (padded_size(s, net.spec.multiple) for s in (out_h, out_w))
        self.top, self.left = (self.hp - out_h) // 2, (self.wp - out_w) // 2
        self.holdout = None
        if config.stop_rule == "holdout":
            operator = HeldOutPixels(operator, tuple(observation.shape), config.holdout_fraction, config.seed)
            self.holdout = LowestErrorRule(groups, config.patience("holdout"), wait_while_falling=True)
        try:
            self.net, self.z = net.to(device), z.to(device)
            self.y = observation.to(device=device, dtype=torch.float32)
            self.ref = None if reference is None else reference.to(device=device, dtype=torch.float32)
            self.operator = operator.to(device)
            if config.init_output == "data" and start is None:
                self.net.set_output_level(self.operator.data_level(self.y))
        except torch.cuda.OutOfMemoryError as error:  # pragma: no cover - needs a GPU
            raise DeviceMemoryError(
                f"out of memory on {device} for {groups} plane(s) of {out_h}x{out_w}; "
                "use smaller tiles or fewer planes per batch"
            ) from error
        self.params = list(self.net.parameters())
        self.optimiser = make_optimiser(self.params, config.learning_rate)
        self.schedule = None
        if config.warmup > 0 or config.lr_decay > 0:

            def factor(step: int) -> float:
                ramp = min(1.0, (step + 1) / config.warmup) if config.warmup > 0 else 1.0
                return ramp / (1 + step / config.lr_decay) if config.lr_decay > 0 else ramp

            self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimiser, factor)
        self._rules()
        self.history: list[LogEntry] = []
        self.stopped_at = torch.zeros(groups, dtype=torch.long)  # where a rule fired; 0 = not yet
        self.kept = None  # each plane's result at its stop, allocated when a rule first fires
        self.best = None  # "holdout": each plane's result where its held-out error was lowest
        self.kept_weights = None  # the last plane's decoder where its result was kept (a warm start)
        self.average = None
        self.n_params = sum(p.numel() for p in self.params)
        self.t = 0
        self.x = None
        self.loss = None

    def _rules(self) -> None:
        """The stop rules. They are always evaluated (cheap, on metric iterations): with
        auto_stop off they only report where they fired (SolveOutcome.rule_iterations) and start
        settling, if enabled."""
        config, groups, y = self.config, self.groups, self.y
        self.rule = WindowedStopRule(config.stop_window, config.stop_epsilon, config.metrics_every)
        self.noise_rule = None
        # planes the ratio rule may stop (none when the held-out pixels decide)
        self.ratio_planes = torch.full((groups,), self.holdout is None, dtype=torch.bool)
        sigma = None
        if config.stop_rule == "noise" or config.tv_weight > 0:
            given = config.noise_sigma
            sigma = torch.full((groups,), float(given)) if given else estimate_noise_sigma(y).cpu()
        self.tv_scale = None
        if config.tv_weight > 0:
            self.tv_scale = (2 * config.tv_weight * sigma**2).to(self.device)
        if config.stop_rule == "noise":
            out_h, out_w = self.out_hw
            self.noise_rule = NoiseLevelStopRule(sigma, noise_fraction_for(config, out_h, out_w, self.channels))
            # the ratio rule fired long before the peak at 256 px (docs/beyond_the_paper.md
            # section 3); it only stands in where there is no measurable noise
            self.ratio_planes = sigma < NO_NOISE
        if self.holdout is not None:
            self.rules = ["holdout"] * groups
        elif self.noise_rule is not None:
            self.rules = ["ratio (no measurable noise)" if r else "noise" for r in self.ratio_planes.tolist()]
        else:
            self.rules = ["ratio"] * groups
        self.contrast = plane_contrast(y)  # the ratio rule's unit-contrast scale, constant over the run

    def out_of_memory(self) -> DeviceMemoryError:
        """The error for a device that ran out of memory during the fit."""
        out_h, out_w = self.out_hw
        return DeviceMemoryError(
            f"out of memory on {self.device} while fitting {self.groups} plane(s) of {out_h}x{out_w} "
            f"({self.n_params:,} parameters); use smaller tiles or fewer planes per batch"
        )

    def forward(self) -> torch.Tensor:
        """The decoders' outputs, cropped to the planes: ``(G, C, h, w)``. In bf16 the
        convolutions run under autocast; the Lipschitz bounds stay fp32 (core/layers.py)."""
        if self.config.precision != "bf16":
            return self.crop(self.net(self.z))
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            out = self.net(self.z)
        return self.crop(out.float())

    def crop(self, out: torch.Tensor) -> torch.Tensor:
        """The decoders' padded output, ``(1, G * C, hp, wp)``, as ``(G, C, h, w)`` planes."""
        out_h, out_w = self.out_hw
        out = out.view(self.groups, self.channels, self.hp, self.wp)
        return out[..., self.top : self.top + out_h, self.left : self.left + out_w]

    @property
    def result(self) -> torch.Tensor:
        """The current result: the average of outputs when averaging, else the last output."""
        return self.x if self.average is None else self.average

    @property
    def n_stopped(self) -> int:
        return int((self.stopped_at > 0).sum())

    @property
    def done(self) -> bool:
        """Every plane's rule has fired and the run stops there."""
        return self.config.auto_stop and bool((self.stopped_at > 0).all())

    def step(self) -> None:
        """One optimisation step of every plane, then the output average."""
        config, groups, device = self.config, self.groups, self.device
        self.t = t = self.t + 1
        self.optimiser.zero_grad(set_to_none=True)
        x = self.forward()
        loss = self.operator.loss_per_group(x, self.y)
        if self.tv_scale is None:
            loss.sum().backward()
        else:
            (loss + self.tv_scale * total_variation(x)).sum().backward()
        stopped_at = self.stopped_at
        settle = None
        if config.settle > 0 and bool((stopped_at > 0).any()):
            # planes whose rule fired move less and less: their step is scaled per plane
            # (all parameters are group-major, so a plane is a slice of every tensor),
            # and their average of outputs (the result) takes in no more outputs
            age = (t - stopped_at).clamp(min=0).float()
            settle = torch.where(stopped_at > 0, torch.exp(-age / config.settle), torch.ones(groups)).to(device)
            taking = (stopped_at == 0).float().to(device).view(-1, 1, 1, 1)
            before = [p.detach().clone() for p in self.params]
        self.optimiser.step()
        if settle is not None:
            with torch.no_grad():
                for p, old in zip(self.params, before):
                    moved = p.view(groups, -1)
                    moved.copy_(old.view(groups, -1).lerp(moved, settle[:, None]))
        if self.schedule is not None:
            self.schedule.step()
        self.x = x = x.detach()
        self.loss = loss.detach()  # the step's data term per plane, without its graph
        if config.average > 0:
            # warm-started weight (as TensorFlow's ExponentialMovingAverage with
            # num_updates): early outputs, far from the fit, fade out quickly
            decay = min(config.average, (1 + t) / (10 + t))
            if self.average is None:
                self.average = x.clone()
            else:
                # after a stop (with settling) the raw output, which runs ahead of the
                # average into the noise, would pull the average after it
                # (docs/beyond_the_paper.md section 3, holding the result)
                self.average.lerp_(x, (1 - decay) if settle is None else (1 - decay) * taking)

    def log(self) -> LogEntry:
        """The metrics of the current result, taken to the host in one transfer, and the stop
        rules' decisions on them."""
        config, groups, device, t, y = self.config, self.groups, self.device, self.t, self.y
        operator, holdout = self.operator, self.holdout
        result = self.result
        fbc = fbc_bands(*operator.fbc_pair(result, y), n_bands=config.n_bands)
        # the rule watches the result (the average of outputs when averaging): the raw
        # iterate oscillates (docs/beyond_the_paper.md section 1), and on it the rule
        # fired far too early
        ratio = contrast_free_ratio(result, self.contrast)
        psnr_now = psnr(operator.as_image(result), self.ref) if self.ref is not None else None
        fit = operator.loss_per_group(result, y) if self.average is not None else self.loss
        rows = [self.loss, ratio, fit] + ([psnr_now] if psnr_now is not None else [])
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
            noise_level_all=None if self.noise_rule is None else self.noise_rule.threshold.tolist(),
        )
        self.history.append(entry)
        self.rule.record(t, ratio)
        fired = self.rule.check(t)
        newly = torch.zeros(groups, dtype=torch.bool)
        if fired is not None:
            newly |= fired.cpu() & self.ratio_planes
        if self.noise_rule is not None:
            newly |= self.noise_rule.check(fit).cpu()
        snapshot, at = result, torch.full((groups,), t, dtype=torch.long)
        if holdout is not None:
            improved = holdout.record(t, torch.from_numpy(stacked[:, len(rows) - 1]))
            if improved.any():
                self.best = result.clone() if self.best is None else self.best
                on_device = improved.to(device)
                self.best[on_device] = result[on_device]
                if self.keep_weights:
                    self._keep_weights(improved)
            newly |= holdout.check(t)
            snapshot, at = self.best, holdout.best_iteration
        stopped_at = self.stopped_at
        newly &= stopped_at == 0
        if newly.any():
            if config.auto_stop:
                self.kept = torch.empty_like(result) if self.kept is None else self.kept
                on_device = newly.to(device)
                self.kept[on_device] = snapshot[on_device]
            stopped_at[newly] = at[newly].clamp(min=1)
            if self.keep_weights and holdout is None:
                self._keep_weights(newly)
        return entry

    def _keep_weights(self, taken: torch.Tensor) -> None:
        """Keep the decoders of the last plane (its ``ensemble`` members, the last groups)
        whose results were just taken: the next fit's warm start."""
        m, groups = self.config.ensemble, self.groups
        for member in range(m):
            group = groups - m + member
            if not taken[group]:
                continue
            if self.kept_weights is None:
                self.kept_weights = self._last_plane_weights()
            else:
                update_member(self.kept_weights, self.net, groups, group, member)

    def _last_plane_weights(self) -> dict[str, torch.Tensor]:
        m = self.config.ensemble
        return plane_weights(self.net, self.groups, self.groups - m, m)

    def preview(self) -> np.ndarray:
        return self.operator.finish(self.result, self.y).float().cpu().numpy()

    def outcome(self, reason: str) -> SolveOutcome:
        """What the fit returns: each stopped plane's kept result, the others' current one."""
        if self.x is None:
            raise RuntimeError("the solver ran no iteration")
        config, device, t = self.config, self.device, self.t
        final = self.result.clone()
        stopped_at = self.stopped_at.clone()  # the fit's own record stays as it is
        rule_iterations = stopped_at.tolist()
        if not config.auto_stop:  # the rule only settled the run; every plane ran to t
            stopped_at.zero_()
        running = stopped_at == 0
        if self.kept is not None:
            final[(~running).to(device)] = self.kept[(~running).to(device)]
        stop_iterations = torch.where(running, torch.full_like(stopped_at, t), stopped_at).tolist()
        kept_weights = self.kept_weights
        if self.keep_weights and (kept_weights is None or not config.auto_stop):
            kept_weights = self._last_plane_weights()  # no stop to take it at: the end
        image = self.operator.finish(final, self.y).float().cpu().numpy()
        if not np.isfinite(image).all():
            raise FloatingPointError("the optimisation produced non-finite values")
        return SolveOutcome(
            image=image,
            history=self.history,
            iterations=t,
            stop_reason=reason,
            stop_iterations=stop_iterations,
            seconds=time.perf_counter() - self.started,
            device=str(device),
            parameters=self.n_params,
            lipschitz=config.lipschitz,
            precision=config.precision,
            rule_iterations=rule_iterations,
            rules=self.rules,
            weights=kept_weights,
        )
