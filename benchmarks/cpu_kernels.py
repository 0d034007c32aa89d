"""CPU kernel choices of the decoder, each measured side by side with the alternative.

    OMP_NUM_THREADS=1 python -m benchmarks.cpu_kernels            # ~4 minutes on 2 cores
    OMP_NUM_THREADS=1 python -m benchmarks.cpu_kernels --sections network --sizes 64

Sections (markdown tables):

* ``pieces``: one 128-channel 3x3 layer at 128 px: torch's ``convolution_backward`` for the
  weight gradient against the forward convolution ``core.convolution`` uses (channels and
  batch swapped), and for the input gradient against ``conv_transpose2d`` (an alternative
  that was tried; core keeps torch's kernel for the input gradient), with max differences.
* ``layers``: forward+backward of one reflection-padded 3x3 layer, torch's path against
  ``core.convolution.Conv2d``'s, over widths and sizes (where the fast path pays; it is
  gated by ``FAST_MIN_INPUT_VALUES``).
* ``network``: whole iterations of the default decoder (128 channels, Adam step included),
  alternating between two otherwise identical set-ups, for each choice: the CPU conv backward
  (``SolverConfig.fast_cpu_backward`` on/off), the mean-only norm's written-out gradient with the in-place
  LeakyReLU and no conv bias before the norm (against the plain expression, out-of-place
  activation and the bias), and fused Adam (against the per-parameter loop).
* ``rounding``: 13 Adam steps of the decoder with torch's and with core's conv backward,
  next to a copy whose weights differ by 1e-6 (relative): Adam's first steps magnify rounding,
  so "same sums, other kernels" shows up as a trajectory difference of that size.

Times are medians over alternating repetitions, so a shared machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import copy
import time
import types

import torch
from torch.nn import functional as F

from napari_dip_spectral.core import convolution
from napari_dip_spectral.core.config import task_defaults
from napari_dip_spectral.core.layers import MeanOnlyNorm
from napari_dip_spectral.core.solver import build_network, make_optimiser

from .common import alternate, table


def section_pieces(repeats: int) -> None:
    torch.manual_seed(0)
    c, s = 128, 128
    x = torch.randn(1, c, s + 2, s + 2)
    w = torch.randn(c, c, 3, 3) * 0.03
    grad = torch.randn(1, c, s, s)

    def torch_backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            grad, x, w, [c], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
        )

    def input_grad():
        return F.conv_transpose2d(grad, w)

    def weight_grad():
        return F.conv2d(x.transpose(0, 1), grad.transpose(0, 1)).transpose(0, 1)

    t = alternate(
        [torch_backward([True, False, False]), input_grad, torch_backward([False, True, False]), weight_grad], repeats
    )
    ref = torch_backward([True, True, False])()
    d_in = float((input_grad() - ref[0]).abs().max())
    d_w = float((weight_grad() - ref[1]).abs().max() / ref[1].abs().max())
    table(
        f"One {c}-channel 3x3 layer at {s} px, {torch.get_num_threads()} thread(s): backward pieces (ms, median)",
        ["gradient", "torch convolution_backward", "alternative", "speed-up", "max difference"],
        [
            [
                "input (alternative conv_transpose2d: tried, not used)",
                f"{t[0] * 1e3:.1f}",
                f"{t[1] * 1e3:.1f}",
                f"{t[0] / t[1]:.2f}x",
                f"{d_in:.1e} (absolute)",
            ],
            [
                "weight (alternative forward conv: core's)",
                f"{t[2] * 1e3:.1f}",
                f"{t[3] * 1e3:.1f}",
                f"{t[2] / t[3]:.2f}x",
                f"{d_w:.1e} (relative to max)",
            ],
        ],
    )


def section_layers(repeats: int, widths, sizes) -> None:
    rows = []
    gates = (convolution.FAST_MIN_INPUT_VALUES, convolution.FAST_MIN_CHANNELS)
    for c in widths:
        for s in sizes:
            # the size gates lowered to 0: the fast path measured everywhere
            fast = convolution.Conv2d(
                c, c, 3, padding=1, padding_mode="reflect", fast_min_input_values=0, fast_min_channels=0
            )
            torchs = copy.deepcopy(fast)
            torchs.fast_cpu_backward = False
            x = torch.randn(1, c, s, s, requires_grad=True)

            def run(conv, x=x):
                return lambda: conv(x).sum().backward()

            n = max(repeats, min(200, int(4e6 / (c * c * s * s))))
            t_torch, t_fast = alternate([run(torchs), run(fast)], n)
            gated = x[0].numel() >= gates[0] and c >= gates[1]
            rows.append(
                [
                    c,
                    s,
                    f"{t_torch * 1e3:.3f}",
                    f"{t_fast * 1e3:.3f}",
                    f"{t_torch / t_fast:.2f}x",
                    "fast" if gated else "torch's",
                ]
            )
    table(
        f"One reflection-padded 3x3 layer, forward+backward, {torch.get_num_threads()} thread(s) (ms, median)",
        [
            "channels",
            "px",
            "torch's path",
            "core.convolution path",
            "speed-up",
            f"path taken (gates: {gates[0]:,} input values, {gates[1]} channels)",
        ],
        rows,
    )


def old_style(net: torch.nn.Module) -> torch.nn.Module:
    """The decoder as it was before: the norm as a plain expression (autograd's graph), an
    out-of-place LeakyReLU, and a (cancelled) bias in every conv before a norm."""
    net = copy.deepcopy(net)

    def expression(self, x):
        return x - x.mean(dim=(2, 3), keepdim=True) + self.bias.view(1, -1, 1, 1)

    for m in net.modules():
        if isinstance(m, MeanOnlyNorm):
            m.forward = types.MethodType(expression, m)
        elif isinstance(m, torch.nn.LeakyReLU):
            m.inplace = False
        elif isinstance(m, torch.nn.Conv2d) and m.bias is None:
            m.bias = torch.nn.Parameter(torch.zeros(m.out_channels))
    return net


def section_network(repeats: int, sizes) -> None:
    rows = []
    cfg = task_defaults("denoise")
    for s in sizes:
        net, z = build_network(cfg, 3, 1, (s, s), 0)
        side = z.shape[-1] * net.spec.multiple  # sizes below 64 px are padded to 64
        y = torch.rand(1, 3, side, side)

        def stepper(n, flag=True, fused=True, z=z, y=y):
            opt = make_optimiser(list(n.parameters()), 1e-3) if fused else torch.optim.Adam(n.parameters(), lr=1e-3)

            convolution.set_fast_cpu_backward(n, flag)

            def step():
                opt.zero_grad(set_to_none=True)
                ((n(z) - y) ** 2).mean().backward()
                opt.step()

            return step

        pairs = [
            (
                "CPU conv backward: torch's -> forward kernels",
                stepper(copy.deepcopy(net), flag=False),
                stepper(copy.deepcopy(net)),
            ),
            (
                "norm: expression + bias + out-of-place LeakyReLU -> written-out gradient, no bias, in place",
                stepper(old_style(net)),
                stepper(copy.deepcopy(net)),
            ),
            (
                "Adam: per-parameter loop -> fused",
                stepper(copy.deepcopy(net), fused=False),
                stepper(copy.deepcopy(net)),
            ),
        ]
        for name, a, b in pairs:
            t_a, t_b = alternate([a, b], repeats)
            rows.append([s, name, f"{t_a * 1e3:.1f}", f"{t_b * 1e3:.1f}", f"{t_a / t_b:.3f}x"])
    table(
        f"Whole iterations of the default decoder (128 channels, Adam step included), "
        f"{torch.get_num_threads()} thread(s) (ms, median of {repeats})",
        ["px", "choice", "before ms/it", "core ms/it", "speed-up"],
        rows,
    )


def section_rounding(size: int = 64, steps: int = 13) -> None:
    """How far the CPU conv backward moves a short fit, next to a rounding-level perturbation."""
    cfg = task_defaults("denoise")
    net, z = build_network(cfg, 3, 1, (size, size), 0)
    side = z.shape[-1] * net.spec.multiple
    y = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))

    def fit(flag: bool, perturb: float = 0.0) -> torch.Tensor:
        n = copy.deepcopy(net)
        if perturb:
            g = torch.Generator().manual_seed(2)
            with torch.no_grad():
                for p in n.parameters():
                    p.mul_(1 + perturb * torch.randn(p.shape, generator=g))
        opt = make_optimiser(list(n.parameters()), 1e-3)
        convolution.set_fast_cpu_backward(n, flag)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            ((n(z) - y) ** 2).mean().backward()
            opt.step()
        with torch.no_grad():
            return n(z)

    base = fit(False)
    with torch.no_grad():
        start = net(z)
    rows = [
        ["torch's conv backward, weights x (1 + 1e-6 noise)", f"{float((fit(False, 1e-6) - base).abs().max()):.3f}"],
        ["core.convolution's conv backward", f"{float((fit(True) - base).abs().max()):.3f}"],
    ]
    table(
        f"Rounding after {steps} Adam steps, default decoder at {size} px: max |output "
        f"difference| to torch's path (the fit itself moved the output by "
        f"{float((base - start).abs().max()):.3f})",
        ["run", "max |difference|"],
        rows,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="pieces,layers,network,rounding")
    parser.add_argument("--sizes", default="64,128", help="network section: image sizes")
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    print(
        f"# cpu_kernels.py: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    if "pieces" in sections:
        section_pieces(args.repeats)
    if "layers" in sections:
        section_layers(args.repeats, widths=(16, 32, 64, 128), sizes=(8, 16, 32, 64, 128))
    if "network" in sections:
        section_network(args.repeats, [int(v) for v in args.sizes.split(",")])
    if "rounding" in sections:
        section_rounding()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
