"""The dock widget of one restoration task: layer choice, parameters, Run / Cancel, results.

The widget only converts layers to arrays (``layers.py``) and events to layer updates; the
work is ``RestoreJob.run()`` (the job ``restore()`` runs) on the displayed plane or on all
planes of a stack, in a napari thread worker (``worker.py``). Scripts drive it with
``widget.run(wait=True)`` (see docs/napari.md).
"""

from __future__ import annotations

import contextlib

from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QSizePolicy

from ..engine.result import RestoreResult
from .form import TASK_TITLES, ParameterForm
from .layers import layer_axes, remove_layer, with_leading_axes, write_image
from .presets_panel import PresetsPanel
from .progress_bars import RunProgress
from .region import RegionFields, region_request
from .request import RunRequest, plane_request, stack_request
from .result_layers import (
    PLOT_KEY,
    RESULT_KEY,
    keep_cancelled_preview,
    plot_names,
    run_summary,
    status_line,
    write_plots,
)
from .stack_fields import ALL_PLANES, StackFields
from .stack_run import StackPreview, plane_account
from .worker import RunFailure, estimate_worker, restoration_worker, stop_with, wait_until


class TaskWidget(Container):
    """Restore an Image layer with one task. Subclasses set ``task``."""

    task = "denoise"

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = ComboBox(
            label="image",
            choices=self._image_choices,
            tooltip=(
                "Image layer to restore: 2-D grey or RGB, or a stack (T, Z, C... before Y, X). "
                "The layer itself is never modified."
            ),
        )
        self.stack_fields = StackFields(self.task)
        self.planes, self.axes = self.stack_fields.planes, self.stack_fields.axes
        self.batch_size, self.stack_prior = self.stack_fields.batch_size, self.stack_fields.stack_prior
        self.warm_start = self.stack_fields.warm_start
        self.region = RegionFields(lambda _widget=None: self._layers(Shapes))
        title = Label(value=f"<b>{TASK_TITLES[self.task]}</b> (spectral-bias DIP)")
        self.extend([title, self.image, self.stack_fields, self.region])
        self.image.changed.connect(self._layer_chosen)
        self.planes.changed.connect(self._planes_chosen)
        self.mask = None
        if self.task == "inpaint":
            self.mask = ComboBox(
                label="missing pixels",
                choices=self._mask_choices,
                nullable=True,
                tooltip=(
                    "Layer marking the MISSING pixels: labelled (nonzero) pixels of a Labels or "
                    "Image layer, or pixels inside the shapes of a Shapes layer, are missing and "
                    "get filled in; every other pixel is observed."
                ),
            )
            self.extend([self.mask, Label(value="labelled / nonzero / inside shapes = missing")])
        self.form = ParameterForm(self.task)
        self.reference = ComboBox(
            label="reference (PSNR)",
            choices=self._image_choices,
            nullable=True,
            value=None,
            tooltip=(
                "Optional ground-truth Image layer with the result's shape: PSNR against it is "
                "logged and drawn in the stopping plot. It does not influence the restoration."
            ),
        )
        self.form.advanced.append(self.reference)
        self.run_button = PushButton(text="Run", tooltip="Start the restoration in the background.")
        self.estimate_button = PushButton(
            text="Estimate time",
            tooltip="Time a few iterations on the chosen device and say how long the run would take.",
        )
        self.cancel_button = PushButton(
            text="Cancel",
            enabled=False,
            tooltip=("Stop after the current iteration; the partial result is labelled (cancelled)."),
        )
        self.status = Label(value="ready")
        self.status.native.setWordWrap(True)  # long messages wrap instead of being cut
        # as wide as the dock (not as the first message), as tall as the wrapped text needs
        self.status.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.presets = PresetsPanel(self)
        self.extend(
            [
                self.form,
                self.presets,
                Container(
                    widgets=[self.run_button, self.estimate_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
                self.status,
            ]
        )
        self.run_button.changed.connect(lambda: self.run())
        self.estimate_button.changed.connect(lambda: self.estimate())
        self.cancel_button.changed.connect(self.cancel)
        self.last_worker = None
        self.last_result: RestoreResult | None = None
        self.running = False
        self._request: RunRequest | None = None
        self._progress: RunProgress | None = None
        self._preview: StackPreview | None = None
        self._received = None  # the last event the worker sent
        self._newest = None  # newest event not yet shown
        self._newest_preview = None  # newest event with a preview not yet shown
        self._showing = False
        self._accepting = False  # events are shown until the run's outcome arrives
        self._deferred: list = []  # outcome callbacks that arrived while showing an event
        self._orphaned = False  # the dock or viewer closed during the run: show nothing more
        stop_with(self.native, self._owner_gone)
        active = napari_viewer.layers.selection.active  # start on the layer the user selected
        if isinstance(active, Image) and not active.metadata.get(PLOT_KEY):
            self.image.value = active
        self._layer_chosen(self.image.value)
        self.presets.restore_persisted()

    # ----------------------------------------------------------------- stack fields
    def _layer_chosen(self, layer) -> None:
        """Show the stack fields for a stack layer and fill in its axes (reads no data)."""
        stack = layer is not None and layer.ndim > 2
        self.stack_fields.visible = stack
        if stack:
            self.axes.value = layer_axes(layer)
        self._planes_chosen(self.planes.value)

    def _planes_chosen(self, choice: str) -> None:
        self.batch_size.visible = choice == ALL_PLANES

    # ----------------------------------------------------------------- layer lists
    def _layers(self, kinds) -> list:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, kinds) and not layer.metadata.get(PLOT_KEY)
        ]

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
        request = self._request
        request.settings = self.presets.persist()  # for the next session and the result's metadata
        worker = restoration_worker(request.make_job)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(lambda outcome: self._after_showing(self._on_returned, outcome))
        worker.aborted.connect(lambda: self._after_showing(self._on_aborted))
        worker.finished.connect(lambda: self._after_showing(self._on_finished))
        self.last_worker, self.last_result, self.running = worker, None, True
        self._accepting, self._newest, self._newest_preview = True, None, None
        self._orphaned = False
        self._preview = self._received = None
        iterations = int(self.form.iterations.value)
        title = f"{TASK_TITLES[self.task]}: {request.source}"
        self._progress = RunProgress(title, iterations, request.n_planes, request.unit, self.form.auto_stop.value)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        what = f"all {request.n_planes} {request.unit}s of " if request.stack else ""
        self.status.value = f"running on {what}{request.source} ({iterations} iterations max)"
        worker.start()
        if wait:
            self.wait(timeout)
        return worker

    def estimate(self, wait: bool = False, timeout: float | None = None):
        """Time a few iterations of the current settings on their device in the background
        and show the expected run time in the status line; returns the worker (``None`` if
        the settings were refused). ``wait=True`` blocks until the estimate is shown."""
        if self.running:
            show_info("a restoration is running in this widget")
            return None
        try:
            request = self._prepare()
        except ValueError as error:
            self._fail(str(error))
            return None
        worker = estimate_worker(request.make_job)
        done = []
        worker.returned.connect(lambda text: setattr(self.status, "value", text))
        worker.finished.connect(lambda: done.append(True))
        self.status.value = "estimating..."
        worker.start()
        if wait:
            wait_until(lambda: bool(done), timeout)
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
        mask = None
        if self.mask is not None:
            if self.mask.value is None:
                raise ValueError("choose the mask: the layer that marks the missing pixels")
            mask = self.mask.value
        options = self.form.options()
        box = self.region.world_box(self.viewer)  # None: the whole image; a region is of the displayed plane
        if box is not None:
            return region_request(self.viewer, layer, self.task, options, box, mask, self.reference.value)
        if layer.ndim > 2 and self.planes.value == ALL_PLANES:
            prior = "planes" if self.stack_prior is None else self.stack_prior.value
            return stack_request(
                layer,
                self.task,
                options if self.warm_start.value is None else dict(options, warm_start=self.warm_start.value),
                axes=self.axes.value.strip(),
                prior=prior,
                batch_size=int(self.batch_size.value) or None,
                mask=mask,
                reference=self.reference.value,
            )
        return plane_request(self.viewer, layer, self.task, options, mask, self.reference.value)

    # ----------------------------------------------------------------- worker callbacks
    def _on_event(self, event) -> None:
        """Show progress and previews. Qt events processed while a layer or the progress bar
        updates can deliver further events re-entrantly: those are queued and only the
        newest progress and newest preview are shown."""
        self._newest = self._received = event
        if event.preview is not None:
            self._newest_preview = event
        if self._showing or not self._accepting:
            return
        self._showing = True
        try:
            while self._newest is not None and self._accepting:
                newest, self._newest = self._newest, None
                preview, self._newest_preview = self._newest_preview, None
                self.status.value = self._progress.update(newest)
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
        if self._preview is None:
            self._preview = StackPreview(request.job)
        if not self._preview.update(event):
            return
        data, iteration = self._preview.data, event.iteration
        if not request.stack:
            data = with_leading_axes(data, request.index)
        layer = write_image(
            self.viewer,
            f"{request.base} (running)",
            data,
            metadata={RESULT_KEY: {"finished": False, "iteration": iteration}},
            **request.layer_kwargs(),
        )
        layer.refresh()  # the preview array is updated in place: redraw it

    def _on_returned(self, outcome) -> None:
        request = self._request
        if self._orphaned:
            return
        remove_layer(self.viewer, f"{request.base} (running)")
        if isinstance(outcome, RunFailure):
            self._fail(outcome.message)
            return
        self.last_result = outcome
        finished = outcome.finished
        name = request.base if finished else f"{request.base} (cancelled)"
        if finished:
            cancelled = f"{request.base} (cancelled)"
            for stale in (cancelled, *plot_names(cancelled, request.stack)):
                remove_layer(self.viewer, stale)
        summary = run_summary(outcome, request)
        if request.stack:
            # a cancelled stack stays float32 so that planes never started stay NaN
            data = outcome.as_input_dtype(request.job.input_dtype) if finished else outcome.image
            # the last event received (not necessarily shown) is of the batch a cancel stopped
            summary["planes"] = plane_account(outcome, getattr(self._received, "planes", ()))
        else:
            data = with_leading_axes(outcome.as_input_dtype(request.job.input_dtype), request.index)
        result_layer = write_image(self.viewer, name, data, metadata={RESULT_KEY: summary}, **request.layer_kwargs())
        write_plots(self.viewer, name, outcome, result_layer, request.stack)
        self.status.value = status_line(outcome, request, summary, self._progress.iteration)

    def _owner_gone(self) -> None:
        """The widget left its dock (or its dock or the viewer closed): stop the run within
        one iteration and take its preview layer away; only the settings are saved."""
        self.presets.persist_on_close()
        if not self.running or self.last_worker is None:
            return
        self._orphaned, self._accepting = True, False
        self.last_worker.quit()
        with contextlib.suppress(RuntimeError, AttributeError):  # the viewer may be torn down
            remove_layer(self.viewer, f"{self._request.base} (running)")

    def _on_aborted(self) -> None:
        """The worker was quit (e.g. from the activity dock): keep the last preview, labelled."""
        if self._orphaned:
            return
        keep_cancelled_preview(self.viewer, self._request)
        self.status.value = f"cancelled at iteration {self._progress.iteration}"

    def _on_finished(self) -> None:
        self._progress.close()
        self._preview = None
        self.running = False
        if not self._orphaned:  # an orphaned widget's buttons may already be deleted
            self.run_button.enabled, self.cancel_button.enabled = True, False

    def _fail(self, message: str) -> None:
        self.status.value = f"error: {message}"
        show_error(f"{TASK_TITLES[self.task]}: {message}")


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
