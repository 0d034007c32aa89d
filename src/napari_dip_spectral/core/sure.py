"""Stop by an unbiased estimate of the error: Monte-Carlo SURE along the fit.

For data ``y = x + n`` with white Gaussian noise of variance ``sigma^2`` (the variance-
stabilised counts of a camera are such data), Stein's unbiased risk estimate of the mean
squared error of an estimate ``f(y)`` is

    SURE = |y - f(y)|^2 / n - sigma^2 + 2 sigma^2 div f(y) / n,

and the divergence is estimated by Monte Carlo (Ramani, Blu and Unser 2008): ``b . (f(y +
eps b) - f(y)) / eps`` for one standard normal ``b``. A fitted decoder is an estimate that
depends on the data through its whole optimisation, so ``f(y + eps b)`` is a twin: the same
decoder from the same seed, fitted to the perturbed data in lockstep. The rule keeps each
plane's result where SURE was lowest and stops a plane once it has not improved for
``holdout_patience`` iterations (100 unless given: the one-probe estimate is noisy).

Unlike held-out pixels (core/holdout.py), which measure how well the network predicts
pixels it never sees and so stop on the smooth side while it still learns fine detail, SURE
estimates the error of the result on every pixel (docs/method.md section 8). It costs a
second fit of the same size.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import numpy as np
import torch

from . import solver
from .config import SolverConfig
from .noise import estimate_noise_sigma
from .operators import Denoise, ForwardOperator
from .solver import ProgressEvent, SolveOutcome
from .stopping import LowestErrorRule

EPSILON = 0.3  # the perturbation in units of the noise sigma. Adam's first steps follow the
# gradient's sign, so a much smaller perturbation (0.02 sigma) flipped steps and the twin
# drifted from the main fit by more than the perturbation moved it: the divergence was noise
# and the rule stopped far too early (docs/beyond_the_paper.md section 8)


def sure_estimate(y, x, twin, probe, sigma, eps) -> np.ndarray:
    """Per plane ``(G,)``: SURE of ``x`` for ``y`` (all ``(G, C, H, W)``), from the twin
    fitted to ``y + eps * probe``; ``sigma`` and ``eps`` per plane."""
    axes = (1, 2, 3)
    divergence = (probe * (twin - x)).mean(axis=axes) / eps
    return ((y - x) ** 2).mean(axis=axes) - sigma**2 + 2 * sigma**2 * divergence


def iterate_with_sure(
    observation: torch.Tensor, operator: ForwardOperator, config: SolverConfig, reference: torch.Tensor | None = None
) -> Generator[ProgressEvent, object, SolveOutcome]:
    """``iterate`` with the SURE stop rule: the same events and outcome, two fits inside."""
    if not isinstance(operator, Denoise):
        raise ValueError("the SURE stop rule is for denoising: it needs data that is the image plus white noise")
    started = time.perf_counter()
    groups = observation.shape[0]
    y = observation.detach().to("cpu", torch.float32)
    sigma = (
        np.full(groups, float(config.noise_sigma))
        if config.noise_sigma
        else estimate_noise_sigma(y).cpu().numpy().astype(np.float64)
    )
    sigma = np.maximum(sigma, 1e-6)  # a noiseless plane: SURE is the plain fit error
    eps = EPSILON * sigma
    probe = torch.randn(y.shape, generator=torch.Generator().manual_seed(20_011 + config.seed))
    perturbed = y + torch.from_numpy(eps.astype(np.float32)).view(-1, 1, 1, 1) * probe
    # both fits run to the end of their budget unless stopped here; each reports its result
    # (the average of outputs) on every metric iteration. The twin only has to report it: its
    # own metrics (FBC, ratio, history) would be computed and thrown away
    inner = config.replace(stop_rule="ratio", auto_stop=False, settle=0, preview_every=config.metrics_every)
    main = solver.iterate(observation, operator, inner, reference)
    twin = solver.iterate(perturbed, operator, inner.replace(metrics_every=config.iterations), None)
    y_np, probe_np = y.numpy().astype(np.float64), probe.numpy().astype(np.float64)
    rule = LowestErrorRule(groups, config.patience("sure"))
    fired = torch.zeros(groups, dtype=torch.long)  # where each plane's rule fired; 0 = not yet
    kept: np.ndarray | None = None  # each plane's result where its estimate was lowest
    reason, message, outcome = None, None, None
    try:
        while True:
            try:
                event, twin_event = main.send(message), twin.send(message)
            except StopIteration as end:
                outcome = end.value
                break
            if event.preview is not None:
                x = event.preview.astype(np.float64)
                risk = sure_estimate(y_np, x, twin_event.preview.astype(np.float64), probe_np, sigma, eps)
                improved = (rule.record(event.iteration, torch.from_numpy(risk)) & (fired == 0)).numpy()
                kept = event.preview.copy() if kept is None else kept
                kept[improved] = event.preview[improved]
                newly = rule.check(event.iteration) & (fired == 0)
                fired[newly] = rule.best_iteration[newly]
            shown = config.preview_every and event.iteration % config.preview_every == 0
            message = bool(
                (
                    yield ProgressEvent(
                        iteration=event.iteration,
                        total=event.total,
                        log=event.log,
                        preview=event.preview if shown else None,
                        stopped=int((fired > 0).sum()),
                    )
                )
            )
            if message:
                reason = "cancelled"
            elif config.auto_stop and bool((fired > 0).all()):
                reason, message = "auto_stop", True
    finally:
        main.close()
        twin.close()
    image = outcome.image
    taken = torch.full((groups,), outcome.iterations, dtype=torch.long)
    if kept is not None and config.auto_stop and reason != "cancelled":
        # each plane's lowest-SURE result, also where the budget ran out before the rule fired
        image = kept.astype(np.float32)
        found = torch.where(rule.best_iteration > 0, rule.best_iteration, taken)
        taken = torch.where(fired > 0, fired, found)  # a fired plane's best is where it fired
    return SolveOutcome(
        image=image,
        history=outcome.history,
        iterations=outcome.iterations,
        stop_reason=reason or outcome.stop_reason,
        stop_iterations=taken.tolist(),
        seconds=time.perf_counter() - started,
        device=outcome.device,
        parameters=outcome.parameters,
        lipschitz=outcome.lipschitz,
        precision=outcome.precision,
        rule_iterations=fired.tolist(),
        rules=["sure"] * groups,
    )
