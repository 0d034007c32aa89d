"""The remaining-time figure from synthetic event timings (an injected clock, no real run)."""

from __future__ import annotations

import pytest

from napari_dip_spectral.core.solver import ProgressEvent
from napari_dip_spectral.engine.events import RunEvent
from napari_dip_spectral.engine.remaining import RemainingTime, format_left


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def event(iteration, total=100, batch=0, batches=1, stopped=0, groups=1):
    step = ProgressEvent(iteration=iteration, total=total, stopped=stopped)
    return RunEvent(batch, batches, tuple(range(groups)), groups * batches, step, groups=groups)


def feed(remaining, clock, iterations, seconds_each, **kwargs):
    """Iterations ``iterations`` taking ``seconds_each`` (a number or a function of the
    iteration); returns the last figure."""
    left = None
    for i in iterations:
        clock.now += seconds_each(i) if callable(seconds_each) else seconds_each
        left = remaining.update(event(i, **kwargs))
    return left


def test_nothing_is_shown_before_the_rate_is_measured():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    assert feed(remaining, clock, range(1, 5), 0.1) is None  # warm-up, then one timed iteration
    assert remaining.text() == ""


def test_the_slow_first_iterations_do_not_count():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    left = feed(remaining, clock, range(1, 21), lambda i: 5.0 if i <= 3 else 0.1)
    assert left == pytest.approx(80 * 0.1)
    assert remaining.text() == "at most 8 s left"


def test_the_rate_follows_recent_iterations_not_the_whole_run():
    clock = Clock()
    remaining = RemainingTime(clock=clock, window=20)
    feed(remaining, clock, range(1, 101), 0.1, total=1000)
    left = feed(remaining, clock, range(101, 201), 0.5, total=1000)  # another program took the CPU
    assert left == pytest.approx(800 * 0.5)
    assert remaining.text() == "at most 6 min 40 s left"


def test_slower_metric_iterations_are_averaged_in():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    left = feed(remaining, clock, range(1, 101), lambda i: 1.0 if i % 10 == 0 else 0.1, total=1100)
    assert left == pytest.approx(1000 * 0.19, rel=0.05)


def test_a_stack_counts_the_batches_not_started():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    left = feed(remaining, clock, range(1, 51), 0.2, batch=1, batches=4)
    assert left == pytest.approx((50 + 2 * 100) * 0.2)


def test_a_new_batch_keeps_the_last_rate_through_its_warm_up():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    feed(remaining, clock, range(1, 51), 0.2, batch=0, batches=3)
    clock.now += 30  # the next batch's network is built: not an iteration
    left = feed(remaining, clock, [1], 0.2, batch=1, batches=3)
    assert left == pytest.approx((99 + 100) * 0.2)


def test_without_auto_stop_the_figure_is_an_estimate_not_a_bound():
    clock = Clock()
    remaining = RemainingTime(auto_stop=False, clock=clock)
    feed(remaining, clock, range(1, 41), 1.5, total=200)
    assert remaining.text() == "about 4 min left"


def test_nothing_is_left_once_every_plane_has_stopped():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    feed(remaining, clock, range(1, 31), 0.1, groups=3, stopped=1)
    assert remaining.text().startswith("at most")
    feed(remaining, clock, [31], 0.1, groups=3, stopped=3)  # the batch ends at this iteration
    assert remaining.left == 0 and remaining.text() == ""
    # a stack: the batches not started still count
    stack = RemainingTime(clock=clock)
    feed(stack, clock, range(1, 31), 0.1, groups=3, stopped=3, batches=2)
    assert stack.left == pytest.approx(100 * 0.1)
    # without the automatic stop the planes run on after their rules fired
    running_on = RemainingTime(auto_stop=False, clock=clock)
    feed(running_on, clock, range(1, 31), 0.1, groups=3, stopped=3)
    assert running_on.left == pytest.approx(70 * 0.1)


def test_the_shown_text_changes_at_most_once_per_period():
    clock = Clock()
    remaining = RemainingTime(clock=clock, every=1.0)
    feed(remaining, clock, range(1, 11), 0.1)
    first = remaining.text()
    assert first == "at most 9 s left"  # the first figure is shown at once
    feed(remaining, clock, range(11, 15), 0.1)
    assert remaining.text() == first  # 0.4 s later: unchanged
    feed(remaining, clock, range(15, 25), 0.1)
    assert remaining.text() == "at most 8 s left"


def test_events_seen_twice_do_not_break_the_rate():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    feed(remaining, clock, range(1, 21), 0.1)
    remaining.update(event(20))
    remaining.update(event(15))
    assert remaining.rate == pytest.approx(0.1)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.2, "1 s"),
        (45, "45 s"),
        (59.5, "1 min"),
        (61, "1 min 10 s"),
        (130, "2 min 10 s"),
        (3599, "1 h"),
        (3660, "1 h 1 min"),
        (7200, "2 h"),
    ],
)
def test_durations_are_rounded_up(seconds, text):
    assert format_left(seconds) == text


def test_finished_batches_give_a_likely_figure_beside_the_bound():
    clock = Clock()
    remaining = RemainingTime(clock=clock)
    # three planes fitted one after the other, a budget of 1000 each; the first stops at 100
    feed(remaining, clock, range(1, 101), 0.1, total=1000, batch=0, batches=3)
    assert remaining.likely is None  # nothing finished yet: only the bound
    left = feed(remaining, clock, range(1, 11), 0.1, total=1000, batch=1, batches=3)
    assert left == pytest.approx((990 + 1000) * 0.1)  # the bound: every budget in full
    assert remaining.likely == pytest.approx((90 + 100) * 0.1)  # as long as the finished one
    assert remaining.text() == "about 19 s left (at most 3 min 20 s)"
    # past the typical length the current plane is counted as ending now, never below zero
    feed(remaining, clock, range(11, 151), 0.1, total=1000, batch=1, batches=3)
    assert remaining.likely == pytest.approx(100 * 0.1)
    # without the automatic stop every batch runs its budget: no second figure
    plain = RemainingTime(clock=clock, auto_stop=False)
    feed(plain, clock, range(1, 101), 0.1, total=100, batch=0, batches=3)
    feed(plain, clock, range(1, 11), 0.1, total=100, batch=1, batches=3)
    assert plain.likely is None and plain.text().startswith("about ") and "at most" not in plain.text()
