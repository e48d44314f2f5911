"""How the task losses become one update: equal weights, or a method that balances tasks.

Each method turns every running model's (r, k) task losses into gradients in the trainer's flat gradient
tensor. Everything is per replica (seed) and per model, so a batched run equals single runs (tests check it).
Formulas, with L_k the task losses of one replica:

- equal: Σ_k L_k (the paper's setting).
- uncertainty (Kendall et al. 2018, as LibMTL writes it): Σ_k L_k / (2 exp(s_k)) + s_k / 2, with a learned
  log-variance s_k per task (initial −0.5), trained by the same Adam.
- gradnorm (Chen et al. 2018): Σ_k w_k L_k with learned weights w_k. With G_k = w_k ‖∇_W L_k‖ on the last shared
  layer W and r_k = (L_k / L_k(0)) / mean_j(L_j / L_j(0)), w follows the gradient of Σ_k |G_k − mean_j(G_j) r_k^α|
  (the target held constant, α = 1.5), which is sign(G_k − target_k) ‖∇_W L_k‖; after each step w is rescaled to
  sum to the number of tasks.
- pcgrad (Yu et al. 2020): each task's gradient on the shared parameters, where it conflicts with another task's
  (negative dot product), loses its component along that gradient; the projected gradients are summed. Other
  parameters get the plain gradient. With more than two tasks the order of the others is shuffled per step, by a
  generator per replica.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import WEIGHTINGS
from .gradients import shared_parameters, task_gradients
from .models.gating import replica_seeds

__all__ = ["WEIGHTINGS", "WEIGHTING_LABELS", "make_weighting"]
WEIGHTING_LABELS = {
    "equal": "Equal (the paper)",
    "uncertainty": "Uncertainty (Kendall 2018)",
    "gradnorm": "GradNorm (Chen 2018)",
    "pcgrad": "PCGrad (Yu 2020)",
}
GRADNORM_ALPHA = 1.5
UNCERTAINTY_INIT = -0.5


class LossWeighting:
    """Equal weights; the base of the others. `parameters()` are trained with the models' Adam."""

    def __init__(self, models: dict[str, nn.Module], n_tasks: int, seed: int | Sequence[int]):
        self.models, self.n_tasks, self.seed = models, n_tasks, seed
        self.device = next(iter(models.values())).tower_w[0].device if models else torch.device("cpu")

    def parameters(self) -> list[nn.Parameter]:
        return []

    def weights(self, name: str) -> torch.Tensor | None:
        """(r, k) current task weights of a model, for display; None when they are fixed at 1."""
        return None

    def backward(self, losses: dict[str, torch.Tensor], extra: torch.Tensor | None) -> None:
        """losses: model -> (r, k) task losses of the running models; extra: balancing terms to add."""
        total = sum(self.combine(name, per_task) for name, per_task in losses.items())
        (total if extra is None else total + extra).backward()

    def combine(self, name: str, per_task: torch.Tensor) -> torch.Tensor:
        return per_task.sum()

    def after_step(self) -> None:
        """Called after the optimizer step."""


class Uncertainty(LossWeighting):
    def __init__(self, models: dict[str, nn.Module], n_tasks: int, seed: int | Sequence[int]):
        super().__init__(models, n_tasks, seed)
        self.log_var = {
            n: nn.Parameter(torch.full((m.replicas, n_tasks), UNCERTAINTY_INIT, device=self.device))
            for n, m in models.items()
        }

    def parameters(self) -> list[nn.Parameter]:
        return list(self.log_var.values())

    def weights(self, name: str) -> torch.Tensor:
        return 0.5 * torch.exp(-self.log_var[name].detach())

    def combine(self, name: str, per_task: torch.Tensor) -> torch.Tensor:
        s = self.log_var[name]
        return (per_task / (2 * s.exp()) + s / 2).sum()


