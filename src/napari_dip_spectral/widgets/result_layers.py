"""The layers a finished run leaves besides its image: the result's metadata and the FBC
and stopping plots drawn beside it."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import plots
from ..engine.result import RestoreResult
from ..noise.noise_fit import noise_summary
from ..refinement.refine import describe_denoising
from .layers import remove_layer, write_image
from .request import RunRequest
from .stack_run import plane_list

RESULT_KEY = "dip_spectral"  # metadata of result layers: settings and how the run ended
PLOT_KEY = "dip_spectral_plot"  # metadata flag of plot layers (kept out of the input lists)
STACK_PLOTS = " (mean over planes)"  # plot layers of a stack show the mean over its planes


def run_summary(result: RestoreResult, request: RunRequest) -> dict:
    """The result layer's metadata: settings, how the run ended, the noise model."""
    summary = {
        "task": result.task,
        "finished": result.finished,
        "stop_reason": result.stop_reason,
        "iterations": result.iterations,
        "stop_iteration": result.stop_iteration,
        "seconds": round(result.seconds, 3),
        "device": result.device,
        "source": request.source,
        "plane": request.index,
        "config": dataclasses.asdict(result.config),
        "noise_model": noise_summary(result.anscombe, result.noise_estimate),
        "nlm_share": result.nlm_share,
        "wiener": result.wiener,
        "likelihood": result.likelihood,
        "hot_pixels": result.hot_pixels,
        "saturated": result.saturated,
        "stop_rules": result.stop_rules,
    }
    if request.settings is not None:  # the preset the run was started with: "use settings of this result"
        summary["settings"] = request.settings
    if request.stack:
        summary.update(
            axes=result.axes,
            unit=request.unit,
            batch_size=result.batch_size,
            warm_start=result.warm_start,
            tiles_per_plane=result.tiles_per_plane,
            plane_stop_reasons=result.plane_stop_reasons,
            plane_stop_iterations=result.plane_stop_iterations,
        )
    return summary


def plot_names(name: str, stack: bool) -> tuple[str, str]:
    suffix = STACK_PLOTS if stack else ""
    return f"{name} FBC{suffix}", f"{name} stopping{suffix}"


def write_plots(viewer, name: str, result: RestoreResult, beside, stack: bool) -> None:
    """FBC and stopping plots as RGB layers, each as tall as the result: the FBC plot to
    its right, the stopping plot below that. For a stack they show the mean over its
    restored planes (said in their names), with the stop marked only when every plane
    stopped at the same iteration."""
    if not result.history:
        return
    stop = None if result.stop_reason == "cancelled" else result.stop_iteration
    if (
        stack
        and len({s for s, r in zip(result.plane_stop_iterations, result.plane_stop_reasons) if r != "constant"}) != 1
    ):
        stop = None
    (y0, x0), (y1, x1) = (np.asarray(c)[-2:] for c in beside.extent.world)
    height, gap = y1 - y0, 0.05 * (x1 - x0)
    fbc_name, stopping_name = plot_names(name, stack)
    figures = [
        (fbc_name, plots.fbc_plot(result.history, stop)),
        (stopping_name, plots.stopping_plot(result.history, stop)),
    ]
    for row, (title, rgb) in enumerate(figures):
        step = height / rgb.shape[0]
        write_image(
            viewer,
            title,
            rgb,
            rgb=True,
            scale=(step, step),
            translate=(y0 + row * (height + gap), x1 + gap),
            units=tuple(beside.units)[-2:],
            axis_labels=tuple(beside.axis_labels)[-2:],
            metadata={PLOT_KEY: True, "finished": result.finished},
        )


def status_line(outcome: RestoreResult, request: RunRequest, summary: dict, iteration: int) -> str:
    """How the run ended, in one line: the stop, which planes of a stack finished, the time,
    the device and (denoising) the noise model. ``iteration``: the last one shown."""
    finished = outcome.finished
    how = {
        "auto_stop": f"auto stop at iteration {outcome.stop_iteration}",
        "max_iterations": f"done: {outcome.iterations} iterations",
        "cancelled": f"CANCELLED at iteration {iteration}",
    }[outcome.stop_reason]
    if request.stack:
        planes, unit = summary["planes"], request.unit
        how = f"{how}; {unit}s finished: {plane_list(planes['finished'])}"
        if not finished:
            how = (
                f"{how}, stopped early (last iterate): {plane_list(planes['interrupted'])}, "
                f"never started (NaN): {plane_list(planes['not_started'])}"
            )
    rules = outcome.stop_rules
    if outcome.config.auto_stop and rules:
        how = f"{how} (stop rule: {', '.join(rules)})"
    noise = ""
    if outcome.task == "denoise":
        noise = "; " + describe_denoising(outcome)
    return f"{how} ({outcome.seconds:.0f} s, {outcome.device}){noise}"


def keep_cancelled_preview(viewer, request: RunRequest) -> None:
    """A run quit from napari's activity dock: its last preview stays, labelled (cancelled)."""
    running = f"{request.base} (running)"
    if running not in viewer.layers:
        return
    preview = viewer.layers[running]
    metadata = {"finished": False, "stop_reason": "cancelled", "iteration": preview.metadata[RESULT_KEY]["iteration"]}
    write_image(
        viewer, f"{request.base} (cancelled)", preview.data, metadata={RESULT_KEY: metadata}, **request.layer_kwargs()
    )
    remove_layer(viewer, running)
