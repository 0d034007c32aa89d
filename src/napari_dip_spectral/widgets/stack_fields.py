"""The fields a stack layer adds to a task widget: which planes, the axes, the batch size,
warm starts and (Denoise) the stack prior."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, LineEdit, SpinBox

from ..engine.layout import STACK_PRIORS

STACK_PRIOR_CHOICES = ("auto", *STACK_PRIORS)
DISPLAYED, ALL_PLANES = "displayed plane only", "all planes"


class StackFields(Container):
    """Shown only for a layer with more than two dimensions."""

    def __init__(self, task: str):
        self.planes = ComboBox(
            label="planes",
            choices=[DISPLAYED, ALL_PLANES],
            value=DISPLAYED,
            tooltip=(
                "For a stack: restore only the plane shown in the viewer, or every plane (one "
                "output layer with the input's shape; planes are fitted in batches)."
            ),
        )
        self.axes = LineEdit(
            label="axes",
            tooltip=(
                "One letter per dimension of the layer: T (time), Z (depth), C (channel), "
                "S (RGB samples), Y, X; e.g. ZYX, TCYX. Filled in from the layer's axis labels, "
                "else guessed from its shape. Used when restoring all planes."
            ),
        )
        self.batch_size = SpinBox(
            label="planes per batch",
            min=0,
            max=1024,
            value=0,
            tooltip=(
                "All planes: how many planes are fitted together as one grouped network "
                "(0 = as many as memory allows). Results depend on it (keep it to reproduce a run)."
            ),
        )
        self.warm_start = ComboBox(
            label="warm start",
            choices=[("auto", None), ("on", True), ("off", False)],
            value=None,
            tooltip=(
                "All planes: fit one plane at a time, each starting from the network fitted to "
                "the plane before it; neighbouring planes that look alike then need fewer "
                "iterations. 'auto': along Z or T when denoising on the CPU (docs/stacks.md)."
            ),
        )
        stack_widgets = [self.planes, self.axes, self.batch_size, self.warm_start]
        self.stack_prior = None
        if task == "denoise":
            self.stack_prior = ComboBox(
                label="stack prior",
                choices=STACK_PRIOR_CHOICES,
                value="auto",
                tooltip=(
                    "All planes: 'volume' fits each Z stack with one 3-D decoder, so every plane "
                    "sees its neighbours; 'joint' fits the Z planes as the channels of one 2-D "
                    "decoder; 'planes' fits each plane on its own; 'auto', for a Z axis of at "
                    "least 3 planes, uses 'joint' with 4 averaged decoders on photon-noise data, "
                    "else 'volume'."
                ),
            )
            stack_widgets.append(self.stack_prior)
        super().__init__(widgets=stack_widgets, labels=True)
