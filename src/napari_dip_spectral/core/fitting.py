"""The fit a configuration asks for: one decoder per plane (core/solver.py), or, with the
SURE stop rule, the same fit beside a twin on perturbed data (core/sure.py)."""

from __future__ import annotations

from collections.abc import Generator

import torch

from . import solver
from .config import SolverConfig
from .operators import ForwardOperator
from .solver import ProgressEvent, SolveOutcome
from .sure import iterate_with_sure


def fit(
    observation: torch.Tensor, operator: ForwardOperator, config: SolverConfig, reference: torch.Tensor | None = None
) -> Generator[ProgressEvent, object, SolveOutcome]:
    if config.stop_rule == "sure":
        return iterate_with_sure(observation, operator, config, reference)
    # through the module, so that whatever stands in for the solver (a test's device) is used
    return solver.iterate(observation, operator, config, reference)
