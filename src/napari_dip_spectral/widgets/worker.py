"""The restoration as a napari thread worker over ``RestoreJob.run()``.

The worker builds the job (so that an all-planes run reads a dask-backed layer in the worker
thread, not the GUI's), yields a ``RunEvent`` after every iteration (so ``quit()`` lands within
one iteration) and returns the ``RestoreResult``, or a :class:`RunFailure` for the errors a user
can fix (bad device, out of memory...). Sending ``True`` into the worker (``worker.send(True)``)
cancels the job so that it still returns its last iterate, marked ``stop_reason ==
"cancelled"``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from napari.qt.threading import GeneratorWorker, create_worker
from qtpy.QtCore import QEvent, QEventLoop, QObject
from qtpy.QtWidgets import QApplication


@dataclass
class RunFailure:
    """A run that ended on an error the user can act on; ``message`` says what happened."""

    message: str


def gui_threads() -> int:
    """Torch threads for a run started from the GUI: all cores but one, which the GUI keeps."""
    return max(1, (os.cpu_count() or 2) - 1)


def run_job(make_job: Callable, threads: int) -> Generator:
    """Generator run in the worker thread: builds the job with ``make_job()``, then forwards
    events and values sent in both ways."""
    import torch

    torch.set_num_threads(threads)
    message = None
    try:
        steps = make_job().run()
        while True:
            try:
                event = steps.send(message)
            except StopIteration as stop:
                return stop.value
            message = yield event
    except (ValueError, MemoryError, FloatingPointError) as error:
        return RunFailure(str(error))


def restoration_worker(make_job: Callable) -> GeneratorWorker:
    """An unstarted worker for the job ``make_job()`` builds (a ``RestoreJob``; registered
    as a task napari can cancel).

    The progress bar is the widget's own ``napari.utils.progress``, not ``create_worker``'s:
    napari's bar processes Qt events on every step, which re-enters the ``yielded`` handlers
    without bound when iterations are faster than the GUI (small images, GPUs)."""
    return create_worker(run_job, make_job, gui_threads())


def estimate_job(make_job: Callable, threads: int) -> str:
    """The status line of an estimate (or of the error that prevented it)."""
    import torch

    torch.set_num_threads(threads)
    try:
        return "estimate: " + make_job().estimate().text()
    except (ValueError, MemoryError, FloatingPointError) as error:
        return f"error: {error}"


def estimate_worker(make_job: Callable):
    """An unstarted worker that returns the estimate's status line."""
    return create_worker(estimate_job, make_job, gui_threads())


def wait_until(done, timeout: float | None = None) -> bool:
    """Process Qt events until ``done()`` is true (or ``timeout`` seconds pass); return
    ``done()``. For scripts and tests that start a run and need its result."""
    app = QApplication.instance()
    deadline = None if timeout is None else time.monotonic() + timeout
    while not done():
        if deadline is not None and time.monotonic() > deadline:
            break
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    return bool(done())


class _ParentWatch(QObject):
    """Calls ``stop()`` when the watched widget is taken out of its parent (napari's
    ``remove_dock_widget``, which the dock's close button calls, sets the parent to None)."""

    def __init__(self, watched, stop: Callable[[], None]):
        super().__init__(watched)
        self._stop = stop
        watched.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
            self._stop()
        return False


def stop_with(native, stop: Callable[[], None]) -> None:
    """Call ``stop()`` when the Qt widget ``native`` leaves its dock or is destroyed (its
    dock or the viewer closed), so that no run outlives the widget that started it."""
    _ParentWatch(native, stop)
    native.destroyed.connect(lambda *_: stop())
