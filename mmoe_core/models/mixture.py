"""MixtureModel: every model the app compares is this one layer, configured.

An expert bank (stacked weights, one batched matmul), an optional softmax gate per gate group with a mask
of which experts each gate may use, and one tower per task. Shared-Bottom is one wide expert with a fixed
route to every task; Single-task is one expert per task with an identity route; OMoE is one gate shared
by all tasks; MMoE one gate per task (Ma et al. 2018, §4).

All parameters carry a leading replica axis so R independently initialised copies (seeds) train as one
computation; Adam is elementwise, so a stacked optimizer equals R separate ones.

Shapes (einsum letters): r replicas, b batch, d input, e experts, h expert hidden, k tasks, g gates,
t tower hidden.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


class MixtureOutput(NamedTuple):
    preds: torch.Tensor  # (r, b, k) one output per task (a logit for binary tasks)
    gates: torch.Tensor  # (r, b, k, e) each task's weights over experts; fixed routes for ungated models


@dataclass(frozen=True)
class MixtureSpec:
    """The wiring of one model; the named models in zoo.py fill it in."""

    kind: str
    input_dim: int
    n_tasks: int
    n_experts: int
    expert_units: tuple[int, ...]  # hidden sizes of each expert's ReLU layers
    tower_units: tuple[int, ...]  # hidden sizes of each tower's ReLU layers
    n_gates: int  # 0: fixed route, 1: one shared gate (OMoE), n_tasks: a gate per task (MMoE)
    route: tuple[tuple[float, ...], ...] | None = None  # (k, e) fixed weights when n_gates == 0

    @property
    def gated(self) -> bool:
        return self.n_gates > 0


def _uniform(generator: torch.Generator, shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    """nn.Linear's default initialisation, drawn from an explicit generator."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


class MixtureModel(nn.Module):
    def __init__(self, spec: MixtureSpec, replicas: int = 1, seed: int = 0):
        super().__init__()
        self.spec, self.replicas, self.seed = spec, replicas, seed
        e, d, k = spec.n_experts, spec.input_dim, spec.n_tasks
        h = spec.expert_units
        # Expert bank. Layer 0 reads the same x for every expert, so it is one fused (d, e*h) matmul.
        self.expert_in_w = nn.Parameter(torch.empty(replicas, d, e * h[0]))  # (r, d, e*h)
        self.expert_in_b = nn.Parameter(torch.empty(replicas, 1, e * h[0]))  # (r, 1, e*h)
        self.expert_w = nn.ParameterList(
            nn.Parameter(torch.empty(replicas, e, h[i], h[i + 1])) for i in range(len(h) - 1)
        )  # (r, e, h_i, h_i+1)
        self.expert_b = nn.ParameterList(nn.Parameter(torch.empty(replicas, e, 1, h[i + 1])) for i in range(len(h) - 1))
        # Gates: softmax(W x) without bias, as the paper writes it.
        self.gate_w = nn.Parameter(torch.empty(replicas, d, spec.n_gates * e)) if spec.gated else None
        route = torch.tensor(spec.route, dtype=torch.float32) if spec.route is not None else torch.ones(k, e) / e
        self.register_buffer("route", route)  # (k, e)
        # Towers: one per task, stacked on k.
        t = (h[-1], *spec.tower_units, 1)
        self.tower_w = nn.ParameterList(nn.Parameter(torch.empty(replicas, k, t[i], t[i + 1])) for i in range(len(t) - 1))
        self.tower_b = nn.ParameterList(nn.Parameter(torch.empty(replicas, k, 1, t[i + 1])) for i in range(len(t) - 1))
        self._init_weights()

    # ------------------------------------------------------------------ set-up
    @torch.no_grad()
    def _init_weights(self) -> None:
        """Replica r is initialised from seed + r alone, so it equals a single run with that seed."""
        salt = zlib.crc32(self.spec.kind.encode())
        for r in range(self.replicas):
            g = torch.Generator().manual_seed((self.seed + r) * 1_000_003 + salt)
            for name, p in self.named_parameters():
                p[r].copy_(_uniform(g, tuple(p.shape[1:]), self._fan_in(name, p)))

    def _fan_in(self, name: str, p: torch.Tensor) -> int:
        if name.startswith(("expert_in", "gate_w")):
            return self.spec.input_dim
        if name.startswith(("expert_w", "tower_w")):
            return p.shape[-2]
        if name.startswith(("expert_b", "tower_b")):  # the weight beside it has the fan-in
            w = getattr(self, name.split(".")[0].replace("_b", "_w"))[int(name.split(".")[1])]
            return w.shape[-2]
        raise AssertionError(name)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> MixtureOutput:
        """x: (r, b, d), or (b, d) shared by every replica."""
        r, e, k = self.replicas, self.spec.n_experts, self.spec.n_tasks
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(r, -1, -1)  # (r, b, d)
        b = x.shape[1]
        f = torch.relu(torch.baddbmm(self.expert_in_b, x, self.expert_in_w))  # (r, b, e*h)
        f = f.view(r, b, e, -1)  # (r, b, e, h)
        if len(self.expert_w):
            f = f.transpose(1, 2)  # (r, e, b, h)
            for w, bias in zip(self.expert_w, self.expert_b):
                f = torch.relu(torch.matmul(f, w) + bias)  # (r, e, b, h')
            f = f.transpose(1, 2)  # (r, b, e, h)
        if self.gate_w is not None:
            logits = torch.bmm(x, self.gate_w).view(r, b, self.spec.n_gates, e)  # (r, b, g, e)
            gates = torch.softmax(logits, dim=-1).expand(r, b, k, e)  # (r, b, k, e); g = 1 broadcasts
        else:
            gates = self.route.expand(r, b, k, e)  # (r, b, k, e)
        mixed = torch.matmul(gates, f)  # (r, b, k, h)
        z = mixed.transpose(1, 2)  # (r, k, b, h)
        for i, (w, bias) in enumerate(zip(self.tower_w, self.tower_b)):
            z = torch.matmul(z, w) + bias  # (r, k, b, t)
            if i < len(self.tower_w) - 1:
                z = torch.relu(z)
        return MixtureOutput(preds=z.squeeze(-1).transpose(1, 2), gates=gates)  # (r, b, k)

    # ------------------------------------------------------------------ facts
    def param_counts(self) -> dict[str, int]:
        """Per replica, split the way the paper counts (weights of expert and tower hidden layers)."""
        per = {name: p[0].numel() for name, p in self.named_parameters()}
        n_tower = len(self.tower_w)
        counts = {
            "expert_weights": per["expert_in_w"] + sum(v for n, v in per.items() if n.startswith("expert_w")),
            "expert_biases": sum(v for n, v in per.items() if n.startswith(("expert_in_b", "expert_b"))),
            "gate_weights": per.get("gate_w", 0),
            "tower_hidden_weights": sum(per[f"tower_w.{i}"] for i in range(n_tower - 1)),
            "tower_other": sum(per[f"tower_b.{i}"] for i in range(n_tower)) + per[f"tower_w.{n_tower - 1}"],
        }
        counts["total"] = sum(per.values())
        return counts

    def num_params(self, paper: bool = False) -> int:
        """Trainable parameters of one replica; paper=True counts as §5.1 does (13,056 for MMoE)."""
        c = self.param_counts()
        return c["expert_weights"] + c["tower_hidden_weights"] if paper else c["total"]

    def replica_state(self, r: int) -> dict[str, torch.Tensor]:
        """One seed's weights as a plain state dict (for safetensors export)."""
        return {name: p[r].detach().cpu().contiguous() for name, p in self.named_parameters()}
