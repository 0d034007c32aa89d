"""The parameter fields of a task widget: magicgui widgets filled from the task's defaults.

Building the form imports torch (to list the devices and upsamplers this machine offers);
importing this module does not.
"""

from __future__ import annotations

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, SpinBox

from ..core.config import PRECISIONS, PROFILES, UPSAMPLERS, task_defaults
from .data_fields import DataFields

TASK_TITLES = {
    "denoise": "Denoise",
    "deblock": "JPEG deblock",
    "inpaint": "Inpaint",
    "super_resolution": "Super-resolution",
    "enhance": "Enhance details",
}


class ParameterForm(Container):
    """Basic and advanced solver parameters of one task, with a tooltip on every field.

    ``options()`` returns the keyword arguments for :class:`~napari_dip_spectral.engine.job.RestoreJob`
    (solver options plus ``profile``, ``factor`` and ``gain`` where the task has them).
    """

    def __init__(self, task: str):
        from ..core.devices import available_devices, describe_device

        super().__init__(labels=True)
        self.task = task
        self.iterations = SpinBox(
            label="iterations",
            min=1,
            max=1_000_000,
            tooltip=("Most optimisation steps. With automatic stop on, the run usually ends earlier."),
        )
        self.lipschitz = FloatSpinBox(
            label="Lipschitz λ (0 = off)",
            min=0.0,
            max=20.0,
            step=0.05,
            tooltip=(
                "Bound on each layer's Lipschitz constant: smaller values keep the network on low "
                "frequencies longer (less noise fitted, smoother result). 0 = no control (plain DIP). "
                "Left at the default, the default profile lowers it for images under 256 px "
                "(1.4 -> 1.2 at 64 px); a value you type is used as given."
            ),
        )
        self.upsample = ComboBox(
            label="upsampler",
            choices=UPSAMPLERS,
            tooltip=(
                "How the decoder doubles resolution between levels. 'gaussian' damps high "
                "frequencies most; 'bilinear' is the authors' released setting."
            ),
        )
        self.auto_stop = CheckBox(
            text="automatic stop",
            tooltip=(
                "Stop automatically instead of running every iteration: for denoising when the "
                "result fits the image to its estimated noise level, otherwise when the "
                "blur/sharpness ratio stops changing (the paper's rule; 'paper' profile: always)."
            ),
        )
        self.seed = SpinBox(
            label="seed",
            min=0,
            max=2**31 - 1,
            tooltip=(
                "Seed of the network's random initialisation and input: the same seed and settings "
                "give the same result."
            ),
        )
        self.device = ComboBox(
            label="device",
            choices=available_devices(),
            tooltip=("Where to compute: 'auto' picks CUDA, then Apple MPS, then the CPU."),
        )
        self.device_info = Label(label="runs on", value=describe_device(self.device.value))
        self.device.changed.connect(lambda name: setattr(self.device_info, "value", describe_device(name)))
        basic = [
            self.iterations,
            self.lipschitz,
            self.upsample,
            self.auto_stop,
            self.seed,
            self.device,
            self.device_info,
        ]
        self.factor = None
        if task == "super_resolution":
            self.factor = ComboBox(
                label="factor",
                choices=[2, 4, 8],
                value=4,
                tooltip=(
                    "Upscaling factor: the result has factor x more pixels along Y and X, and its "
                    "pixel size (scale) is divided by the factor."
                ),
            )
            basic.insert(0, self.factor)
        self.gain = None
        if task == "enhance":
            self.gain = FloatSpinBox(
                label="detail gain",
                min=0.05,
                max=10.0,
                step=0.05,
                value=1.0,
                tooltip=(
                    "How strongly the details the network did not fit are added back (result = image + gain x detail)."
                ),
            )
            basic.insert(0, self.gain)

        self.learning_rate = FloatSpinBox(
            label="learning rate", min=1e-5, max=1.0, step=1e-5, tooltip="Adam step size."
        )
        self.channels = SpinBox(
            label="channels",
            min=1,
            max=1024,
            tooltip=(
                "Feature channels per decoder layer: fewer is faster and uses less memory. Left "
                "at the default, a Z stack restored as one volume, photon-noise (Anscombe) "
                "denoising and grey or colour denoising on a CPU use 64."
            ),
        )
        self.ensemble = SpinBox(
            label="ensemble",
            min=1,
            max=64,
            tooltip=(
                "Networks fitted to each plane from different random starts, their results "
                "averaged: a cleaner result on photon-noise data, at about that many times the "
                "work."
            ),
        )
        self.metrics_every = SpinBox(
            label="metrics every",
            min=1,
            max=100_000,
            tooltip=(
                "Compute FBC, stop ratio and PSNR every N iterations (the stop rule is checked "
                "then too). Larger is faster."
            ),
        )
        self.preview_every = SpinBox(
            label="preview every",
            min=0,
            max=100_000,
            value=50,
            tooltip=("Update the live preview layer every N iterations (0 = no preview)."),
        )
        self.profile = ComboBox(
            label="profile",
            choices=PROFILES,
            value="default",
            tooltip=(
                "'default': this plugin's tuned settings; 'paper': the authors' released "
                "configuration. Changing it reloads every parameter's default."
            ),
        )
        self.precision = ComboBox(
            label="precision",
            choices=PRECISIONS,
            value="auto",
            tooltip=(
                "'bf16': the network computes in bfloat16, faster on processors that do so natively "
                "(CPUs with AVX-512 BF16 or AMX, recent GPUs) and slower elsewhere. 'auto': bf16 on "
                "such a CPU for a network of 64 channels or more on images of 128 x 128 pixels or "
                "more, else fp32. The noise estimate, stop rule and result stay in fp32."
            ),
        )
        advanced = [
            self.profile,
            self.learning_rate,
            self.channels,
            self.ensemble,
            self.precision,
            self.metrics_every,
            self.preview_every,
        ]
        self.data = DataFields(task)
        self.noise_model = self.data.noise_model
        advanced.append(self.data)
        self.advanced = Container(widgets=advanced, labels=True)
        self.show_advanced = CheckBox(
            text="advanced settings",
            value=False,
            tooltip=(
                "Show the profile, noise model, normalisation, tile size, learning rate, network "
                "width and reporting settings."
            ),
        )
        self.advanced.visible = False
        self.show_advanced.changed.connect(lambda shown: setattr(self.advanced, "visible", shown))
        self.profile.changed.connect(lambda _: self.load_defaults())
        self.extend([Label(value=f"<b>{TASK_TITLES[task]}</b> parameters"), *basic, self.show_advanced, self.advanced])
        self.load_defaults()

    def load_defaults(self) -> None:
        """Fill every solver field from ``task_defaults(task, profile)``."""
        config = task_defaults(self.task, self.profile.value)
        self.iterations.value = config.iterations
        self.lipschitz.value = config.lipschitz or 0.0
        self.upsample.value = config.upsample
        self.auto_stop.value = config.auto_stop
        self.seed.value = config.seed
        self.learning_rate.value = config.learning_rate
        self.channels.value = config.channels
        self.ensemble.value = config.ensemble
        self.metrics_every.value = config.metrics_every
        self.precision.value = config.precision

    def options(self) -> dict:
        """Keyword arguments for ``RestoreJob`` from the current field values."""
        options = dict(
            profile=self.profile.value,
            iterations=int(self.iterations.value),
            upsample=self.upsample.value,
            auto_stop=bool(self.auto_stop.value),
            seed=int(self.seed.value),
            device=self.device.value,
            learning_rate=float(self.learning_rate.value),
            metrics_every=int(self.metrics_every.value),
            preview_every=int(self.preview_every.value),
            precision=self.precision.value,
        )
        defaults = task_defaults(self.task, self.profile.value)
        # the profile's own lambda is left to the profile (the default profile scales it for
        # images under 256 px); a changed value is used exactly as typed
        if self.lipschitz.value != (defaults.lipschitz or 0.0):
            options["lipschitz"] = self.lipschitz.value if self.lipschitz.value > 0 else float("inf")
        # the width is left to the engine unless changed (a Z stack's volume decoder is
        # narrower than the plane decoder); a changed value is used as typed
        if self.channels.value != defaults.channels:
            options["channels"] = int(self.channels.value)
        # likewise the ensemble: a photon-noise Z stack averages several decoders unless set
        if self.ensemble.value != defaults.ensemble:
            options["ensemble"] = int(self.ensemble.value)
        options.update(self.data.options())
        if self.factor is not None:
            options["factor"] = int(self.factor.value)
        if self.gain is not None:
            options["gain"] = float(self.gain.value)
        return options
