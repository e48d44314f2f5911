"""CGC and PLE (Tang et al., RecSys 2020, §4.2-4.3) on one stacked expert bank per level.

CGC (Customized Gate Control) is one mixture layer whose bank holds m_s shared experts and m_t experts of each
task, e = m_s + k·m_t, laid out [shared | task 1 | ... | task k]. Task k's gate is a softmax over its own
experts and the shared ones; every other expert is masked (logit -inf, weight exactly 0):

    y_k = t_k(g_k(x)),   g_k(x) = Σ_i w_k(x)_i S_k(x)_i,   w_k(x) = softmax(W_k x) over [E_k, E_s]   (Eq. 4-6)

PLE (Progressive Layered Extraction) stacks L such levels. What we implement of §4.3 (Eq. 7-8):
- level 1 reads x everywhere; at level j > 1, task k's experts and task k's gate read task k's mixture of
  level j-1, and the shared experts and the shared gate read the shared mixture of level j-1;
- every level but the last also has a shared gate, a softmax over ALL experts of its level, whose mixture
  feeds the next level's shared experts;
- the towers read the last level's task mixtures, and the gates returned (for the heatmaps) are the last
  level's task gates. PLE with one level is CGC.
Any gate may be noisy top-k with a balancing loss (gating.py). Every parameter has a leading replica axis,
as in mixture.py, so seeds train as one computation.

Shapes (einsum letters): r replicas, b batch, d input, e experts of a level, h expert hidden, k tasks,
g gates of a level (k, or k+1 with the shared gate last), s streams (the mixtures a level reads), t tower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import gating
from .mixture import (
    MixtureModel,
    MixtureOutput,
    MixtureSpec,
    init_replicas,
    stacked_towers,
)


@dataclass(frozen=True)
class PLESpec(MixtureSpec):
    """A MixtureSpec (n_experts = experts per level, n_gates = n_tasks) with the CGC/PLE wiring."""

    shared_experts: int = 1
    task_experts: int = 1
    levels: int = 1

    def gate_mask(self, shared_gate: bool) -> tuple[tuple[bool, ...], ...]:
        """(g, e): task i may use the shared experts and its own; the shared gate (last row) uses all."""
        s, m, k = self.shared_experts, self.task_experts, self.n_tasks
        rows = [tuple(j < s or s + i * m <= j < s + (i + 1) * m for j in range(self.n_experts)) for i in range(k)]
        return tuple(rows + ([(True,) * self.n_experts] if shared_gate else []))

    def sources(self) -> tuple[int, ...]:
        """(e,) the stream each expert reads at levels > 1: task i's experts read stream i, shared ones k."""
        s, m, k = self.shared_experts, self.task_experts, self.n_tasks
        return tuple(k if j < s else (j - s) // m for j in range(self.n_experts))


def ple_spec(
    kind: str,
    *,
    input_dim: int,
    n_tasks: int,
    shared_experts: int,
    task_experts: int,
    levels: int,
    expert_units: tuple[int, ...],
    tower_units: tuple[int, ...],
    top_k: int = 0,
    gate_noise: bool = False,
) -> PLESpec:
    if shared_experts + task_experts < 1:
        raise ValueError("shared_experts=0 and task_experts=0 leave CGC/PLE without experts; set one to 1 or more")
    e = shared_experts + n_tasks * task_experts
    return PLESpec(
        kind,
        input_dim,
        n_tasks,
        e,
        expert_units,
        tower_units,
        n_tasks,
        None,
        top_k,
        gate_noise,
        shared_experts,
        task_experts,
        levels,
    )


class _Level(nn.Module):
    """One extraction level: the expert bank, its gates (k task gates, plus a shared one unless last)."""

    def __init__(self, spec: PLESpec, replicas: int, d_in: int, first: bool, last: bool):
        super().__init__()
        r, e, h = replicas, spec.n_experts, spec.expert_units
        self.first, self.n_gates = first, spec.n_tasks + (0 if last else 1)
        if first:  # every expert reads x: one fused (d, e*h) matmul
            self.in_w = nn.Parameter(torch.empty(r, d_in, e * h[0]))  # (r, d, e*h)
            self.in_b = nn.Parameter(torch.empty(r, 1, e * h[0]))  # (r, 1, e*h)
        else:  # each expert reads its own stream
            self.in_w = nn.Parameter(torch.empty(r, e, d_in, h[0]))  # (r, e, h_in, h)
            self.in_b = nn.Parameter(torch.empty(r, e, 1, h[0]))  # (r, e, 1, h)
        self.w = nn.ParameterList(nn.Parameter(torch.empty(r, e, h[i], h[i + 1])) for i in range(len(h) - 1))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(r, e, 1, h[i + 1])) for i in range(len(h) - 1))
        g = self.n_gates
        shape = (r, d_in, g * e) if first else (r, g, d_in, e)  # no bias, as the paper's gates
        self.gate_w = nn.Parameter(torch.empty(shape))
        self.noise_w = nn.Parameter(torch.empty(shape)) if spec.gate_noise else None
        self.register_buffer("mask", torch.tensor(spec.gate_mask(shared_gate=not last)))  # (g, e)
        self.register_buffer("src", torch.tensor(spec.sources()))  # (e,)
        self.d_in = d_in

    def experts(self, u: torch.Tensor) -> torch.Tensor:
        """u: (r, b, d) at the first level, else (r, b, s, h_in) -> expert outputs (r, b, e, h)."""
        e = self.src.shape[0]
        if self.first:
            r, b, _ = u.shape
            f = torch.baddbmm(self.in_b, u, self.in_w).relu_().view(r, b, e, -1)  # (r, b, e, h)
            if not len(self.w):
                return f
            f = f.transpose(1, 2)  # (r, e, b, h)
        else:
            xe = u[:, :, self.src].transpose(1, 2)  # (r, e, b, h_in): each expert's stream
            f = (torch.matmul(xe, self.in_w) + self.in_b).relu_()  # (r, e, b, h)
        for w, bias in zip(self.w, self.b):
            f = (torch.matmul(f, w) + bias).relu_()  # (r, e, b, h')
        return f.transpose(1, 2)  # (r, b, e, h)

    def logits(self, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Gate logits (r, b, g, e); gate i reads stream i (task gates, then the shared one)."""
        e = self.src.shape[0]
        if self.first:
            r, b, _ = u.shape
            return torch.bmm(u, w).view(r, b, self.n_gates, e)  # (r, b, g, e)
        ug = u[:, :, : self.n_gates].transpose(1, 2)  # (r, g, b, h_in)
        return torch.matmul(ug, w).transpose(1, 2)  # (r, b, g, e)


class PLEModel(nn.Module):
    """CGC (levels = 1) and PLE, with the MixtureModel interface: forward -> MixtureOutput, num_params, ...

    The trainer sets `balance = True` when the run's balance_weight > 0; forward then also returns each
    replica's balancing loss (summed over every gate of every level) as `aux`, shape (r,).
    """

    def __init__(self, spec: PLESpec, replicas: int = 1, seed: int | Sequence[int] = 0):
        super().__init__()
        self.spec, self.replicas, self.seed = spec, replicas, seed
        self.balance = False
        h = spec.expert_units
        self.levels = nn.ModuleList(
            _Level(spec, replicas, spec.input_dim if j == 0 else h[-1], first=j == 0, last=j == spec.levels - 1)
            for j in range(spec.levels)
        )
        self.tower_w, self.tower_b = stacked_towers(replicas, spec.n_tasks, (h[-1], *spec.tower_units, 1))
        self._noise_gen: dict[torch.device, list[torch.Generator]] = {}
        init_replicas(self, spec.kind, seed, replicas, self._fan_in)

    def _fan_in(self, name: str, p: torch.Tensor) -> int:
        if name.startswith("levels."):
            level = self.levels[int(name.split(".")[1])]
            if name.endswith(("in_w", "in_b", "gate_w", "noise_w")):
                return level.d_in
            return level.w[int(name.split(".")[-1])].shape[-2]  # w.i / b.i
        i = int(name.split(".")[1])
        return self.tower_w[i].shape[-2]

    def forward(self, x: torch.Tensor) -> MixtureOutput:
        """x: (r, b, d), or (b, d) shared by every replica. Noise is drawn only when training with gradients
        (the trainer evaluates under no_grad, so validation and the gate probes see the deterministic gate)."""
        spec, r = self.spec, self.replicas
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(r, -1, -1)  # (r, b, d)
        noisy = spec.gate_noise and self.training and torch.is_grad_enabled()
        u, aux = x, x.new_zeros(r)
        for level in self.levels:
            f = level.experts(u)  # (r, b, e, h)
            clean = level.logits(u, level.gate_w)  # (r, b, g, e)
            noise = level.logits(u, level.noise_w) if noisy else None
            weights, h, std = gating.noisy_top_k(
                clean,
                noise,
                spec.top_k,
                level.mask,
                gating.noise_generator(self._noise_gen, x.device, self.seed, self.replicas) if noisy else None,
            )  # (r, b, g, e)
            if self.balance:
                aux = aux + gating.balance_loss(weights, clean, h, std, spec.top_k, level.mask)  # (r,)
            u = torch.matmul(weights, f)  # (r, b, g, h): the mixtures, streams of the next level
        z = u  # (r, b, k, h): the last level has exactly the k task gates
        for i, (w, bias) in enumerate(zip(self.tower_w, self.tower_b)):
            if i:
                z = torch.relu(z)
            z = torch.einsum("rbkh,rkht->rbkt", z, w) + bias.transpose(1, 2)  # (r, b, k, t)
        preds = z.squeeze(-1)  # (r, b, k)
        # gates: the last level's task gates (r, b, k, e)
        return MixtureOutput(preds=preds, gates=weights, aux=aux if self.balance else None)

    # ------------------------------------------------------------------ facts
    def param_counts(self) -> dict[str, int]:
        """Per replica, as MixtureModel counts them; masked gate columns (never used) are left out."""
        per = {name: p[0].numel() for name, p in self.named_parameters()}
        expert_w = sum(v for n, v in per.items() if n.endswith(".in_w") or ".w." in n)
        expert_b = sum(v for n, v in per.items() if n.endswith(".in_b") or ".b." in n)
        gates = sum(int(lv.mask.sum()) * lv.d_in * (2 if lv.noise_w is not None else 1) for lv in self.levels)
        n_tower = len(self.tower_w)
        counts = {
            "expert_weights": expert_w,
            "expert_biases": expert_b,
            "gate_weights": gates,
            "tower_hidden_weights": sum(per[f"tower_w.{i}"] for i in range(n_tower - 1)),
            "tower_other": sum(per[f"tower_b.{i}"] for i in range(n_tower)) + per[f"tower_w.{n_tower - 1}"],
        }
        counts["total"] = sum(counts.values())
        return counts

    # The same facts as MixtureModel's, read from param_counts() and named_parameters().
    num_params = MixtureModel.num_params
    replica_state = MixtureModel.replica_state

    def expert_first_layer(self, r: int = 0) -> torch.Tensor:
        """(e, d·h) each first-level expert's input weights, flattened (for the copy diagnostic)."""
        level = self.levels[0]
        e = level.src.shape[0]
        return level.in_w[r].detach().view(level.d_in, e, -1).transpose(0, 1).reshape(e, -1)
