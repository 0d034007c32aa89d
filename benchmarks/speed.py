"""Speed benchmark: the paper-faithful configuration against our default, and the speed levers.

Everything is measured side by side in one process. On the CPU the compared configurations
are stepped alternately, one iteration each, so the load of a shared machine hits both alike;
on a GPU they run alternately in blocks of iterations between two synchronisations.

    OMP_NUM_THREADS=2 python -m benchmarks.speed --quick     # 2-core CPU, ~7 minutes
    python -m benchmarks.speed --gpu --json speed.json      # one GPU, ~3 minutes
    python -m benchmarks.speed --tiny                       # seconds: checks the script runs

Sections (each prints a markdown table as soon as it is done):

* ``profiles``: seconds per iteration of ``profile="paper"`` (exact SVD, every metric every
  iteration, fp32: TF32 off on GPUs) and ``profile="default"`` through the real solver
  (``core.solver.iterate``), the FLOPs of one forward+backward (``FlopCounterMode``; SVD and
  metric FLOPs are not counted), the achieved TFLOP/s and fraction of ``--peak-tflops``, and
  the memory peak (GPU: ``max_memory_allocated``; CPU: peak RSS of a child process).
* ``time_to_result``: a seeded denoising run with a reference per profile, for a fixed budget
  and with each profile's automatic stop; the iterations and seconds to come within 0.5 dB of
  the run's own final PSNR, of the fixed-budget paper run's final PSNR, and of the best PSNR
  any of the runs returned.
* ``levers``: each speed lever against the same configuration without it: the CPU
  convolution backward of ``core.convolution`` (CPU only), sigma estimator,
  ``metrics_every``, a host synchronisation every iteration, channels-last, TF32 / bf16
  autocast (GPU), ``torch.compile`` (GPU, or ``--compile``), a dense 5x5 Gaussian upsampler
  against a separable one, and G planes as one grouped network against one by one.
  Levers that change the arithmetic also get a PSNR check (``|dPSNR| <= 0.05 dB`` passes).

Levers not in core yet (channels-last, compile) are implemented here, in
:class:`LoopStepper`, which steps core's own :class:`~napari_dip_spectral.core.fit.Fit`.
Lines starting with ``KEY`` are the key numbers ``gpu_check.sh`` puts in its summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.nn.utils import parametrize

from napari_dip_spectral.core.config import SolverConfig, task_defaults
from napari_dip_spectral.core.driving import drive
from napari_dip_spectral.core.fit import Fit
from napari_dip_spectral.core.layers import GaussianUpsample
from napari_dip_spectral.core.operators import Denoise
from napari_dip_spectral.core.solver import build_network, iterate

from .common import DENOISING, REPO, SHARED_DATA, psnr, read_rgb, table

PEPPERS = "image_Peppers512rgb.png"
WITHIN_DB = 0.5
QUALITY_TOLERANCE_DB = 0.05


# --------------------------------------------------------------------------- plans


@dataclass
class Plan:
    """Sizes and iteration counts of one mode."""

    name: str
    sizes: tuple[int, ...]
    warmup: int  # untimed iterations first (>= the estimator's exact start, 25)
    timed: int
    block: int  # iterations between synchronisations (1 = alternate steps)
    channels: int = 128  # decoder width of the per-iteration comparisons
    ttr_size: int = 64
    ttr_iterations: int = 400
    ttr_channels: int = 128
    autostop_iterations: int = 0  # 0: no automatic-stop run
    paper_cap_s: float = 0.0  # 0: no cap on the paper time-to-result run
    lever_size: int = 64
    lever_timed: int = 10
    quality_iterations: int = 150
    quality_channels: int = 128
    planes: int = 4
    plane_size: int = 64
    plane_timed: int = 6
    micro_sizes: tuple[int, ...] = (32, 64)


PLANS = {
    "quick": Plan(
        "quick",
        sizes=(64, 128),
        warmup=30,
        timed=20,
        block=1,
        ttr_size=64,
        ttr_iterations=400,
        ttr_channels=128,
        autostop_iterations=1000,
        lever_size=64,
        lever_timed=10,
        quality_iterations=400,
        quality_channels=32,
        planes=4,
        plane_size=64,
        plane_timed=6,
        micro_sizes=(16, 32, 64),
    ),
    "cpu": Plan(
        "cpu",
        sizes=(64, 128, 256),
        warmup=30,
        timed=20,
        block=1,
        ttr_size=64,
        ttr_iterations=400,
        ttr_channels=128,
        lever_size=128,
        lever_timed=20,
        quality_iterations=300,
        quality_channels=64,
        planes=4,
        plane_size=64,
        plane_timed=10,
        micro_sizes=(32, 64, 128),
    ),
    "gpu": Plan(
        "gpu",
        sizes=(256, 512, 1024),
        warmup=30,
        timed=30,
        block=10,
        ttr_size=512,
        ttr_iterations=3000,
        ttr_channels=128,
        autostop_iterations=3000,
        paper_cap_s=15.0,
        lever_size=512,
        lever_timed=30,
        quality_iterations=150,
        quality_channels=128,
        planes=16,
        plane_size=256,
        plane_timed=20,
        micro_sizes=(64, 128, 256, 512),
    ),
    "tiny": Plan(
        "tiny",
        sizes=(32, 64),
        warmup=2,
        timed=4,
        block=1,
        channels=16,
        ttr_size=32,
        ttr_iterations=40,
        ttr_channels=8,
        autostop_iterations=60,
        lever_size=32,
        lever_timed=4,
        quality_iterations=20,
        quality_channels=8,
        planes=2,
        plane_size=32,
        plane_timed=3,
        micro_sizes=(16,),
    ),
}


# --------------------------------------------------------------------------- helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 in cuDNN convolutions and CUDA matmuls (no-op without CUDA)."""
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


