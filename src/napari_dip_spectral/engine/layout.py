"""Axes and layout of an nD image: which axes are looped over as planes, which channel axis
is fitted jointly, and whether a Z stack is fitted as one volume (``stack_prior``)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

AXIS_LETTERS = "TZCSYX"
CHANNEL_MODES = ("auto", "independent", "joint")
STACK_PRIORS = ("planes", "volume", "joint")
# "auto" fits a Z stack of at least this many planes as one volume (denoising).
VOLUME_MIN_PLANES = 3


def guess_axes(shape: tuple[int, ...]) -> str:
    """A guess for ``shape``: ``YX``; ``YXC`` when the last axis has 3 values (RGB);
    otherwise leading axes from ``TZC``... (3-D: ``ZYX``, 4-D: ``TZYX``, 5-D: ``TZCYX``)."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions, got shape {tuple(shape)}")
    rgb = ndim >= 3 and shape[-1] == 3
    lead = ndim - 2 - rgb
    leading = {0: "", 1: "Z", 2: "TZ", 3: "TZC"}
    if lead not in leading:
        raise ValueError(f"cannot guess the axes of a {ndim}-D image {tuple(shape)}; pass axes=")
    return leading[lead] + "YX" + ("C" if rgb else "")


def parse_axes(axes: str | None, shape: tuple[int, ...]) -> str:
    """Validated upper-case axes for ``shape``; a guess (with a warning) when ``axes`` is
    None and the image has more than 2 dimensions."""
    if axes is None:
        guess = guess_axes(shape)
        if len(shape) > 2:
            warnings.warn(
                f"axes not given for an image of shape {tuple(shape)}: assuming "
                f"axes={guess!r}; pass axes= to say otherwise",
                UserWarning,
                stacklevel=3,
            )
        return guess
    if not isinstance(axes, str):
        raise ValueError(f"axes must be a string such as 'ZYX', got {axes!r}")
    axes = axes.upper()
    bad = set(axes) - set(AXIS_LETTERS)
    if bad:
        raise ValueError(f"axes {axes!r} has unknown letters {sorted(bad)}; use {AXIS_LETTERS}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} repeats a letter")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain Y and X")
    if "C" in axes and "S" in axes:
        raise ValueError(f"axes {axes!r} has both C and S: give one channel axis")
    if len(axes) != len(shape):
        raise ValueError(
            f"axes {axes!r} has {len(axes)} letters but the image has {len(shape)} dimensions {tuple(shape)}"
        )
    return axes


def _after_yx(axes: str, letter: str) -> bool:
    """Whether ``letter`` follows Y and X, where an RGB image keeps its samples."""
    return axes.endswith(("YX" + letter, "XY" + letter))


def joint_axis(axes: str, shape: tuple[int, ...], channel_mode: str) -> str | None:
    """The channel axis fitted jointly (as network channels), or None."""
    if channel_mode not in CHANNEL_MODES:
        raise ValueError(f"channel_mode must be one of {CHANNEL_MODES}, got {channel_mode!r}")
    letter = "S" if "S" in axes else "C" if "C" in axes else None
    if letter is None or channel_mode == "independent":
        return None
    if channel_mode == "joint":
        return letter
    return letter if letter == "S" or (_after_yx(axes, letter) and shape[-1] == 3) else None


