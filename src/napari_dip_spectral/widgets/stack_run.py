"""What an all-planes run shows besides its result: the live preview stack and the account
of which planes finished.

The preview has the output's shape; every plane is NaN until a preview of it arrives. It
shows the planes of the batch being fitted at their latest preview iteration; planes of
earlier batches keep their last preview. Tiled planes (each fitted in pieces) get no preview.
"""

from __future__ import annotations

import numpy as np

from ..engine.events import RunEvent
from ..engine.job import RestoreJob
from ..engine.result import RestoreResult


class StackPreview:
    """The preview array of ``job``'s output (float32, NaN where no preview arrived yet)."""

    def __init__(self, job: RestoreJob):
        self.job = job
        self.data = np.full(job.output_shape, np.nan, dtype=np.float32)

    def update(self, event: RunEvent) -> bool:
        """Write the batch's preview planes (in the input's intensity range); ``False`` when
        the event has no preview or the planes are tiled."""
        preview = event.event.preview
        if preview is None or event.tiles != 1:
            return False
        for group, plane in enumerate(event.planes):
            values = self.job.normalizations[plane].inverse(preview[group])
            if self.job.model is not None:
                values = self.job.model.inverse_transform(values)
            self._write(plane, values)
        return True

    def _write(self, plane: int, values: np.ndarray) -> None:
        """Put ``values`` (joint channels or 1, Y, X) at ``plane``'s place in the output."""
        layout = self.job.layout
        position = dict(zip(layout.loop_axes, np.unravel_index(plane, layout.loop_shape)))
        index = tuple(int(position[a]) if a in position else slice(None) for a in layout.axes)
        source = (layout.joint or "") + "YX"
        if layout.joint is None:
            values = values[0]
        target = [a for a in layout.axes if a not in position]
        self.data[index] = np.transpose(values, [source.index(a) for a in target])


def plane_account(result: RestoreResult, interrupted: tuple[int, ...]) -> dict[str, list[int]]:
    """Which planes of a stack ``result`` finished, which were ``interrupted`` (the batch a
    cancel stopped: they hold its last iterate) and which never started (NaN)."""
    reasons = result.plane_stop_reasons
    histories = result.plane_histories
    cut = set(interrupted) if not result.finished else set()
    account: dict[str, list[int]] = {"finished": [], "interrupted": [], "not_started": [], "constant": []}
    for plane, (reason, history) in enumerate(zip(reasons, histories)):
        if reason == "constant":
            account["constant"].append(plane)
        elif plane in cut:
            account["interrupted"].append(plane)
        elif history:
            account["finished"].append(plane)
        else:
            account["not_started"].append(plane)
    return account


def plane_list(planes: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for plane in planes:
        if runs and plane == runs[-1][-1] + 1:
            runs[-1].append(plane)
        else:
            runs.append([plane])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs) or "none"
