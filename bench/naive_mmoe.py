"""A naive MMoE as most tutorials and the peer libraries write it: experts in an nn.ModuleList run in a
Python loop, one gate and one tower module per task. The benchmark's reference point for what the fused
expert bank in mmoe_core.models.mixture buys; never imported by the library.

Shapes: b batch, d input, e experts, h expert hidden, k tasks, t tower hidden.
"""

from __future__ import annotations

import torch
from torch import nn


class NaiveMMoE(nn.Module):
    def __init__(
        self, input_dim: int = 100, n_experts: int = 8, expert_units: int = 16, n_tasks: int = 2, tower_units: int = 8
    ):
        super().__init__()
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(input_dim, expert_units), nn.ReLU()) for _ in range(n_experts)
        )
        self.gates = nn.ModuleList(nn.Linear(input_dim, n_experts, bias=False) for _ in range(n_tasks))
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(expert_units, tower_units), nn.ReLU(), nn.Linear(tower_units, 1))
            for _ in range(n_tasks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, d) -> (b, k), one output per task."""
        f = torch.stack([expert(x) for expert in self.experts], dim=1)  # (b, e, h)
        outs = []
        for gate, tower in zip(self.gates, self.towers):
            g = torch.softmax(gate(x), dim=-1)  # (b, e)
            mixed = torch.bmm(g.unsqueeze(1), f).squeeze(1)  # (b, h)
            outs.append(tower(mixed))  # (b, 1)
        return torch.cat(outs, dim=-1)  # (b, k)