@dataclass(frozen=True)
class Layout:
    """How an array with ``axes`` maps to planes ``(n, c, Y, X)``: the other ("loop") axes
    in input order form ``n``; the joint channel axis (if any) is ``c``."""

    axes: str
    shape: tuple[int, ...]
    joint: str | None
    decoder: str = "plane"  # "volume": each unit is a (Z or T, Y, X) volume for the 3-D decoder

    @property
    def volume(self) -> bool:
        """Whether each unit is a (Z or T, Y, X) volume for the 3-D decoder."""
        return self.decoder == "volume"

    @property
    def whole_stack(self) -> bool:
        """Whether each unit is a whole Z (or T) stack: a volume, or its planes as joint channels."""
        return self.joint in ("Z", "T")

    @property
    def colour(self) -> bool:
        """Whether each unit is a colour plane: three samples fitted jointly, on an ``S``
        axis or a ``C`` axis after Y and X (RGB). Three fluorescence channels on a leading
        ``C`` axis are separate stains, not colours (refinement/refine.py, refinement/opponent.py)."""
        if self.channels != 3:
            return False
        return self.joint == "S" or (self.joint == "C" and _after_yx(self.axes, "C"))

    @property
    def loop_axes(self) -> str:
        return "".join(a for a in self.axes if a not in ("Y", "X", self.joint))

    @property
    def order(self) -> tuple[int, ...]:
        names = self.loop_axes + (self.joint or "") + "YX"
        return tuple(self.axes.index(a) for a in names)

    @property
    def spatial(self) -> tuple[int, int]:
        return self.shape[self.axes.index("Y")], self.shape[self.axes.index("X")]

    @property
    def channels(self) -> int:
        return self.shape[self.axes.index(self.joint)] if self.joint else 1

    @property
    def loop_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[self.axes.index(a)] for a in self.loop_axes)

    @property
    def n_planes(self) -> int:
        return math.prod(self.loop_shape)

    def to_planes(self, arr: np.ndarray) -> np.ndarray:
        """``(n, c, Y, X)`` view or copy of an array shaped like the input (Y, X may differ)."""
        moved = np.transpose(arr, self.order)
        return moved.reshape((self.n_planes, self.channels) + moved.shape[-2:])

    def from_planes(self, planes: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_planes` (the planes' Y, X sizes are kept)."""
        moved = planes.reshape(self.loop_shape + ((self.channels,) if self.joint else ()) + planes.shape[-2:])
        return np.transpose(moved, np.argsort(self.order))

    def plane_values(self, values: np.ndarray) -> np.ndarray:
        """Per-plane values from an array broadcastable to the input with size 1 along
        Y, X and the joint axis (e.g. per-channel ranges)."""
        small = tuple(1 if a in ("Y", "X", self.joint) else s for a, s in zip(self.axes, self.shape))
        moved = np.transpose(np.broadcast_to(np.asarray(values), small), self.order)
        return moved.reshape(self.n_planes, -1)[:, 0]


def make_layout(
    image_shape: tuple[int, ...], axes: str | None, channel_mode: str = "auto", stack_prior: str = "planes"
) -> Layout:
    """The layout of an image. ``stack_prior="volume"`` makes each (Z, Y, X) volume one unit
    (the Z planes become the channels of one 3-D decoder, core/volume.py); without a Z axis,
    each (T, Y, X) time series. ``stack_prior="joint"``: the same units, the Z (or T) planes
    fitted as the output channels of one 2-D decoder."""
    shape = tuple(int(s) for s in image_shape)
    parsed = parse_axes(axes, shape)
    if stack_prior not in STACK_PRIORS:
        raise ValueError(f"stack_prior must be 'auto' or one of {STACK_PRIORS}, got {stack_prior!r}")
    joint = joint_axis(parsed, shape, channel_mode)
    if stack_prior in ("volume", "joint"):
        depth = next((a for a in "ZT" if a in parsed), None)
        if depth is None:
            raise ValueError(f"stack_prior={stack_prior!r} needs a Z or T axis; axes are {parsed!r}")
        if joint is not None:
            raise ValueError(
                f"stack_prior={stack_prior!r} fits the {depth} planes jointly; fit the "
                "channels independently (channel_mode='independent')"
            )
        return Layout(parsed, shape, depth, "volume" if stack_prior == "volume" else "plane")
    return Layout(parsed, shape, joint)


def stack_layout(image_shape, axes, channel_mode: str, stack_prior: str, task: str, profile: str) -> Layout:
    """The layout a job uses. ``stack_prior="auto"``: denoising with the default profile fits
    a stack with a Z axis of at least three planes (and no jointly fitted channels) as one
    volume per (T, C) index (core/volume.py); everything else plane by plane."""
    if stack_prior == "auto":
        layout = make_layout(image_shape, axes, channel_mode)
        z = layout.shape[layout.axes.index("Z")] if "Z" in layout.axes else 0
        volume = task == "denoise" and profile == "default" and layout.joint is None and z >= VOLUME_MIN_PLANES
        return make_layout(image_shape, layout.axes, channel_mode, "volume") if volume else layout
    return make_layout(image_shape, axes, channel_mode, stack_prior)


def photon_stack(layout: Layout) -> Layout:
    """``stack_prior="auto"`` for a Z stack with photon noise (a noise model in use): the Z
    planes are the output channels of one 2-D decoder instead of a 3-D one (with several
    such decoders averaged, noise/noise_fit.py ``photon_options``). On the fluorescence stacks of
    the benchmark (8 and 31 planes, 5-100 photons) this was as good as the volume decoder or
    better, in a fraction of its time (docs/beyond_the_paper.md section 9)."""
    return replace(layout, decoder="plane")
