"""Building blocks of the decoder: Lipschitz-controlled convolution, Gaussian-controlled
upsampling and mean-only normalisation (docs/method.md sections 2-4).

Every layer supports ``groups``: ``G`` independent networks evaluated as one grouped
computation (used to restore many planes of a stack at once). A grouped weight of shape
``(G * out, in, k, k)`` holds ``G`` independent kernels; the Lipschitz bound is applied to
each group's ``out x (in * k * k)`` matrix separately.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from .config import POWER_BLOCK, POWER_EXACT_FIRST
from .convolution import Conv2d

SIGMA_ESTIMATORS = ("exact", "power")


class LipschitzBound(nn.Module):
    """Parametrization ``W = W_bar / max(1, sigma_max(W_bar) / lipschitz)``.

    ``sigma_max`` is the largest singular value of each group's weight reshaped to
    ``out x (in * k * k)``. It is computed without gradient (a constant during
    back-propagation), as in the authors' code: this is a hard clip of the spectral norm,
    not a Miyato-style normalisation.

    Estimators:

    * ``"exact"``: ``torch.linalg.svdvals`` at every call (the authors' behaviour).
    * ``"power"``: ``power_steps`` warm-started steps of subspace iteration on ``block``
      left vectors per training call (Rayleigh-Ritz estimate on their span), with an exact
      refresh (the top eigenpairs of the ``out x out`` Gram matrix) every ``refresh_every``
      calls, and at each of the first ``exact_first`` calls (``POWER_EXACT_FIRST``: Adam's
      first steps move the weights fastest relative to their size). A power estimate is a
      lower bound of sigma, and one warm vector lags a top singular value that has close
      neighbours and is changing, so the clip would be too weak in the first steps; a block
      of vectors and the exact start keep it close (their accuracy is measured by
      ``benchmarks/estimators.py --accuracy``, docs/speed.md).

    Estimator state only advances while gradients are enabled in training mode, so reading
    ``conv.weight`` for inspection does not change the optimisation.
    """

    def __init__(
        self,
        lipschitz: float,
        groups: int = 1,
        estimator: str = "power",
        refresh_every: int = 10,
        power_steps: int = 2,
        block: int | None = None,
        exact_first: int | None = None,
    ):
        super().__init__()
        if not lipschitz > 0:
            raise ValueError(f"lipschitz must be > 0, got {lipschitz!r}")
        if estimator not in SIGMA_ESTIMATORS:
            raise ValueError(f"sigma_estimator must be one of {SIGMA_ESTIMATORS}, got {estimator!r}")
        self.lipschitz = float(lipschitz)
        self.groups = int(groups)
        self.estimator = estimator
        self.refresh_every = int(refresh_every)
        self.power_steps = int(power_steps)
        self.block = int(block or POWER_BLOCK)
        self.exact_first = int(POWER_EXACT_FIRST if exact_first is None else exact_first)
        self.calls = 0
        self.register_buffer("u", torch.empty(0), persistent=False)  # left singular vectors
        self.register_buffer("sigma", torch.empty(0), persistent=False)

    def reset(self) -> None:
        """Forget the estimator state: the next call computes sigma exactly."""
        self.calls = 0
        self.u, self.sigma = (torch.empty(0, device=self.sigma.device) for _ in range(2))

    def _load_from_state_dict(self, *args, **kwargs):
        # new weights make the warm-start vectors stale
        super()._load_from_state_dict(*args, **kwargs)
        self.reset()

    def _matrices(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.reshape(self.groups, weight.shape[0] // self.groups, -1)

    @torch.no_grad()
    def _exact_refresh(self, m: torch.Tensor) -> None:
        if self.estimator == "exact":
            self.sigma = torch.linalg.svdvals(m)[:, 0]
            return
        # sigma^2 and u from the small (out x out) Gram matrix: exact to ~1e-6 relative and
        # several times cheaper than an SVD of the (out x in*k*k) matrix
        gram = torch.bmm(m, m.transpose(1, 2)).double()
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        self.u = eigenvectors[:, :, -self.block :].to(m.dtype)  # (groups, out, block)
        self.sigma = eigenvalues[:, -1].clamp(min=0).sqrt().to(m.dtype)

    @torch.no_grad()
    def _power_steps(self, m: torch.Tensor) -> None:
        """``power_steps`` multiplications of the kept left vectors by ``m m^T``, then the
        Rayleigh-Ritz estimate of sigma on their span. With ``block`` > 1 vectors (subspace
        iteration) the estimate follows a top singular value that is close to the next ones
        and changing, where one vector lags."""
        u = self.u
        if self.block == 1:
            for _ in range(self.power_steps):
                v = F.normalize(torch.bmm(m.transpose(1, 2), u), dim=1)
                mv = torch.bmm(m, v)
                self.sigma = mv.norm(dim=(1, 2))  # ||M v||, v = M^T u / ||M^T u||
                u = F.normalize(mv, dim=1)
            self.u = u
            return
        for _ in range(self.power_steps):
            u = torch.linalg.qr(torch.bmm(m, torch.bmm(m.transpose(1, 2), u))).Q
        v = torch.bmm(m.transpose(1, 2), u)  # (groups, in, block)
        ritz = torch.linalg.eigvalsh(torch.bmm(v.transpose(1, 2), v))[:, -1]
        self.u = u
        self.sigma = ritz.clamp(min=0).sqrt()

    def estimate_sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """Current estimate of each group's largest singular value, shape ``(groups,)``."""
        m = self._matrices(weight.detach())
        advancing = torch.is_grad_enabled() and self.training
        if self.sigma.numel() == 0 or (self.sigma.device != m.device):
            self._exact_refresh(m)
        elif advancing:
            if self.estimator == "exact" or self.calls < self.exact_first or self.calls % self.refresh_every == 0:
                self._exact_refresh(m)
            else:
                self._power_steps(m)
        if advancing:
            self.calls += 1
        return self.sigma

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if _autocast_on(weight.device.type):
            # under bf16 autocast (precision="bf16") the bound is still computed in fp32: a
            # spectral norm rounded to bf16 would let the bound slip
            with torch.autocast(weight.device.type, enabled=False):
                return self._bound(weight)
        return self._bound(weight)

    def _bound(self, weight: torch.Tensor) -> torch.Tensor:
        sigma = self.estimate_sigma(weight)
        scale = torch.clamp(sigma / self.lipschitz, min=1.0)
        scale = scale.repeat_interleave(weight.shape[0] // self.groups)
        return weight / scale.view(-1, *([1] * (weight.dim() - 1)))


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch before 2.4 takes no device type
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


def lipschitz_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    groups: int = 1,
    lipschitz: float | None = None,
    sigma_estimator: str = "power",
    block: int | None = None,
    exact_first: int | None = None,
    fast_cpu_backward: bool = True,
) -> nn.Conv2d:
    """A grouped conv (reflection padding, kaiming-uniform init; :class:`.convolution.Conv2d`,
    whose CPU backward is faster unless ``fast_cpu_backward`` is False) with an optional
    Lipschitz bound registered as a parametrization of its weight."""
    conv = Conv2d(
        in_channels * groups,
        out_channels * groups,
        kernel_size,
        padding=kernel_size // 2,
        padding_mode="reflect",
        groups=groups,
        fast_cpu_backward=fast_cpu_backward,
    )
    return bounded(conv, groups, lipschitz, sigma_estimator, block=block, exact_first=exact_first)


def bounded(
    conv: nn.Module,
    groups: int,
    lipschitz: float | None,
    sigma_estimator: str,
    *,
    block: int | None = None,
    exact_first: int | None = None,
):
    """``conv`` (2-D or 3-D) with kaiming-uniform weights and, unless ``lipschitz`` is None,
    the Lipschitz bound registered as a parametrization of its weight (``block`` and
    ``exact_first``: the power estimator's, None for the defaults)."""
    nn.init.kaiming_uniform_(conv.weight, a=0, mode="fan_in")
    if lipschitz is not None:
        bound = LipschitzBound(lipschitz, groups, sigma_estimator, block=block, exact_first=exact_first)
        parametrize.register_parametrization(conv, "weight", bound)
        bound.reset()  # registration evaluates the parametrization once; start afresh
    return conv


def gaussian_kernel_1d(sigma: float) -> torch.Tensor:
    """The 5 taps of docs/method.md section 4: offsets (-1, -1/2, 0, 1/2, 1) in low-resolution
    pixel units, Gaussian weights, normalised so that the 2-D outer product sums to 1."""
    offsets = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=torch.float64)
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return (taps / taps.sum()).float()


