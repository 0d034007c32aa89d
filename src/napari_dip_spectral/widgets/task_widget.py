"""The dock widget of one restoration task: layer choice, parameters, Run / Cancel, results.

The widget only converts layers to arrays (``layers.py``) and events to layer updates; the
work is ``RestorationJob.run()`` in a napari thread worker (``worker.py``). Scripts drive it
with ``widget.run(wait=True)`` (see docs/napari.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.layers import Image, Labels, Shapes
from napari.utils import progress
from napari.utils.notifications import show_error, show_info

from .. import plots
from ..api import RestorationJob, RestoreResult
from .form import TASK_TITLES, ParameterForm
from .layers import (Geometry, current_plane, matching_plane, observed_mask, remove_layer,
                     result_geometry, with_leading_axes, write_image)
from .worker import RunFailure, restoration_worker, wait_until

PLOT_KEY = "dip_spectral_plot"      # metadata flag of plot layers (kept out of the input lists)
RESULT_KEY = "dip_spectral"         # metadata of result layers: settings and how the run ended


@dataclass
class RunRequest:
    """Everything a started run needs to turn its events and result into layers."""

    job: RestorationJob
    base: str                       # "<input> [<task>]" (+ " plane i,j" for a stack plane)
    source: str
    index: tuple[int, ...]
    geometry: Geometry
    rgb: bool
    contrast_limits: tuple | None

    def layer_kwargs(self) -> dict:
        kwargs = dict(self.geometry.as_kwargs(), rgb=self.rgb)
        if self.contrast_limits is not None:
            kwargs["contrast_limits"] = self.contrast_limits
        return kwargs


class TaskWidget(Container):
    """Restore an Image layer with one task. Subclasses set ``task``."""

    task = "denoise"

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = ComboBox(label="image", choices=self._image_choices, tooltip=(
            "Image layer to restore: 2-D grey or RGB. For stacks (T, Z, C... before Y, X) the "
            "plane shown in the viewer is restored. The layer itself is never modified."))
        self.extend([Label(value=f"<b>{TASK_TITLES[self.task]}</b> (spectral-bias DIP)"), self.image])
        self.mask = None
        if self.task == "inpaint":
            self.mask = ComboBox(label="missing pixels", choices=self._mask_choices, nullable=True,
                                 tooltip=(
                "Layer marking the MISSING pixels: labelled (nonzero) pixels of a Labels or "
                "Image layer, or pixels inside the shapes of a Shapes layer, are missing and "
                "get filled in; every other pixel is observed."))
            self.extend([self.mask, Label(value="labelled / nonzero / inside shapes = missing")])
        self.form = ParameterForm(self.task)
        self.reference = ComboBox(label="reference (PSNR)", choices=self._image_choices,
                                  nullable=True, value=None, tooltip=(
            "Optional ground-truth Image layer with the result's shape: PSNR against it is "
            "logged and drawn in the stopping plot. It does not influence the restoration."))
        self.form.advanced.append(self.reference)
        self.run_button = PushButton(text="Run", tooltip="Start the restoration in the background.")
        self.cancel_button = PushButton(text="Cancel", enabled=False, tooltip=(
            "Stop after the current iteration; the partial result is labelled (cancelled)."))
        self.status = Label(value="ready")
        self.status.native.setWordWrap(True)     # long messages wrap instead of being cut
        self.extend([self.form, Container(widgets=[self.run_button, self.cancel_button],
                                          layout="horizontal", labels=False), self.status])
        self.run_button.changed.connect(lambda: self.run())
        self.cancel_button.changed.connect(self.cancel)
        self.last_worker = None
        self.last_result: RestoreResult | None = None
        self.running = False
        self._request: RunRequest | None = None
        self._progress: progress | None = None
        self._last_iteration = 0
        self._newest = None              # newest event not yet shown
        self._newest_preview = None      # newest event with a preview not yet shown
        self._showing = False
        self._accepting = False          # events are shown until the run's outcome arrives
        self._deferred: list = []        # outcome callbacks that arrived while showing an event

    # ----------------------------------------------------------------- layer lists
    def _layers(self, kinds) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, kinds) and not layer.metadata.get(PLOT_KEY)]

    def _image_choices(self, _widget=None) -> list:
        return self._layers(Image)

    def _mask_choices(self, _widget=None) -> list:
        return self._layers((Labels, Shapes)) + self._layers(Image)

    # ----------------------------------------------------------------- run / cancel
    def run(self, wait: bool = False, timeout: float | None = None):
        """Start a run with the current settings and return its worker (``None`` if the
        settings were refused: the reason is shown as a notification). With ``wait=True``
        block (processing Qt events) until it ends; the result is then in ``last_result``."""
        if self.running:
            show_info("a restoration is already running in this widget")
            return self.last_worker
        try:
            self._request = self._prepare()
        except ValueError as error:
            self._fail(str(error))
            return None
        job = self._request.job
        worker = restoration_worker(job)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(lambda outcome: self._after_showing(self._on_returned, outcome))
        worker.aborted.connect(lambda: self._after_showing(self._on_aborted))
        worker.finished.connect(lambda: self._after_showing(self._on_finished))
        self.last_worker, self.last_result, self.running = worker, None, True
        self._accepting, self._newest, self._newest_preview = True, None, None
        self._last_iteration = 0
        self._progress = progress(total=job.config.iterations,
                                  desc=f"{TASK_TITLES[self.task]}: {self._request.source}")
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = f"running on {self._request.source} ({job.config.iterations} iterations max)"
        worker.start()
        if wait:
            self.wait(timeout)
        return worker

    def wait(self, timeout: float | None = None) -> bool:
        """Process Qt events until the current run ends; ``True`` if it has ended."""
        return wait_until(lambda: not self.running, timeout)

    def cancel(self) -> None:
        """Ask the running job to stop after its current iteration."""
        if self.running and self.last_worker is not None:
            self.last_worker.send(True)
            self.status.value = "cancelling..."

    def _prepare(self) -> RunRequest:
        layer = self.image.value
        if layer is None:
            raise ValueError("choose an image layer to restore")
        plane = current_plane(layer, self.viewer)
        options = self.form.options()
        mask = None
        if self.mask is not None:
            if self.mask.value is None:
                raise ValueError("choose the mask: the layer that marks the missing pixels")
            mask = observed_mask(self.mask.value, layer, plane.index, plane.data.shape[:2])
        reference = None
        if self.reference.value is not None:
            reference = matching_plane(self.reference.value, layer, plane.index, "reference")
        job = RestorationJob(plane.data, self.task, mask=mask, reference=reference, **options)
        geometry = result_geometry(layer, plane.index, job.factor or 1)
        limits = None if layer.rgb else tuple(layer.contrast_limits)
        return RunRequest(job=job, base=f"{layer.name} [{self.task}]{plane.label}", source=layer.name,
                          index=plane.index, geometry=geometry, rgb=bool(layer.rgb),
                          contrast_limits=limits)

    # ----------------------------------------------------------------- worker callbacks
    def _on_event(self, event) -> None:
        """Show progress and previews. Qt events processed while a layer or the progress bar
        updates can deliver further events re-entrantly: those are queued and only the
        newest progress and newest preview are shown."""
        self._newest = event
        if event.preview is not None:
            self._newest_preview = event
        if self._showing or not self._accepting:
            return
        self._showing = True
        try:
            while self._newest is not None and self._accepting:
                newest, self._newest = self._newest, None
                preview, self._newest_preview = self._newest_preview, None
                self._last_iteration = newest.iteration
                self.status.value = f"iteration {newest.iteration} / {newest.total}"
                self._progress.update(newest.iteration - self._progress.n)
                if preview is not None:
                    self._show_preview(preview)
        finally:
            self._showing = False
        while self._deferred:
            callback, args = self._deferred.pop(0)
            callback(*args)

    def _after_showing(self, callback, *args) -> None:
        """Run an outcome callback now, or after the event being shown if one is (layer and
        progress-bar updates process Qt events, which can deliver the outcome mid-update)."""
        self._accepting = False
        if self._showing:
            self._deferred.append((callback, args))
        else:
            callback(*args)

    def _show_preview(self, event) -> None:
        request = self._request
        data = request.job.to_output(event.preview)
        write_image(self.viewer, f"{request.base} (running)", with_leading_axes(data, request.index),
                    metadata={RESULT_KEY: {"finished": False, "iteration": event.iteration}},
                    **request.layer_kwargs())

    def _on_returned(self, outcome) -> None:
        request = self._request
        remove_layer(self.viewer, f"{request.base} (running)")
        if isinstance(outcome, RunFailure):
            self._fail(outcome.message)
            return
        self.last_result = outcome
        finished = outcome.finished
        name = request.base if finished else f"{request.base} (cancelled)"
        if finished:
            for stale in (f"{request.base} (cancelled)", f"{request.base} (cancelled) FBC",
                          f"{request.base} (cancelled) stopping"):
                remove_layer(self.viewer, stale)
        data = outcome.as_input_dtype(request.job.input_dtype)
        result_layer = write_image(self.viewer, name, with_leading_axes(data, request.index),
                                   metadata={RESULT_KEY: self._summary(outcome, request)},
                                   **request.layer_kwargs())
        self._write_plots(name, outcome, result_layer)
        how = {"auto_stop": f"auto stop at iteration {outcome.stop_iteration}",
               "max_iterations": f"done: {outcome.iterations} iterations",
               "cancelled": f"CANCELLED at iteration {outcome.iterations}"}
        self.status.value = f"{how[outcome.stop_reason]} ({outcome.seconds:.0f} s, {outcome.device})"

    def _on_aborted(self) -> None:
        """The worker was quit (e.g. from the activity dock): keep the last preview, labelled."""
        request = self._request
        running = f"{request.base} (running)"
        if running in self.viewer.layers:
            preview = self.viewer.layers[running]
            write_image(self.viewer, f"{request.base} (cancelled)", preview.data,
                        metadata={RESULT_KEY: {"finished": False, "stop_reason": "cancelled",
                                               "iteration": preview.metadata[RESULT_KEY]["iteration"]}},
                        **request.layer_kwargs())
            remove_layer(self.viewer, running)
        self.status.value = f"cancelled at iteration {self._last_iteration}"

    def _on_finished(self) -> None:
        self._progress.close()
        self.running = False
        self.run_button.enabled, self.cancel_button.enabled = True, False

    def _fail(self, message: str) -> None:
        self.status.value = f"error: {message}"
        show_error(f"{TASK_TITLES[self.task]}: {message}")

    # ----------------------------------------------------------------- results
    def _summary(self, result: RestoreResult, request: RunRequest) -> dict:
        return {"task": result.task, "finished": result.finished, "stop_reason": result.stop_reason,
                "iterations": result.iterations, "stop_iteration": result.stop_iteration,
                "seconds": round(result.seconds, 3), "device": result.device,
                "source": request.source, "plane": request.index,
                "config": dataclasses.asdict(result.config)}

    def _write_plots(self, name: str, result: RestoreResult, beside) -> None:
        """FBC and stopping plots as RGB layers, each as tall as the result: the FBC plot to
        its right, the stopping plot below that."""
        if not result.history:
            return
        stop = None if result.stop_reason == "cancelled" else result.stop_iteration
        (y0, x0), (y1, x1) = (np.asarray(c)[-2:] for c in beside.extent.world)
        height, gap = y1 - y0, 0.05 * (x1 - x0)
        figures = [(f"{name} FBC", plots.fbc_plot(result.history, stop)),
                   (f"{name} stopping", plots.stopping_plot(result.history, stop))]
        for row, (title, rgb) in enumerate(figures):
            step = height / rgb.shape[0]
            write_image(self.viewer, title, rgb, rgb=True, scale=(step, step),
                        translate=(y0 + row * (height + gap), x1 + gap),
                        units=tuple(beside.units)[-2:], axis_labels=tuple(beside.axis_labels)[-2:],
                        metadata={PLOT_KEY: True, "finished": result.finished})


class DenoiseWidget(TaskWidget):
    """Remove noise (Gaussian, Poisson-Gaussian) from an image."""

    task = "denoise"


class DeblockWidget(TaskWidget):
    """Remove JPEG block and ringing artefacts."""

    task = "deblock"


class InpaintWidget(TaskWidget):
    """Fill in missing pixels marked by a Labels, Shapes or Image layer."""

    task = "inpaint"


class SuperResolutionWidget(TaskWidget):
    """Upscale an image 2, 4 or 8 times."""

    task = "super_resolution"


class EnhanceWidget(TaskWidget):
    """Boost fine details the network does not fit in a short run."""

    task = "enhance"