def emit(line: str = "") -> None:
    print(line, flush=True)


def load_rgb(data: str | None, image: str | None) -> np.ndarray:
    """The test picture (H, W, 3) float32 in [0, 1]: ``--image``, Peppers from ``--data`` or
    ../shared/data, else scikit-image's astronaut."""
    candidates = [Path(image)] if image else []
    if data:
        candidates.append(Path(data) / DENOISING / PEPPERS)
    candidates.append(SHARED_DATA / DENOISING / PEPPERS)
    for path in candidates:
        if path.is_file():
            return read_rgb(path)
    from skimage import data as skdata

    return skdata.astronaut()[..., :3].astype(np.float32) / 255


def resized(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(1, 3, size, size) in [0, 1], antialiased resize of the centre square."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    sq = rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    t = torch.from_numpy(np.ascontiguousarray(sq.transpose(2, 0, 1)))[None]
    mode = "bicubic" if size > s else "bilinear"
    return F.interpolate(t, size=(size, size), mode=mode, antialias=size < s, align_corners=False).clamp(0, 1)


def noisy(clean: torch.Tensor, seed: int = 0, sigma: float = 25 / 255) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (clean + sigma * torch.randn(clean.shape, generator=g)).clamp(0, 1)


def config_for(profile: str, device: torch.device, **changes) -> SolverConfig:
    return task_defaults("denoise", profile).replace(device=str(device), seed=0, **changes)


# --------------------------------------------------------------------------- steppers


class Stepper:
    """One optimisation that can be advanced an iteration at a time."""

    label = ""
    precision = "default"  # "default" (torch's flags), "ieee" (TF32 off), "tf32"

    def step(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SolverStepper(Stepper):
    """The real solver, ``core.solver.iterate``, advanced one event at a time."""

    def __init__(
        self,
        label: str,
        obs: torch.Tensor,
        config: SolverConfig,
        reference: torch.Tensor | None = None,
        precision: str = "default",
    ):
        self.label, self.precision = label, precision
        self.gen = iterate(obs, Denoise(), config, reference)
        self.last = None
        self.outcome = None

    def step(self) -> None:
        try:
            self.last = next(self.gen)
        except StopIteration as stop:
            self.outcome = stop.value

    def finish(self):
        """Cancel and return the solver's outcome (the last iterate)."""
        if self.outcome is None:
            try:
                self.gen.send(True)
            except StopIteration as stop:
                self.outcome = stop.value
        return self.outcome

    def close(self) -> None:
        self.finish()


def separable_gaussian(module: GaussianUpsample) -> torch.nn.Module:
    """The same upsampler as two 1-D depthwise transposed convolutions (rows, then columns);
    core uses the dense 5x5 form."""

    class SeparableGaussianUpsample(torch.nn.Module):
        def __init__(self):
            super().__init__()
            taps = module.kernel[0, 0].sum(1)  # the 2-D kernel is an outer product
            taps = taps / taps.sum() * module.kernel[0, 0].sum().sqrt()
            c = module.channels
            self.register_buffer("rows", taps.view(1, 1, 5, 1).repeat(c, 1, 1, 1))
            self.register_buffer("cols", taps.view(1, 1, 1, 5).repeat(c, 1, 1, 1))
            self.channels = c

        def forward(self, x):
            x = F.conv_transpose2d(
                x, self.rows, stride=(2, 1), padding=(2, 0), output_padding=(1, 0), groups=self.channels
            )
            return F.conv_transpose2d(
                x, self.cols, stride=(1, 2), padding=(0, 2), output_padding=(0, 1), groups=self.channels
            )

    return SeparableGaussianUpsample()


def compiled_body(net: torch.nn.Module):
    """``torch.compile`` of the decoder's tensor work, called as ``f(z, weights)`` with the
    Lipschitz-bounded weights computed outside (eagerly), so the estimator's Python state
    (call counter, refresh schedule) stays out of the compiled graph."""
    plan = [
        (layer, parametrize.is_parametrized(layer, "weight"), layer_pad(layer)) for layer in list(net.body) + [net.head]
    ]

    def body(z: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
        x, i = z, 0
        for layer, bounded, pad in plan:
            if bounded:
                if pad:
                    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
                x = F.conv2d(x, weights[i], layer.bias, groups=layer.groups)
                i += 1
            else:
                x = layer(x)
        return torch.sigmoid(x)

    return torch.compile(body)


def layer_pad(layer: torch.nn.Module) -> int:
    return layer.kernel_size[0] // 2 if isinstance(layer, torch.nn.Conv2d) else 0


class LeverFit(Fit):
    """core's :class:`Fit` with the levers core lacks: channels-last, a separable upsampler
    and ``torch.compile`` of the decoder's forward pass (bf16 is core's own ``precision``)."""

    def __init__(
        self,
        obs: torch.Tensor,
        config: SolverConfig,
        reference: torch.Tensor | None = None,
        *,
        channels_last: bool = False,
        compiled: bool = False,
        separable_upsampler: bool = False,
    ):
        super().__init__(obs, Denoise(), config, reference)
        if separable_upsampler:
            for i, layer in enumerate(self.net.body):
                if isinstance(layer, GaussianUpsample):
                    self.net.body[i] = separable_gaussian(layer).to(self.device)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)  # in place: Adam keeps the same parameters
            self.z = self.z.contiguous(memory_format=torch.channels_last)
        self.bounded = [m for m in list(self.net.body) + [self.net.head] if parametrize.is_parametrized(m, "weight")]
        self.compiled = compiled_body(self.net) if compiled else None

    def forward(self) -> torch.Tensor:
        """Compiled, the bounded weights are computed first, eagerly (``parametrize.cached``,
        whose cache is process-wide: benchmarks only), so the sigma estimator's Python state
        stays out of the compiled graph."""
        if self.compiled is None:
            return super().forward()
        bf16 = self.config.precision == "bf16"
        with parametrize.cached():
            weights = [m.weight for m in self.bounded]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                out = self.compiled(self.z, weights)
        return self.crop(out.float())


class LoopStepper(Stepper):
    """The solver's own fit (``core.fit.Fit``: the step, the output average, the metrics and
    stop rules every ``metrics_every``) stepped by hand, with the levers core lacks:
    channels-last, compile, a separable upsampler, a host sync every iteration; ``autocast``
    (bf16 only) sets core's ``precision="bf16"``."""

    def __init__(
        self,
        label: str,
        obs: torch.Tensor,
        config: SolverConfig,
        device: torch.device,
        *,
        channels_last: bool = False,
        autocast: torch.dtype | None = None,
        compiled: bool = False,
        sync_every: bool = False,
        separable_upsampler: bool = False,
        precision: str = "default",
        reference: torch.Tensor | None = None,
    ):
        self.label, self.precision, self.device = label, precision, device
        if autocast is not None:  # core's bf16 (the bounds stay fp32)
            if autocast is not torch.bfloat16:
                raise ValueError(f"only bf16 autocast is measured, got {autocast}")
            config = config.replace(precision="bf16")
        self.fit = LeverFit(
            obs,
            config.replace(device=str(device)),
            reference,
            channels_last=channels_last,
            compiled=compiled,
            separable_upsampler=separable_upsampler,
        )
        self.sync_every = sync_every

    def step(self) -> None:
        fit = self.fit
        fit.step()
        if self.sync_every:
            fit.loss.sum().item()
        if fit.t % fit.config.metrics_every == 0:
            fit.log()

    def psnr(self) -> float:
        return float(psnr(self.fit.result, self.fit.ref))


# --------------------------------------------------------------------------- timing


DEFAULT_FLAGS = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


def restore_flags() -> None:
    """Torch's own TF32 defaults (what the core runs with)."""
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = DEFAULT_FLAGS


def with_precision(stepper: Stepper) -> None:
    if stepper.precision == "ieee":
        set_tf32(False)
    elif stepper.precision == "tf32":
        set_tf32(True)
    else:
        restore_flags()


def side_by_side(steppers: list[Stepper], warmup: int, timed: int, block: int, device: torch.device) -> list[float]:
    """Seconds per iteration of each stepper, measured alternately in blocks of ``block``
    iterations (``block=1``: one step each in turn)."""
    for s in steppers:
        with_precision(s)
        for _ in range(warmup):
            s.step()
    sync(device)
    totals = [0.0] * len(steppers)
    done = 0
    while done < timed:
        n = min(block, timed - done)
        for k, s in enumerate(steppers):
            with_precision(s)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(n):
                s.step()
            sync(device)
            totals[k] += time.perf_counter() - t0
        done += n
    restore_flags()
    return [t / timed for t in totals]


def count_flops(obs: torch.Tensor, config: SolverConfig, device: torch.device) -> int:
    """FLOPs of one forward+backward of the decoder and loss (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    g, c, h, w = obs.shape
    net, z = build_network(config, c, g, (h, w), config.seed)
    net, z = net.to(device), z.to(device)
    with FlopCounterMode(display=False) as counter:
        out = net(z)
        loss = (out[..., :h, :w].reshape(g, c, h, w) - obs.to(device)).pow(2).mean()
        loss.backward()
    return int(counter.get_total_flops())


def memory_peak(profile: str, size: int, channels: int, device: torch.device) -> float:
    """Peak memory in MiB of three iterations of a profile: GPU allocator peak, or on the
    CPU the peak RSS of a fresh child process (minus its RSS before the run)."""
    if device.type == "cuda":
        obs = noisy(resized(RGB, size))
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        cfg = config_for(profile, device, iterations=3, channels=channels, auto_stop=False)
        drive(iterate(obs, Denoise(), cfg))
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    cmd = [sys.executable, "-m", "benchmarks.speed", "--memory-probe", profile, str(size), str(channels)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    if done.returncode != 0:
        emit(f"memory probe failed: {done.stderr[-500:]}")
        return float("nan")
    return float(done.stdout.strip().splitlines()[-1])


def memory_probe(profile: str, size: int, channels: int) -> None:
    """Child process of :func:`memory_peak` on the CPU: prints the RSS increase in MiB."""
    obs = noisy(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)))
    cfg = config_for(profile, torch.device("cpu"), iterations=3, channels=channels, auto_stop=False)
    with open("/proc/self/statm") as f:
        base_kib = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
    drive(iterate(obs, Denoise(), cfg))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak_kib - base_kib) / 1024)


# --------------------------------------------------------------------------- sections


@dataclass
class Report:
    mode: str
    device: str
    machine: str
    torch: str
    threads: int
    peak_tflops: dict
    sections: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)


def achieved(flops: int, seconds: float, peak: float | None) -> tuple[float, str]:
    tflops = flops / seconds / 1e12
    return tflops, ("n/a" if not peak else f"{100 * tflops / peak:.1f}%")


def section_profiles(plan: Plan, device: torch.device, report: Report, peaks: dict) -> None:
    rows, data = [], []
    for size in plan.sizes:
        obs = noisy(resized(RGB, size))
        paper = SolverStepper(
            "paper", obs, config_for("paper", device, iterations=10**6, channels=plan.channels), precision="ieee"
        )
        default = SolverStepper("default", obs, config_for("default", device, iterations=10**6, channels=plan.channels))
        t_paper, t_default = side_by_side([paper, default], plan.warmup, plan.timed, plan.block, device)
        paper.close()
        default.close()
        flops = count_flops(obs, config_for("default", device, channels=plan.channels), device)
        mem_paper = memory_peak("paper", size, plan.channels, device)
        mem_default = memory_peak("default", size, plan.channels, device)
        tf_p, frac_p = achieved(flops, t_paper, peaks["fp32"] if device.type == "cuda" else peaks["cpu"])
        default_peak = (
            peaks["tf32"]
            if device.type == "cuda" and DEFAULT_FLAGS[0]
            else (peaks["fp32"] if device.type == "cuda" else peaks["cpu"])
        )
        tf_d, frac_d = achieved(flops, t_default, default_peak)
        ratio = t_paper / t_default
        rows.append(
            [
                size,
                f"{t_paper * 1e3:.1f}",
                f"{t_default * 1e3:.1f}",
                f"{ratio:.2f}x",
                f"{flops / 1e9:.1f}",
                f"{tf_p:.3f} ({frac_p})",
                f"{tf_d:.3f} ({frac_d})",
                f"{mem_paper:.0f}",
                f"{mem_default:.0f}",
            ]
        )
        data.append(
            dict(
                size=size,
                paper_s=t_paper,
                default_s=t_default,
                ratio=ratio,
                gflop=flops / 1e9,
                paper_tflops=tf_p,
                default_tflops=tf_d,
                paper_mem_mib=mem_paper,
                default_mem_mib=mem_default,
            )
        )
        emit(f"KEY {size}px: paper {t_paper * 1e3:.1f} ms/it, default {t_default * 1e3:.1f} ms/it, {ratio:.2f}x")
    mem_label = "GPU peak MiB" if device.type == "cuda" else "RSS peak MiB"
    table(
        f"Seconds per iteration, paper vs default (channels={plan.channels}, {plan.timed} "
        f"timed after {plan.warmup} warm-up)",
        [
            "px",
            "paper ms/it",
            "default ms/it",
            "speed-up",
            "GFLOP/it (fwd+bwd)",
            "paper TFLOP/s (of peak)",
            "default TFLOP/s (of peak)",
            f"paper {mem_label}",
            f"default {mem_label}",
        ],
        rows,
    )
    report.sections["profiles"] = data


def run_to_result(label: str, obs, ref, config: SolverConfig, cap_s: float = 0.0) -> dict:
    """Run the solver with a reference; the PSNR curve with wall-clock stamps."""
    curve: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    def record(event):
        elapsed = time.perf_counter() - start
        if event.log is not None and event.log.psnr is not None:
            curve.append((event.iteration, elapsed, event.log.psnr))
        return not (cap_s and elapsed > cap_s)

    outcome = drive(iterate(obs, Denoise(), config, ref), record)
    seconds = time.perf_counter() - start
    final = psnr(outcome.image, ref)
    return dict(
        label=label,
        curve=curve,
        final_psnr=final,
        seconds=seconds,
        iterations=outcome.iterations,
        stop_reason=outcome.stop_reason,
        stop_iteration=outcome.stop_iterations[0],
        best_psnr=max(p for *_, p in curve),
    )


def first_reaching(curve, target: float) -> tuple[int | None, float | None]:
    for it, sec, p in curve:
        if p >= target:
            return it, sec
    return None, None


def section_time_to_result(plan: Plan, device: torch.device, report: Report) -> None:
    clean = resized(RGB, plan.ttr_size)
    obs = noisy(clean)
    for profile in ("paper", "default"):  # one-time costs (kernels, thread pools) first
        drive(iterate(obs, Denoise(), config_for(profile, device, iterations=3, channels=plan.ttr_channels)))
    runs = []
    for profile in ("paper", "default"):
        if profile == "paper":
            set_tf32(False)  # paper-faithful: plain fp32
        cfg = config_for(profile, device, iterations=plan.ttr_iterations, channels=plan.ttr_channels, auto_stop=False)
        runs.append(run_to_result(profile, obs, clean, cfg, plan.paper_cap_s if profile == "paper" else 0.0))
        restore_flags()
    stopped = []
    if plan.autostop_iterations:
        # what a user waits for: each profile with its own automatic stop
        for profile in ("paper", "default"):
            if profile == "paper":
                set_tf32(False)
            cfg = config_for(
                profile, device, iterations=plan.autostop_iterations, channels=plan.ttr_channels, auto_stop=True
            )
            stopped.append(run_to_result(f"{profile}, auto stop", obs, clean, cfg))
            restore_flags()
    paper_final = runs[0]["final_psnr"]
    # a common bar: 0.5 dB below the best result any compared run returned
    good = max(r["final_psnr"] for r in runs + stopped) - WITHIN_DB
    noisy_psnr = psnr(obs, clean)
    rows = []
    for run in runs + stopped:
        own_it, own_s = first_reaching(run["curve"], run["final_psnr"] - WITHIN_DB)
        com_it, com_s = first_reaching(run["curve"], paper_final - WITHIN_DB)
        good_it, good_s = first_reaching(run["curve"], good)
        run.update(
            own_iterations=own_it,
            own_seconds=own_s,
            common_iterations=com_it,
            common_seconds=com_s,
            good_iterations=good_it,
            good_seconds=good_s,
        )

        def its(i, sec):
            return "never" if i is None else f"{i} ({sec:.1f} s)"

        rows.append(
            [
                run["label"],
                run["iterations"],
                run["stop_reason"],
                f"{run['seconds']:.1f}",
                f"{run['final_psnr']:.2f}",
                f"{run['best_psnr']:.2f}",
                its(own_it, own_s),
                its(com_it, com_s),
                its(good_it, good_s),
            ]
        )
    table(
        f"Time to result: denoising sigma=25, {plan.ttr_size} px, channels="
        f"{plan.ttr_channels}, noisy input {noisy_psnr:.2f} dB",
        [
            "run",
            "iterations",
            "stop",
            "seconds",
            "final PSNR",
            "best PSNR (logged)",
            "its to own final-0.5dB",
            "its to fixed-budget paper final-0.5dB",
            f"its to best returned-0.5dB ({good:.2f} dB)",
        ],
        rows,
    )
    paper, default = runs[0], runs[1]
    data = dict(
        size=plan.ttr_size,
        channels=plan.ttr_channels,
        noisy_psnr=noisy_psnr,
        runs=[{k: v for k, v in r.items() if k != "curve"} for r in runs + stopped],
    )
    if paper["own_seconds"] and default["own_seconds"]:
        data["own_ratio"] = paper["own_seconds"] / default["own_seconds"]
    if paper["common_seconds"] and default["common_seconds"]:
        data["common_ratio"] = paper["common_seconds"] / default["common_seconds"]
    if paper["stop_reason"] == "cancelled":
        emit(f"(paper run capped at {plan.paper_cap_s:.0f} s: its 'final' is the PSNR at the cap)")

    def fmt(v):
        return "n/a" if v is None else f"{v:.2f}"

    emit(
        f"\ntime-to-result ratio paper/default: own target {fmt(data.get('own_ratio'))}, "
        f"common target {fmt(data.get('common_ratio'))}"
    )
    emit(
        f"KEY ttr {plan.ttr_size}px: paper {fmt(paper['own_seconds'])} s, default "
        f"{fmt(default['own_seconds'])} s to own final-0.5dB (ratio "
        f"{fmt(data.get('own_ratio'))})"
    )
    if stopped:
        p_auto, d_auto = stopped
        data["autostop_ratio"] = p_auto["seconds"] / d_auto["seconds"]
        data["autostop_gain_db"] = d_auto["final_psnr"] - p_auto["final_psnr"]
        if p_auto["own_seconds"] and d_auto["own_seconds"]:
            data["autostop_own_ratio"] = p_auto["own_seconds"] / d_auto["own_seconds"]
        if d_auto["good_seconds"]:
            if p_auto["good_seconds"]:
                data["autostop_good_ratio"] = p_auto["good_seconds"] / d_auto["good_seconds"]
                bound = ""
            else:  # the paper run never got there: its whole run is a lower bound
                data["autostop_good_ratio"] = p_auto["seconds"] / d_auto["good_seconds"]
                bound = ">= "
            emit(
                f"time to the best returned PSNR - 0.5 dB, both with automatic stop: paper "
                f"{fmt(p_auto['good_seconds']) + ' s' if p_auto['good_seconds'] else 'never'}, "
                f"default {fmt(d_auto['good_seconds'])} s (ratio {bound}"
                f"{data['autostop_good_ratio']:.2f})"
            )
        emit(
            f"time to within 0.5 dB of the run's own final PSNR, both with automatic stop: "
            f"paper {fmt(p_auto['own_seconds'])} s, default {fmt(d_auto['own_seconds'])} s "
            f"(ratio {fmt(data.get('autostop_own_ratio'))})"
        )
        emit(
            f"\nwith the automatic stop: paper {p_auto['seconds']:.1f} s (iteration "
            f"{p_auto['stop_iteration']}, {p_auto['final_psnr']:.2f} dB), default "
            f"{d_auto['seconds']:.1f} s (iteration {d_auto['stop_iteration']}, "
            f"{d_auto['final_psnr']:.2f} dB): {data['autostop_ratio']:.2f}x sooner, "
            f"{data['autostop_gain_db']:+.2f} dB"
        )
        if p_auto["stop_reason"] != "auto_stop":
            data["paper_capped"] = True
            emit(
                f"(the paper run's rule had not fired by the {plan.autostop_iterations}-"
                "iteration cap: its time to the result is a lower bound, its 'final' the PSNR at the "
                "cap)"
            )
        emit(
            f"KEY auto stop {plan.ttr_size}px: paper {p_auto['seconds']:.1f} s "
            f"{p_auto['final_psnr']:.2f} dB, default {d_auto['seconds']:.1f} s "
            f"{d_auto['final_psnr']:.2f} dB ({data['autostop_ratio']:.2f}x)"
        )
    report.sections["time_to_result"] = data


def lever_timing(name: str, steppers: list[Stepper], plan: Plan, device) -> dict:
    times = side_by_side(steppers, plan.warmup, plan.lever_timed, plan.block, device)
    for s in steppers:
        s.close()
    return dict(
        lever=name,
        baseline=steppers[0].label,
        variant=steppers[1].label,
        baseline_ms=times[0] * 1e3,
        variant_ms=times[1] * 1e3,
        speedup=times[0] / times[1],
    )


def quality_pair(
    plan: Plan, device, base_kw: dict, variant_kw: dict, variant_config: dict | None = None
) -> tuple[float, float]:
    """Final PSNR (dB, against the clean image) of the own loop without and with a lever,
    ``quality_iterations`` of the default profile at the lever size, same seed."""
    clean = resized(RGB, plan.lever_size)
    obs = noisy(clean)
    cfg = config_for("default", device, channels=plan.quality_channels)
    out = []
    for kw, changes in ((base_kw, {}), (variant_kw, variant_config or {})):
        s = LoopStepper("q", obs, cfg.replace(**changes), device, reference=clean, **kw)
        with_precision(s)
        for _ in range(plan.quality_iterations):
            s.step()
        out.append(s.psnr())
    restore_flags()
    return out[0], out[1]


def section_levers(plan: Plan, device: torch.device, report: Report, compile_: bool, deadline: float) -> None:
    size = plan.lever_size
    clean = resized(RGB, size)
    obs = noisy(clean)
    cuda = device.type == "cuda"
    base = config_for("default", device, iterations=10**6, channels=plan.channels)
    results = []

    def record(res: dict, quality: str) -> None:
        res["quality"] = quality
        results.append(res)
        emit(
            f"  {res['lever']}: {res['baseline_ms']:.1f} -> {res['variant_ms']:.1f} ms/it "
            f"({res['speedup']:.2f}x); quality: {quality}"
        )
        emit(f"KEY lever {res['lever']}: {res['speedup']:.2f}x")

    def quality_text(q0: float, q1: float) -> str:
        d = q1 - q0
        verdict = "ok" if abs(d) <= QUALITY_TOLERANCE_DB else "CHANGES QUALITY"
        return f"{q0:.2f} -> {q1:.2f} dB ({d:+.3f}, {verdict})"

    # 0. CPU convolution backward: torch's kernel vs oneDNN forward kernels (core.convolution).
    if device.type == "cpu":
        torchs = SolverStepper("torch's conv backward", obs, base.replace(fast_cpu_backward=False))
        ours = SolverStepper("forward-kernel backward", obs, base.replace(fast_cpu_backward=True))
        res = lever_timing("CPU conv backward: torch's -> forward kernels", [torchs, ours], plan, device)
        a, b = torchs.finish(), ours.finish()
        diff = float(np.abs(a.image - b.image).max())
        record(res, f"same sums, other kernels: max |diff| of the iterates after {a.iterations} its {diff:.1e}")

    # 1. sigma estimator: exact SVD every step vs warm-started power iteration.
    exact = SolverStepper("exact", obs, base.replace(sigma_estimator="exact"))
    power = SolverStepper("power", obs, base.replace(sigma_estimator="power"))
    res = lever_timing("sigma estimator exact -> power (4 vectors, exact every 10 calls)", [exact, power], plan, device)
    # quality: power (the config's) as base, exact as variant; reported exact -> power
    q0, q1 = quality_pair(plan, device, {}, {}, {"sigma_estimator": "exact"})
    record(res, quality_text(q1, q0) + " (exact -> power)")

    # 2. metrics every iteration vs every 10 (metrics never feed back into the optimisation).
    every1 = SolverStepper("metrics every 1", obs, base.replace(metrics_every=1))
    every10 = SolverStepper("metrics every 10", obs, base.replace(metrics_every=10))
    res = lever_timing("metrics_every 1 -> 10 (on the device)", [every1, every10], plan, device)
    a, b = every1.finish(), every10.finish()
    diff = float(np.abs(a.image - b.image).max())
    record(res, f"same trajectory: max |diff| of the iterates {diff:.2e}")

    # 3. a host synchronisation every iteration (loss.item()) vs none.
    synced = LoopStepper("loss.item() every it", obs, base, device, sync_every=True)
    free = LoopStepper("no sync", obs, base, device)
    record(lever_timing("host sync every iteration -> none", [synced, free], plan, device), "identical arithmetic")

    # 4. channels-last memory format.
    if time.perf_counter() < deadline:
        plain = LoopStepper("contiguous", obs, base, device)
        cl = LoopStepper("channels_last", obs, base, device, channels_last=True)
        res = lever_timing("channels-last", [plain, cl], plan, device)
        record(res, quality_text(*quality_pair(plan, device, {}, {"channels_last": True})))

    # 5. TF32 and bf16 autocast (GPU).
    if cuda and time.perf_counter() < deadline:
        ieee = LoopStepper("fp32 (TF32 off)", obs, base, device, precision="ieee")
        tf32 = LoopStepper("TF32", obs, base, device, precision="tf32")
        res = lever_timing("fp32 -> TF32 convolutions", [ieee, tf32], plan, device)
        record(res, quality_text(*quality_pair(plan, device, {"precision": "ieee"}, {"precision": "tf32"})))
        ieee = LoopStepper("fp32 (TF32 off)", obs, base, device, precision="ieee")
        bf16 = LoopStepper("bf16 autocast", obs, base, device, autocast=torch.bfloat16, precision="ieee")
        res = lever_timing("fp32 -> bf16 autocast", [ieee, bf16], plan, device)
        record(
            res,
            quality_text(
                *quality_pair(plan, device, {"precision": "ieee"}, {"precision": "ieee", "autocast": torch.bfloat16})
            ),
        )
        tf32 = LoopStepper("TF32", obs, base, device, precision="tf32")
        best = LoopStepper(
            "bf16 + channels_last", obs, base, device, autocast=torch.bfloat16, channels_last=True, precision="tf32"
        )
        res = lever_timing("TF32 -> bf16 autocast + channels-last", [tf32, best], plan, device)
        record(
            res,
            quality_text(
                *quality_pair(
                    plan,
                    device,
                    {"precision": "tf32"},
                    {"precision": "tf32", "channels_last": True, "autocast": torch.bfloat16},
                )
            ),
        )

    # 6. Gaussian upsampler: dense 5x5 transposed conv (core) vs separable, micro and in-network.
    micro_rows = []
    for s in plan.micro_sizes:
        x = torch.randn(1, plan.channels, s, s, device=device, requires_grad=True)
        dense = GaussianUpsample(plan.channels, 0.5).to(device)
        sep = separable_gaussian(dense).to(device)
        with torch.no_grad():
            diff = float((sep(x) - dense(x)).abs().max())
        times = []
        for mod in (dense, sep):
            for _ in range(3):
                mod(x).sum().backward()
            sync(device)
            t0 = time.perf_counter()
            n = 20
            for _ in range(n):
                mod(x).sum().backward()
            sync(device)
            times.append((time.perf_counter() - t0) / n)
        micro_rows.append(
            [
                f"{s}->{2 * s}",
                f"{times[0] * 1e3:.3f}",
                f"{times[1] * 1e3:.3f}",
                f"{times[0] / times[1]:.2f}x",
                f"{diff:.1e}",
            ]
        )
    table(
        f"Gaussian upsampler alone, {plan.channels} channels, forward+backward",
        ["input -> output px", "dense 5x5 ms", "separable ms", "separable speed-up", "max |diff|"],
        micro_rows,
    )
    gbase = base.replace(upsample="gaussian")
    dense_net = LoopStepper("dense 5x5 upsampler", obs, gbase, device)
    sep_net = LoopStepper("separable upsampler", obs, gbase, device, separable_upsampler=True)
    record(
        lever_timing("Gaussian upsampler dense 5x5 -> separable (in the decoder)", [dense_net, sep_net], plan, device),
        f"same linear map (max |diff| {max(float(r[-1]) for r in micro_rows):.1e})",
    )

    # 7. torch.compile of the decoder's tensor work (estimator kept eager).
    if compile_ and time.perf_counter() < deadline:
        eager = LoopStepper("eager", obs, base, device)
        comp = LoopStepper("compiled", obs, base, device, compiled=True)
        t0 = time.perf_counter()
        with_precision(comp)
        comp.step()
        sync(device)
        compile_s = time.perf_counter() - t0
        res = lever_timing("torch.compile (default mode)", [eager, comp], plan, device)
        res["compile_s"] = compile_s
        record(
            res,
            quality_text(*quality_pair(plan, device, {}, {"compiled": True}))
            + f"; first call (compile) {compile_s:.1f} s",
        )
    elif not compile_:
        emit("  torch.compile: skipped (pass --compile)")

    table(
        f"Levers at {size} px, channels={plan.channels} ({plan.lever_timed} timed its after "
        f"{plan.warmup} warm-up, side by side)",
        ["lever", "without ms/it", "with ms/it", "speed-up", "quality"],
        [
            [r["lever"], f"{r['baseline_ms']:.1f}", f"{r['variant_ms']:.1f}", f"{r['speedup']:.2f}x", r["quality"]]
            for r in results
        ],
    )
    report.sections["levers"] = results


def section_planes(plan: Plan, device: torch.device, report: Report) -> None:
    """G grey planes as one grouped network vs G networks one after the other."""
    g, size = plan.planes, plan.plane_size
    rgb = resized(RGB, size * 2)[0].mean(0)
    planes = torch.stack(
        [
            rgb[(i % 2) * size : (i % 2) * size + size, ((i // 2) % 2) * size : ((i // 2) % 2) * size + size].roll(i, 0)
            for i in range(g)
        ]
    )[:, None]
    obs = noisy(planes)
    cfg = config_for("default", device, iterations=10**6, channels=plan.channels)
    batched = SolverStepper("batched", obs, cfg)
    t_batched = side_by_side([batched], plan.warmup, plan.plane_timed, plan.block, device)[0]
    batched.close()
    singles = [SolverStepper(f"plane {i}", obs[i : i + 1], cfg) for i in range(g)]
    t_each = side_by_side(singles, plan.warmup, plan.plane_timed, plan.block, device)
    for s in singles:
        s.close()
    t_serial = sum(t_each)
    speedup = t_serial / t_batched
    table(
        f"{g} planes of {size}x{size} (grey), channels={plan.channels}: one grouped network vs one by one",
        ["mode", "s per iteration of all planes", "plane-iterations/s", "speed-up"],
        [
            ["one by one", f"{t_serial:.4f}", f"{g / t_serial:.1f}", "1.00x"],
            ["batched (groups=G)", f"{t_batched:.4f}", f"{g / t_batched:.1f}", f"{speedup:.2f}x"],
        ],
    )
    emit(f"KEY batched {g}x{size}px: {speedup:.2f}x one-by-one throughput")
    report.sections["planes"] = dict(planes=g, size=size, serial_s=t_serial, batched_s=t_batched, speedup=speedup)


def check_targets(report: Report, device: torch.device) -> None:
    prof = {d["size"]: d for d in report.sections.get("profiles", [])}
    ttr = report.sections.get("time_to_result", {})
    targets = {}
    if device.type == "cpu":
        if 128 in prof:
            targets["CPU per iteration at 128 px >= 1.3x"] = (prof[128]["ratio"], 1.3)
        if "autostop_own_ratio" in ttr:  # no credit for stopping early at a worse PSNR
            targets["CPU time to within 0.5 dB of own final >= 3x (both auto stop)"] = (
                ttr["autostop_own_ratio"] if ttr["autostop_gain_db"] >= 0 else 0.0,
                3.0,
            )
        if "own_ratio" in ttr:
            targets["CPU time to within 0.5 dB of own final >= 3x (fixed budget)"] = (ttr["own_ratio"], 3.0)
        if "autostop_ratio" in ttr:
            targets["CPU time to the automatic stop >= 3x (with PSNR there not lower)"] = (
                ttr["autostop_ratio"] if ttr["autostop_gain_db"] >= 0 else 0.0,
                3.0,
            )
    else:
        if 512 in prof:
            targets["GPU default <= 3 ms/it at 512 px"] = (prof[512]["default_s"] * 1e3, -3.0)
            targets["GPU per iteration vs paper at 512 px >= 50x"] = (prof[512]["ratio"], 50.0)
        auto = [r for r in ttr.get("runs", []) if r["label"] == "default, auto stop"]
        if auto:
            targets["GPU 512 px denoise with auto stop <= 15 s"] = (auto[0]["seconds"], -15.0)
        if "planes" in report.sections:
            targets["GPU batched 16x256 >= 4x one-by-one"] = (report.sections["planes"]["speedup"], 4.0)
    rows = []
    for name, (value, bound) in targets.items():
        met = value <= -bound if bound < 0 else value >= bound
        rows.append([name, f"{value:.2f}", "met" if met else "NOT met"])
        report.targets[name] = dict(value=value, met=met)
        emit(f"KEY target {name}: {value:.2f} {'met' if met else 'NOT met'}")
    table("Targets", ["target", "measured", "verdict"], rows)


# --------------------------------------------------------------------------- main


RGB: np.ndarray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2-core CPU: 64 and 128 px")
    mode.add_argument("--gpu", action="store_true", help="CUDA: 256, 512, 1024 px")
    mode.add_argument("--tiny", action="store_true", help="seconds-long check that it runs")
    parser.add_argument("--device", help="override the device (default: cuda for --gpu, else cpu)")
    parser.add_argument("--sections", default="profiles,time_to_result,planes,levers")
    parser.add_argument(
        "--compile",
        dest="compile_",
        action="store_true",
        default=None,
        help="measure torch.compile (default: on for --gpu only)",
    )
    parser.add_argument("--no-compile", dest="compile_", action="store_false")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="peak fp32 TFLOP/s of the device (default: 67, H100 SXM dense fp32, on CUDA; none on the CPU)",
    )
    parser.add_argument(
        "--peak-tf32-tflops",
        type=float,
        default=495.0,
        help="peak TF32 tensor-core TFLOP/s (default 495, H100 SXM dense)",
    )
    parser.add_argument(
        "--budget-s", type=float, default=0.0, help="skip optional lever checks once this many seconds have passed"
    )
    parser.add_argument("--data", help="folder with the shared/data layout (for Peppers)")
    parser.add_argument("--image", help="an RGB test picture (default: Peppers 512)")
    parser.add_argument("--json", help="write all numbers to this JSON file")
    parser.add_argument("--memory-probe", nargs=3, metavar=("PROFILE", "SIZE", "CHANNELS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        memory_probe(args.memory_probe[0], int(args.memory_probe[1]), int(args.memory_probe[2]))
        return 0

    started = time.perf_counter()
    plan = PLANS["gpu" if args.gpu else "quick" if args.quick else "tiny" if args.tiny else "cpu"]
    device = torch.device(args.device or ("cuda" if args.gpu else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        emit("CUDA is not available")
        return 2
    global RGB
    RGB = load_rgb(args.data, args.image)
    compile_ = device.type == "cuda" if args.compile_ is None else args.compile_
    peak_fp32 = args.peak_tflops if args.peak_tflops else (67.0 if device.type == "cuda" else None)
    peaks = {
        "fp32": peak_fp32,
        "tf32": args.peak_tf32_tflops,
        "cpu": args.peak_tflops if device.type == "cpu" else None,
    }
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    report = Report(
        mode=plan.name,
        device=str(device),
        machine=name,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        peak_tflops=peaks,
    )
    emit(
        f"# speed.py --{plan.name}: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    emit(
        f"peak assumption: fp32 {peak_fp32} TFLOP/s, TF32 {args.peak_tf32_tflops} TFLOP/s "
        f"(used for CUDA rows with TF32 on); cuDNN TF32 default here: {DEFAULT_FLAGS[0]}"
    )
    sections = args.sections.split(",")
    deadline = started + args.budget_s if args.budget_s else float("inf")
    failures = 0
    for section in sections:
        t0 = time.perf_counter()
        try:
            if section == "profiles":
                section_profiles(plan, device, report, peaks)
            elif section == "time_to_result":
                section_time_to_result(plan, device, report)
            elif section == "levers":
                section_levers(plan, device, report, compile_, deadline)
            elif section == "planes":
                section_planes(plan, device, report)
            else:
                raise ValueError(f"unknown section {section!r}")
        except Exception as error:  # one failing section must not hide the others
            failures += 1
            emit(f"\nSECTION {section} FAILED: {type(error).__name__}: {error}")
            import traceback

            traceback.print_exc()
        emit(f"({section}: {time.perf_counter() - t0:.0f} s)")
        if args.json:
            Path(args.json).write_text(json.dumps(asdict(report), indent=1, default=str))
    check_targets(report, device)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=1, default=str))
    emit(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