class GaussianUpsample(nn.Module):
    """Gaussian-controlled x2 upsampling: a fixed depthwise transposed convolution
    (kernel 5, stride 2, padding 2, output padding 1) with a normalised Gaussian kernel.

    The kernel is the outer product of :func:`gaussian_kernel_1d` with itself. A separable
    form (two 1-D passes) computes the same map but is slower than this dense 5x5 form on the
    CPU, where two memory passes cost more than 25 taps (docs/speed.md, "Levers (CPU)"), so the
    dense form is used. ``gain``
    multiplies the output: the paper's kernel sums to 1 and so passes a smooth signal at
    about 1/4 amplitude; ``gain=4`` restores amplitude (not the paper's behaviour, off by
    default).
    """

    def __init__(self, channels: int, sigma: float, gain: float = 1.0):
        super().__init__()
        taps = gaussian_kernel_1d(sigma)
        self.channels = channels
        kernel = torch.outer(taps, taps) * gain
        self.register_buffer("kernel", kernel.expand(channels, 1, 5, 5).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.kernel, stride=2, padding=2, output_padding=1, groups=self.channels)


class _MeanOnlyNormFunction(torch.autograd.Function):
    """``x - mean_hw(x) + bias`` (mean over every axis after the channels: H, W or D, H, W)
    with its gradient written out: ``g - mean_hw(g)`` for ``x`` and ``sum(g)`` for the bias.
    Autograd's own graph for the expression takes two more passes over the activations each way
    (a negation, a second reduction, an accumulation); nothing is saved for backward, so the
    next layer may work in place."""

    @staticmethod
    def forward(ctx, x, bias):
        space = tuple(range(2, x.dim()))
        return x - (x.mean(dim=space, keepdim=True) - bias.view(1, -1, *(1,) * len(space)))

    @staticmethod
    def backward(ctx, grad):
        space = tuple(range(2, grad.dim()))
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad - grad.mean(dim=space, keepdim=True)
        if ctx.needs_input_grad[1]:
            grad_bias = grad.sum(dim=(0, *space))
        return grad_x, grad_bias


class MeanOnlyNorm(nn.Module):
    """Subtract each channel's spatial (or volume) mean, add a learnable per-channel bias
    (init 0). No variance scaling and no running statistics: train and eval behave the same."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MeanOnlyNormFunction.apply(x, self.bias)
