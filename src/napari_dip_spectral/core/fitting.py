"""The fit a configuration asks for: one decoder per plane (core/solver.py), several averaged
(an ensemble, core/ensemble.py), or, with the SURE stop rule, the same fit beside a twin on
perturbed data (core/sure.py)."""

from __future__ import annotations

from collections.abc import Generator

import torch

from . import solver
from .config import SolverConfig
from .ensemble import iterate_ensemble
from .operators import ForwardOperator
from .solver import ProgressEvent, SolveOutcome
from .sure import iterate_with_sure


def fit(
    observation: torch.Tensor,
    operator: ForwardOperator,
    config: SolverConfig,
    reference: torch.Tensor | None = None,
    start: dict[str, torch.Tensor] | None = None,
    keep_weights: bool = False,
) -> Generator[ProgressEvent, object, SolveOutcome]:
    """``start``: a warm start for every plane, one plane's fitted decoder (``SolveOutcome.weights``,
    returned with ``keep_weights``); neither with the SURE rule, whose twin keeps no decoder at
    the kept result."""
    if config.stop_rule == "sure":
        if start is not None or keep_weights:
            raise ValueError("a warm start cannot be combined with the SURE stop rule")
        return iterate_with_sure(observation, operator, config, reference)
    if config.ensemble > 1:
        return iterate_ensemble(observation, operator, config, reference, start, keep_weights)
    # through the module, so that whatever stands in for the solver (a test's device) is used
    return solver.iterate(observation, operator, config, reference, start, keep_weights)
