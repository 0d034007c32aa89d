"""Where the automatic stop WOULD have fired, from a run's logged ratio history.

One run with ``auto_stop=False`` and a fixed budget then gives both numbers: the result at
the budget and (replaying :class:`WindowedStopRule` over the logged ratios, at the same
iterations and with the same ``every`` as the solver) the iteration and result of the
automatic stop. The same object works online, fed from a progress callback, so the image at
the stop iteration can be kept as well.
"""

from __future__ import annotations

import torch

from napari_dip_spectral.core.stopping import WindowedStopRule


class StopReplay:
    """Feed log entries in order; ``iteration`` is set when the rule first fires (all planes)."""

    def __init__(self, window: int, epsilon: float, every: int = 1):
        self.rule = WindowedStopRule(window, epsilon, every)
        self.iteration: int | None = None

    def feed(self, entry) -> bool:
        """Record one log entry; True exactly when the rule fires for the first time."""
        if self.iteration is not None:
            return False
        # the solver records the float32 ratios; the log holds them as Python floats (exact)
        ratios = torch.tensor(entry.ratio_all or [entry.ratio], dtype=torch.float32)
        self.rule.record(entry.iteration, ratios)
        fired = self.rule.check(entry.iteration)
        if fired is not None and bool(fired.all()):
            self.iteration = int(entry.iteration)
            return True
        return False


def replay_stop(history, window: int, epsilon: float, every: int = 1) -> int | None:
    """The iteration at which the stop rule fires over ``history`` (logged every ``every``
    iterations, the run's ``metrics_every``), or None if it never does."""
    replay = StopReplay(window, epsilon, every)
    for entry in history:
        if replay.feed(entry):
            break
    return replay.iteration
