"""Warm starts: one plane's fitted decoder taken out of a grouped one, and every plane of a
new grouped decoder started from it. Every parameter of a grouped decoder is group-major
(core/network.py), so a plane's decoder is one slice of each tensor."""

from __future__ import annotations

import torch


def plane_weights(net: torch.nn.Module, groups: int, plane: int) -> dict[str, torch.Tensor]:
    """One plane's decoder out of a grouped one: every tensor is group-major."""
    return {k: v.detach().reshape(groups, -1)[plane].cpu().clone() for k, v in net.state_dict().items()}


def start_from(net: torch.nn.Module, groups: int, weights: dict[str, torch.Tensor]) -> None:
    """Every plane's decoder starts as the given one plane's (see :func:`plane_weights`)."""
    state = net.state_dict()
    if set(state) != set(weights) or any(state[k].numel() != groups * weights[k].numel() for k in state):
        raise ValueError("the warm start's weights are for a decoder of another shape")
    with torch.no_grad():
        for k, v in state.items():
            v.view(groups, -1).copy_(weights[k].reshape(1, -1).to(v))
