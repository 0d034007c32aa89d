"""The advanced fields about the data rather than the network: a known camera noise model,
the intensity normalisation, per-stack or per-plane ranges and the tile size, as
``restore()`` offers them."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, FloatSpinBox, SpinBox

NOISE_MODELS = ("estimated", "known parameters", "off")
NORMALIZE = ("auto", "minmax", "percentile", "dtype")
SHARES = ("auto", "off", "0.1", "0.2", "0.3", "0.5")  # nlm_share: "auto" leaves it to the engine
WIENER = ("auto", "off")  # wiener: "auto" leaves it to the engine (on for denoising, default profile)
HOT_PIXELS = {"auto": None, "replace": True, "keep": False}  # hot_pixels: "auto" leaves it to the engine
LIKELIHOOD = ("auto", "gaussian", "poisson")  # likelihood: "auto" leaves it to the engine


class DataFields(Container):
    """``options()`` gives the keyword arguments of ``RestoreJob`` these fields set."""

    def __init__(self, task: str):
        widgets = []
        self.noise_model = self.nlm_share = self.wiener = self.hot_pixels = self.likelihood = None
        if task == "denoise":
            self.noise_model = ComboBox(
                label="noise model",
                choices=NOISE_MODELS,
                value=NOISE_MODELS[0],
                tooltip=(
                    "'estimated': fit the Poisson-Gaussian noise (gain, dark level, read noise) "
                    "from the image and, where the noise grows with the signal (fluorescence, low "
                    "light), fit in the variance-stabilised (Anscombe) domain. 'known parameters': "
                    "use the camera's gain, offset and read noise given below. 'off': assume "
                    "signal-independent noise. The model used is kept in the result's metadata."
                ),
            )
            self.camera_gain = FloatSpinBox(
                label="camera gain",
                min=1e-4,
                max=1e6,
                step=0.1,
                value=1.0,
                tooltip="Data units (counts) per photo-electron.",
            )
            self.camera_offset = FloatSpinBox(
                label="camera offset",
                min=-1e9,
                max=1e9,
                step=1.0,
                value=0.0,
                tooltip="The dark level in data units (what the camera records with no light).",
            )
            self.read_noise = FloatSpinBox(
                label="read noise",
                min=0.0,
                max=1e9,
                step=0.1,
                value=0.0,
                tooltip="Read-noise standard deviation in data units.",
            )
            self.camera = [self.camera_gain, self.camera_offset, self.read_noise]
            self.nlm_share = ComboBox(
                label="non-local means share",
                choices=SHARES,
                value="auto",
                tooltip=(
                    "Share of non-local means of the same data averaged into the result. 'auto': "
                    "0.3 with the default profile, none with the paper profile; 'off': the "
                    "network's result alone."
                ),
            )
            self.wiener = ComboBox(
                label="Wiener pass",
                choices=WIENER,
                value="auto",
                tooltip=(
                    "Refine the result with a Wiener filter of the data guided by it: in 3-D over a "
                    "Z or T stack fitted as a whole (it uses the correlation between planes), per "
                    "plane otherwise; mixed evenly with a BM3D-like estimate, then all of it once "
                    "more on the mean of the data and that result. 'auto': on with the default "
                    "profile, off with the paper profile; 'off': the result without it."
                ),
            )
            self.hot_pixels = ComboBox(
                label="hot pixels",
                choices=tuple(HOT_PIXELS),
                value="auto",
                tooltip=(
                    "Pixels far brighter than all their neighbours (a camera's hot pixels), replaced "
                    "by their neighbours' median before the noise model is fitted. 'auto': for camera "
                    "counts with photon noise, with the default profile; 'replace': in any data; "
                    "'keep': every pixel as recorded."
                ),
            )
            self.likelihood = ComboBox(
                label="data term",
                choices=LIKELIHOOD,
                value="auto",
                tooltip=(
                    "With a photon noise model: 'poisson' fits the intensity to the counts' Poisson "
                    "likelihood, 'gaussian' the squared error of the variance-stabilised data. "
                    "'auto' leaves it to the default profile."
                ),
            )
            widgets += [self.noise_model, *self.camera, self.hot_pixels, self.likelihood, self.nlm_share, self.wiener]
            self.noise_model.changed.connect(self._noise_model_chosen)
        self.normalize = ComboBox(
            label="normalisation",
            choices=NORMALIZE,
            value="auto",
            tooltip=(
                "How intensities map to [0, 1] for the fit (and back): 'minmax' the data's own "
                "range, 'percentile' its 0.1-99.9 % range, 'dtype' the full range of an integer type; "
                "'auto' is 'minmax', or 'dtype' in the paper profile (the authors divide by 255)."
            ),
        )
        self.normalize_per = ComboBox(
            label="ranges",
            choices=("stack", "plane"),
            value="stack",
            tooltip="All planes: one intensity range for the whole stack, or one per plane.",
        )
        self.tile_size = SpinBox(
            label="tile size",
            min=0,
            max=8192,
            step=16,
            value=0,
            tooltip="Restore planes in square tiles of this side (0 = only when memory requires).",
        )
        widgets += [self.normalize, self.normalize_per, self.tile_size]
        super().__init__(widgets=widgets, labels=True)
        if self.noise_model is not None:
            self._noise_model_chosen(self.noise_model.value)

    def _noise_model_chosen(self, choice: str) -> None:
        for field in self.camera:
            field.visible = choice == "known parameters"

    def options(self) -> dict:
        options = dict(normalize=self.normalize.value, normalize_per=self.normalize_per.value)
        if self.tile_size.value:
            options["tile_size"] = int(self.tile_size.value)
        if self.noise_model is not None:
            choice = self.noise_model.value
            if choice == "known parameters":
                options["anscombe"] = {
                    "gain": float(self.camera_gain.value),
                    "offset": float(self.camera_offset.value),
                    "read_noise": float(self.read_noise.value),
                }
            else:
                options["anscombe"] = "auto" if choice == "estimated" else False
        if self.nlm_share is not None and self.nlm_share.value != "auto":
            options["nlm_share"] = share_value(self.nlm_share.value)
        if self.wiener is not None and self.wiener.value == "off":
            options["wiener"] = False
        if self.likelihood is not None and self.likelihood.value != "auto":
            options["likelihood"] = self.likelihood.value
        if self.hot_pixels is not None and self.hot_pixels.value != "auto":
            options["hot_pixels"] = HOT_PIXELS[self.hot_pixels.value]
        return options


def share_value(choice: str) -> float:
    return 0.0 if choice == "off" else float(choice)


def share_choice(share: float) -> str:
    """The field's choice for a preset's ``nlm_share``; ValueError if it offers none."""
    choice = "off" if share == 0 else f"{share:g}"
    if choice not in SHARES:
        raise ValueError(f"nlm_share {share!r} is not offered here")
    return choice


def wiener_choice(wiener: bool) -> str:
    """The field's choice for a preset's ``wiener``: "auto" runs it wherever True would."""
    return "auto" if wiener else "off"


def hot_pixels_choice(hot_pixels: bool) -> str:
    """The field's choice for a preset's ``hot_pixels``."""
    return next(choice for choice, value in HOT_PIXELS.items() if value is bool(hot_pixels))


# a preset's value -> the choice of the field that shows it, where the two differ
PRESET_CHOICES = {"nlm_share": share_choice, "wiener": wiener_choice, "hot_pixels": hot_pixels_choice}
