"""How long a running job has left, from the events it has yielded so far (no torch, no Qt):
the remaining-time figure of the widgets' progress and the CLI's progress line.

The figure is the work left, measured in iterations (the rest of the current batch's budget,
plus a whole budget for every batch not yet started), times the time per iteration measured
over the recent iterations. With the automatic stop on it is an upper bound: a batch ends as
soon as all its planes have stopped, usually well before its budget.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

# The first iterations of every batch are not timed: the batch's network is built, and its
# first steps allocate memory and warm caches, so they can take many times a later one.
WARMUP = 3
# The rate is the slope over about this many recent iterations: wide enough to average the
# slower metric iterations in (every 1-10 iterations) and out-of-turn stalls, recent enough to
# follow a change (another program taking the CPU, a smaller last batch).
WINDOW = 50
# A rate from fewer iterations than this is too noisy to show.
MIN_SPAN = 2


class RemainingTime:
    """Feed every event of a run (a :class:`~napari_dip_spectral.engine.events.RunEvent`, or
    anything with ``batch``, ``batches``, ``iteration``, ``total`` and ``stopped``) to
    :meth:`update`; it returns the seconds left, or None while the rate is not yet measured.

    ``auto_stop``: the run stops planes early, so the figure is an upper bound ("at most");
    without it the run goes to its budget ("about"). ``clock``: seconds, monotonic (tests
    inject one). ``every``: the shown :meth:`text` changes at most this often (seconds), so
    that a bar's label does not flicker on every iteration."""

    def __init__(
        self,
        auto_stop: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        every: float = 0.0,
        warmup: int = WARMUP,
        window: int = WINDOW,
    ):
        self.auto_stop, self.clock, self.every = auto_stop, clock, every
        self.warmup, self.window = warmup, window
        self.rate: float | None = None  # seconds per iteration
        self.left: float | None = None  # seconds, after the last update
        self.likely: float | None = None  # seconds, from the iterations finished batches took
        self._finished: list[int] = []  # iterations each finished batch ran
        self._last = 0  # the last iteration seen in the current batch
        self._samples: deque[tuple[float, int]] = deque()  # (time, iteration) in the current batch
        self._batch: int | None = None
        self._stopped = 0  # groups of the current batch whose stop rule has fired
        self._shown, self._shown_at = "", -math.inf

    def update(self, event) -> float | None:
        now = self.clock()
        if event.batch != self._batch:  # a new network: its warm-up must not count
            if self._batch is not None and self._last:
                self._finished.append(self._last)
            self._batch, self._stopped, self._last = event.batch, 0, 0
            self._samples.clear()
        self._last = max(self._last, event.iteration)
        # the solver reports stops on metric iterations only (0 in between)
        self._stopped = max(self._stopped, int(getattr(event, "stopped", 0) or 0))
        if event.iteration > self.warmup:
            self._measure(now, event.iteration)
        if self.rate is None:
            self.left = self.likely = None
            return None
        self.left = self.rate * self.work_left(event)
        likely = self.likely_work_left(event)
        self.likely = None if likely is None else min(self.left, self.rate * likely)
        return self.left

    def _measure(self, now: float, iteration: int) -> None:
        samples = self._samples
        if samples and iteration <= samples[-1][1]:
            return  # an event seen twice, or out of order
        samples.append((now, iteration))
        while len(samples) > 2 and iteration - samples[1][1] >= self.window:
            samples.popleft()
        (t0, i0), (t1, i1) = samples[0], samples[-1]
        if i1 - i0 >= MIN_SPAN:
            self.rate = (t1 - t0) / (i1 - i0)
        # else: keep the previous batch's rate until this one has its own

    def work_left(self, event) -> int:
        """Iterations still to run: the rest of this batch's budget and the budgets of the
        batches not started (planes, or tiles, fitted together run as one network)."""
        later = max(0, event.batches - event.batch - 1) * event.total
        groups = getattr(event, "groups", 0)
        if self.auto_stop and groups and self._stopped >= groups:
            return later  # every plane of the batch has stopped: it ends now
        return max(0, event.total - event.iteration) + later

    def likely_work_left(self, event) -> int | None:
        """With the automatic stop, once a batch has finished: iterations still to run if
        every batch to come (and this one) takes as many as the finished ones did on average.
        A stack's planes (warm-started or not) stop far inside their budget, where the bound
        of :meth:`work_left` counts each batch's whole budget."""
        if not self.auto_stop or not self._finished:
            return None
        typical = math.ceil(sum(self._finished) / len(self._finished))
        later = max(0, event.batches - event.batch - 1) * typical
        groups = getattr(event, "groups", 0)
        if groups and self._stopped >= groups:
            return later
        return max(0, min(typical, event.total) - event.iteration) + later

    def text(self) -> str:
        """``"at most 2 min 10 s left"`` (``"about ..."`` without the automatic stop; ``"about
        40 s left (at most 2 h)"`` once finished batches show how far the stop runs); empty
        while the rate is not measured and when nothing is left."""
        if self.left is None or self.left <= 0:
            fresh = ""
        elif self.likely is not None:
            fresh = f"about {format_left(max(self.likely, 1))} left (at most {format_left(self.left)})"
        else:
            fresh = f"{'at most' if self.auto_stop else 'about'} {format_left(self.left)} left"
        now = self.clock()
        if fresh != self._shown and (not self._shown or not fresh or now - self._shown_at >= self.every):
            self._shown, self._shown_at = fresh, now
        return self._shown


def format_left(seconds: float) -> str:
    """A duration rounded up (the figure is a bound): ``45 s``, ``2 min 10 s`` (to 10 s),
    ``1 h 5 min`` (to the minute)."""
    seconds = round(seconds, 6)  # 80 * 0.1 s is 8 s, not the 9 s ceil would make of 8.000000000000002
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} s"
    if seconds < 3600:
        tens = math.ceil(seconds / 10)
        minutes, rest = divmod(tens * 10, 60)
        if minutes == 60:
            return "1 h"
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    minutes = math.ceil(seconds / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")
