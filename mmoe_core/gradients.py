"""How much the tasks agree, seen through their gradients on the parameters they share.

The paper's argument (Ma et al. 2018, §3) is that a shared network serves unrelated tasks badly because their
updates pull the shared weights in different directions. The cosine between two tasks' loss gradients with
respect to the shared weights measures that pull directly: 1 when the tasks want the same change, 0 when their
wishes are unrelated, negative when they conflict. Every replica (seed) is measured on its own.

Which weights are "shared": a mixture model's expert bank (Shared-Bottom's bottom is its one wide expert),
plus the gate when one gate serves every task (OMoE); a CGC/PLE model's expert banks, level by level.
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch import nn


def task_pairs(n_tasks: int) -> list[tuple[int, int]]:
    """(i, j) with i < j, in the order agreement values are reported."""
    return list(combinations(range(n_tasks), 2))


def _levels(model: nn.Module) -> list[nn.Module] | None:
    return list(model.levels) if hasattr(model, "levels") else None


def shared_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that more than one task's loss reaches (towers and per-task gates excluded)."""
    levels = _levels(model)
    if levels is not None:
        return [p for lv in levels for p in (lv.in_w, lv.in_b, *lv.w, *lv.b)]
    params = [model.expert_in_w, model.expert_in_b, *model.expert_w, *model.expert_b]
    if model.spec.n_gates == 1:  # OMoE: one gate for every task
        params += [p for p in (model.gate_w, model.noise_w) if p is not None]
    return params


def agreement_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The first layer of the shared network, named: where agreement is measured (one per PLE level)."""
    levels = _levels(model)
    if levels is not None:
        return [(f"level {j + 1}", lv.in_w) for j, lv in enumerate(levels)]
    return [("bottom" if model.spec.n_gates == 0 else "experts", model.expert_in_w)]


def per_replica_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """(r, ...) and (r, ...) -> (r,) cosine of each replica's flattened vectors (0 where one is zero)."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)


def task_gradients(per_task: torch.Tensor, params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """per_task: (r, k) losses. Returns, per task, the gradient of its loss (summed over replicas, which keeps
    replicas apart: replica r's loss reaches only replica r's slice) with respect to each of `params`."""
    out = []
    for k in range(per_task.shape[1]):
        grads = torch.autograd.grad(per_task[:, k].sum(), params, retain_graph=True, allow_unused=True)
        out.append([torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)])
    return out


def grad_agreement(model: nn.Module, per_task: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per measured layer: (r, pairs) cosine between each pair of tasks' gradients, pairs as task_pairs()."""
    out = {}
    for name, param in agreement_parameters(model):
        grads = [g[0] for g in task_gradients(per_task, [param])]
        out[name] = torch.stack([per_replica_cosine(grads[i], grads[j]) for i, j in task_pairs(per_task.shape[1])], 1)
    return out