class GradNorm(LossWeighting):
    def __init__(self, models: dict[str, nn.Module], n_tasks: int, seed: int | Sequence[int]):
        super().__init__(models, n_tasks, seed)
        self.w = {n: nn.Parameter(torch.ones(m.replicas, n_tasks, device=self.device)) for n, m in models.items()}
        self.initial: dict[str, torch.Tensor] = {}

    def parameters(self) -> list[nn.Parameter]:
        return list(self.w.values())

    def weights(self, name: str) -> torch.Tensor:
        return self.w[name].detach()

    def combine(self, name: str, per_task: torch.Tensor) -> torch.Tensor:
        return (self.w[name].detach() * per_task).sum()

    def backward(self, losses: dict[str, torch.Tensor], extra: torch.Tensor | None) -> None:
        w_grads = {}
        for name, per_task in losses.items():
            grads = task_gradients(per_task, self._last_layer(name))
            norm = torch.stack([torch.cat([g.reshape(g.shape[0], -1) for g in gk], 1).norm(dim=1) for gk in grads], 1)
            loss = per_task.detach()
            if name not in self.initial:
                self.initial[name] = loss.clone()
            w = self.w[name].detach()
            big_g = w * norm  # (r, k)
            ratio = loss / self.initial[name]
            target = big_g.mean(1, keepdim=True) * (ratio / ratio.mean(1, keepdim=True)) ** GRADNORM_ALPHA
            w_grads[name] = torch.sign(big_g - target) * norm
        super().backward(losses, extra)
        for name, g in w_grads.items():
            self.w[name].grad.copy_(g)

    def _last_layer(self, name: str) -> list[nn.Parameter]:
        """W of GradNorm: the shared network's last weight matrix and bias."""
        model = self.models[name]
        if hasattr(model, "levels"):
            lv = model.levels[-1]
            return [lv.w[-1], lv.b[-1]] if len(lv.w) else [lv.in_w, lv.in_b]
        return (
            [model.expert_w[-1], model.expert_b[-1]] if len(model.expert_w) else [model.expert_in_w, model.expert_in_b]
        )

    def after_step(self) -> None:
        with torch.no_grad():
            for w in self.w.values():
                w.clamp_(min=1e-3)
                w.mul_(self.n_tasks / w.sum(1, keepdim=True))


class PCGrad(LossWeighting):
    def __init__(self, models: dict[str, nn.Module], n_tasks: int, seed: int | Sequence[int]):
        super().__init__(models, n_tasks, seed)
        replicas = max(m.replicas for m in models.values())
        self._gens = [torch.Generator().manual_seed(s * 104_729 + 3) for s in replica_seeds(seed, replicas)]

    def _orders(self, replicas: int) -> torch.Tensor:
        """(r, k, k-1): for each replica and task, the order in which the other tasks are projected out."""
        k = self.n_tasks
        if k == 2:
            return torch.tensor([[1], [0]]).expand(replicas, 2, 1)
        rows = []
        for gen in self._gens[:replicas]:
            rows.append(
                torch.stack(
                    [torch.tensor([j for j in torch.randperm(k, generator=gen).tolist() if j != i]) for i in range(k)]
                )
            )
        return torch.stack(rows)

    def backward(self, losses: dict[str, torch.Tensor], extra: torch.Tensor | None) -> None:
        fixes = []
        orders = None
        for name, per_task in losses.items():
            params = shared_parameters(self.models[name])
            grads = task_gradients(per_task, params)  # [k][p] (r, ...)
            r = per_task.shape[0]
            flat = torch.stack([torch.cat([g.reshape(r, -1) for g in gk], 1) for gk in grads])  # (k, r, P)
            if orders is None or orders.shape[0] != r:
                orders = self._orders(r).to(flat.device)
            rows = torch.arange(r, device=flat.device)
            projected = flat.clone()
            for i in range(self.n_tasks):
                for pos in range(self.n_tasks - 1):
                    other = flat[orders[:, i, pos], rows]  # (r, P)
                    dot = (projected[i] * other).sum(1)
                    coef = dot.clamp(max=0) / other.pow(2).sum(1).clamp_min(1e-20)
                    projected[i] -= coef[:, None] * other
            fixes.append((params, (projected - flat).sum(0)))  # what PCGrad changes in the summed gradient
        super().backward(losses, extra)
        with torch.no_grad():
            for params, delta in fixes:
                offset = 0
                for p in params:
                    n = p[0].numel()
                    p.grad.add_(delta[:, offset : offset + n].view_as(p))
                    offset += n


_METHODS = {"equal": LossWeighting, "uncertainty": Uncertainty, "gradnorm": GradNorm, "pcgrad": PCGrad}


def make_weighting(name: str, models: dict[str, nn.Module], n_tasks: int, seed: int | Sequence[int]) -> LossWeighting:
    if name not in _METHODS:
        raise ValueError(f"weighting={name!r} is unknown; choose one of {', '.join(WEIGHTINGS)}")
    return _METHODS[name](models, n_tasks, seed)
