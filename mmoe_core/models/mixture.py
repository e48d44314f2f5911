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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import gating
from .gating import replica_seeds


class MixtureOutput(NamedTuple):
    preds: torch.Tensor  # (r, b, k) one output per task (a logit for binary tasks)
    gates: torch.Tensor  # (r, b, k, e) each task's weights over experts; fixed routes for ungated models
    aux: torch.Tensor | None = None  # (r,) balancing loss (gating.balance_loss) when the model's balance is on


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
    top_k: int = 0  # experts each gate keeps per row (Shazeer et al. 2017); 0 = dense softmax
    gate_noise: bool = False  # trainable Gaussian noise on the gate logits while training

    @property
    def gated(self) -> bool:
        return self.n_gates > 0


def _uniform(generator: torch.Generator, shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    """nn.Linear's default initialisation, drawn from an explicit generator."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def stacked_towers(replicas: int, n_tasks: int, units: tuple[int, ...]) -> tuple[nn.ParameterList, nn.ParameterList]:
    """One tower per task, stacked on the task axis so that all towers run as one batched matmul per layer:
    weights (replicas, k, in, out) and biases (replicas, k, 1, out) for each step of `units`."""
    w = nn.ParameterList(
        nn.Parameter(torch.empty(replicas, n_tasks, units[i], units[i + 1])) for i in range(len(units) - 1)
    )
    b = nn.ParameterList(nn.Parameter(torch.empty(replicas, n_tasks, 1, units[i + 1])) for i in range(len(units) - 1))
    return w, b


@torch.no_grad()
def init_replicas(
    model: nn.Module, kind: str, seed: int | Sequence[int], replicas: int, fan_in: Callable[[str, torch.Tensor], int]
) -> None:
    """Replica r is initialised from its own seed alone (seed + r, or a sweep's list: gating.replica_seeds) with
    nn.Linear's default draw, so it equals a single run with that seed; `kind` salts the seed so that two model
    kinds trained side by side do not start alike."""
    salt = zlib.crc32(kind.encode())
    for r, s in enumerate(replica_seeds(seed, replicas)):
        g = torch.Generator().manual_seed(s * 1_000_003 + salt)
        for name, p in model.named_parameters():
            p[r].copy_(_uniform(g, tuple(p.shape[1:]), fan_in(name, p)))


def _route_plan(route: tuple[tuple[float, ...], ...] | None, n_tasks: int) -> list[int | tuple[float, ...]]:
    """Per task: the index of the one expert a one-hot route row reads, else the row itself (a weighted sum).
    Read from the spec's Python tuples so forward never syncs with the device to inspect the route buffer."""
    if route is None:
        return [("uniform",)] * n_tasks
    return [row.index(1.0) if sorted(row) == [0.0] * (len(row) - 1) + [1.0] else tuple(row) for row in route]


SMALL_BMM = 400  # ATen's CPU bmm runs products under this many multiply-adds in a scalar loop


def _mix(g: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Σ_e g_ke f_e for every row: (r, b, k, e) @ (r, b, e, h) -> (r, b, k, h).

    r*b tiny products. On CPU, ATen computes any product under SMALL_BMM multiply-adds (the paper's
    2 x 8 x 16 = 256) in a scalar loop, 3x slower than its blocked kernel; padding the gates with zero
    rows up to that size is the cheapest fix (the backward products grow the same way)."""
    k, e, h = g.shape[-2], g.shape[-1], f.shape[-1]
    if gating.cpu_forms(f) and k * e * h < SMALL_BMM:
        k_pad = -(-SMALL_BMM // (e * h))  # rows needed to reach the blocked kernel
        if k_pad <= 2 * k:
            pad = g.new_zeros(*g.shape[:-2], k_pad - k, e)
            return torch.matmul(torch.cat([g, pad], dim=-2), f)[..., :k, :]  # (r, b, k, h)
        return torch.stack([(g[..., i, :, None] * f).sum(dim=-2) for i in range(k)], dim=-2)
    return torch.matmul(g, f)


def _first_layer_plan(spec: MixtureSpec, route_plan: list) -> str:
    """How _mix_into_towers wires a spec: 'shared' mixture, 'select' one expert per task, or 'mix' per task."""
    if spec.n_gates == 1 or (not spec.gated and len(set(route_plan)) == 1):
        return "shared"
    if not spec.gated and all(isinstance(p, int) for p in route_plan):
        return "select"
    return "mix"


class MixtureModel(nn.Module):
    def __init__(self, spec: MixtureSpec, replicas: int = 1, seed: int | Sequence[int] = 0):
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
        noisy = spec.gated and spec.gate_noise
        self.noise_w = nn.Parameter(torch.empty(replicas, d, spec.n_gates * e)) if noisy else None
        self.balance = False  # set by zoo.build_model when balance_weight > 0: forward then returns `aux`
        self._noise_gen: dict[torch.device, list[torch.Generator]] = {}
        route = torch.tensor(spec.route, dtype=torch.float32) if spec.route is not None else torch.ones(k, e) / e
        self.register_buffer("route", route)  # (k, e)
        self._route_plan = _route_plan(spec.route, k)  # per task: the one expert it reads, or a row key
        self._first_layer_plan = _first_layer_plan(spec, self._route_plan)
        # Towers: one per task, stacked on k.
        self.tower_w, self.tower_b = stacked_towers(replicas, k, (h[-1], *spec.tower_units, 1))
        init_replicas(self, spec.kind, seed, replicas, self._fan_in)

    # ------------------------------------------------------------------ set-up
    def _fan_in(self, name: str, p: torch.Tensor) -> int:
        if name.startswith(("expert_in", "gate_w", "noise_w")):
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
        pre = torch.baddbmm(self.expert_in_b, x, self.expert_in_w)  # (r, b, e*h)
        logits = torch.bmm(x, self.gate_w) if self.gate_w is not None else None  # (r, b, g*e)
        f = pre.relu_().view(r, b, e, -1)  # (r, b, e, h); in place: baddbmm's backward does not read its output
        if len(self.expert_w):
            f = f.transpose(1, 2)  # (r, e, b, h)
            for w, bias in zip(self.expert_w, self.expert_b):
                f = (torch.matmul(f, w) + bias).relu_()  # (r, e, b, h')
            f = f.transpose(1, 2)  # (r, b, e, h)
        aux = None
        if logits is not None and (self.spec.top_k or self.noise_w is not None or self.balance):
            clean = logits.reshape(r, b, self.spec.n_gates, e)  # (r, b, g, e)
            noisy = self.noise_w is not None and self.training and torch.is_grad_enabled()
            noise = torch.bmm(x, self.noise_w).reshape(r, b, -1, e) if noisy else None
            weights, h, std = gating.noisy_top_k(
                clean,
                noise,
                self.spec.top_k,
                generator=gating.noise_generator(self._noise_gen, x.device, self.seed, self.replicas)
                if noisy
                else None,
            )
            aux = gating.balance_loss(weights, clean, h, std, self.spec.top_k) if self.balance else None
            gates = weights.expand(r, b, k, e)  # (r, b, k, e)
        elif logits is not None:
            weights = gating.softmax(logits.reshape(r, b, self.spec.n_gates, e))  # (r, b, g, e)
            gates = weights.expand(r, b, k, e)  # (r, b, k, e); g = 1 broadcasts
        else:
            weights = None
            gates = self.route.expand(r, b, k, e)  # (r, b, k, e)
        z = self._mix_into_towers(f, weights)  # (r, b, k, t)
        for i in range(1, len(self.tower_w)):
            z = self._tower_layer(torch.relu(z), i)  # (r, b, k, t')
        return MixtureOutput(preds=z.squeeze(-1), gates=gates, aux=aux)  # (r, b, k)

    def _mix_into_towers(self, f: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """Mixtures Σ_e g_ke f_e through each tower's first layer: (r, b, e, h) -> (r, b, k, t).

        Small batched matmuls are what CPUs run worst (a product with t = 8 output columns runs at a
        fifth of the speed of a wide one), so the wiring picks the cheapest exact form: tasks that read one
        mixture (Shared-Bottom, OMoE) share it and run all towers' first layers as one (h, k*t) matmul;
        one-hot routes (Single-task) just select an expert; per-task gates (MMoE) mix per task.
        """
        r, b, e, h = f.shape
        w, bias = self.tower_w[0], self.tower_b[0]  # (r, k, h, t), (r, k, 1, t)
        k, t = w.shape[1], w.shape[3]
        plan = self._first_layer_plan
        if plan == "shared":  # one mixture read by every task
            if weights is not None and gating.cpu_forms(f):  # OMoE's one gate (r, b, 1, e)
                m = (weights.transpose(-1, -2) * f).sum(dim=-2)  # (r, b, h): 20% faster than a 1-row _mix
            elif weights is not None:
                m = torch.matmul(weights, f).squeeze(-2)  # (r, b, h)
            elif f.shape[2] == 1:  # Shared-Bottom's one wide expert: a view, so backward copies nothing
                m = f.squeeze(2)  # (r, b, h)
            elif isinstance(self._route_plan[0], int):
                m = f[:, :, self._route_plan[0]]  # (r, b, h)
            else:
                m = (self.route[0, :, None] * f).sum(dim=2)  # (r, b, h)
            w_all = w.permute(0, 2, 1, 3).reshape(r, h, k * t)  # (r, h, k*t)
            return torch.baddbmm(bias.view(r, 1, k * t), m, w_all).view(r, b, k, t)  # (r, b, k, t)
        if plan == "select":  # task i reads expert route_plan[i] alone
            m = f[:, :, self._route_plan].transpose(1, 2).reshape(r * k, b, h)  # (r*k, b, h)
            z = torch.baddbmm(bias.view(r * k, 1, t), m, w.view(r * k, h, t))  # (r*k, b, t)
            return z.view(r, k, b, t).transpose(1, 2)  # (r, b, k, t)
        g = weights if weights is not None else self.route.expand(r, b, k, e)  # (r, b, k, e)
        m = _mix(g, f)  # (r, b, k, h)
        m = m.transpose(1, 2).reshape(r * k, b, h)  # (r*k, b, h)
        z = torch.baddbmm(bias.view(r * k, 1, t), m, w.view(r * k, h, t))  # (r*k, b, t)
        return z.view(r, k, b, t).transpose(1, 2)  # (r, b, k, t)

    def _tower_layer(self, z: torch.Tensor, i: int) -> torch.Tensor:
        """Tower layer i on (r, b, k, t) -> (r, b, k, t'); the 1-wide output layer as a product and sum."""
        w, bias = self.tower_w[i], self.tower_b[i]  # (r, k, t, t'), (r, k, 1, t')
        r, k, t, t_out = w.shape
        if t_out == 1:
            return ((z * w.view(r, 1, k, t)).sum(dim=-1) + bias.view(r, 1, k)).unsqueeze(-1)  # (r, b, k, 1)
        zt = z.transpose(1, 2).reshape(r * k, -1, t)  # (r*k, b, t)
        out = torch.baddbmm(bias.view(r * k, 1, t_out), zt, w.view(r * k, t, t_out))  # (r*k, b, t')
        return out.view(r, k, -1, t_out).transpose(1, 2)  # (r, b, k, t')

    # ------------------------------------------------------------------ facts
    def param_counts(self) -> dict[str, int]:
        """Per replica, split the way the paper counts (weights of expert and tower hidden layers)."""
        per = {name: p[0].numel() for name, p in self.named_parameters()}
        n_tower = len(self.tower_w)
        counts = {
            "expert_weights": per["expert_in_w"] + sum(v for n, v in per.items() if n.startswith("expert_w")),
            "expert_biases": sum(v for n, v in per.items() if n.startswith(("expert_in_b", "expert_b"))),
            "gate_weights": per.get("gate_w", 0) + per.get("noise_w", 0),
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
