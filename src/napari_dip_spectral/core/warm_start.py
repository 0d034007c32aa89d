"""Warm starts: one plane's fitted decoder taken out of a grouped one, and every plane of a
new grouped decoder started from it. Every parameter of a grouped decoder is group-major
(core/network.py), so a plane's decoder is one slice of each tensor. With an ensemble
(core/ensemble.py) a plane has several decoders, consecutive groups; its warm start is all
of them, and each member of the next plane starts from the same member of this one."""

from __future__ import annotations

import torch


def plane_weights(net: torch.nn.Module, groups: int, plane: int, members: int = 1) -> dict[str, torch.Tensor]:
    """The decoders of groups ``plane .. plane + members - 1`` out of a grouped one, each
    tensor of shape ``(members, n)``."""
    return {
        k: v.detach().reshape(groups, -1)[plane : plane + members].cpu().clone() for k, v in net.state_dict().items()
    }


def update_member(weights: dict[str, torch.Tensor], net: torch.nn.Module, groups: int, group: int, member: int) -> None:
    """Replace member ``member`` of ``weights`` (see :func:`plane_weights`) by group ``group``."""
    with torch.no_grad():
        for k, v in net.state_dict().items():
            weights[k][member].copy_(v.detach().reshape(groups, -1)[group].cpu())


def start_from(net: torch.nn.Module, groups: int, weights: dict[str, torch.Tensor]) -> None:
    """Every plane's decoders start as the given plane's (see :func:`plane_weights`): with
    ``m`` members there, group ``g`` starts from member ``g % m``."""
    state = net.state_dict()
    members = len(next(iter(weights.values())))
    if (
        set(state) != set(weights)
        or groups % members
        or any(state[k].numel() != groups * weights[k][0].numel() for k in state)
    ):
        raise ValueError("the warm start's weights are for a decoder of another shape")
    with torch.no_grad():
        for k, v in state.items():
            v.view(groups // members, members, -1).copy_(weights[k].reshape(1, members, -1).to(v))
