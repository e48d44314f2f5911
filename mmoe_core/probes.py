"""What a recorded point measures beyond the losses: the gate heatmaps, expert-use diagnostics, routing
specialisation and gradient agreement. Apart from training.py because they are a second idea (reading a model),
not training it; `Trainer` takes them as a mixin and calls them from `record()`.

Every probe reads a fixed slice of validation rows (PROBE_ROWS per replica), so points are comparable over steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from . import diagnostics
from .gate_difference import task_difference
from .gradients import grad_agreement
from .specialisation import expert_alignment, has_specialisation, routing_specialisation

if TYPE_CHECKING:
    from .data import TaskData
    from .models import MixtureModel
    from .training import ModelResult
    from .weighting import LossWeighting

MetricRow = tuple[str, int, int, int, str, str, float]  # model, step, replica, task, split, metric, value
GateRow = tuple[str, int, int, int, float]  # model, step, task, expert, weight (replica 0, probe batch)
PROBE_ROWS = 512


class Probes:
    """The probes of a Trainer. They read what Trainer.__init__ sets up (below) and call its `_parts` (a replica
    slice and its inputs per chunk) and `task_losses`."""

    data: TaskData
    models: dict[str, MixtureModel]
    results: dict[str, ModelResult]
    weighting: LossWeighting
    step_count: int
    _first: dict[str, nn.Module]  # the replica-0 slice of each model (the seed the heatmaps show)
    _chunks: list[tuple[int, int]]  # the replica chunks a step runs
    _x_val: torch.Tensor  # (q, n, d) validation inputs per data replica
    _y_val: torch.Tensor  # (q, n, k)
    _directions: torch.Tensor | None  # (q, d, k) task directions of synthetic data
    _alignment_rows: list[GateRow]

    @torch.no_grad()
    def probe_gates(self) -> dict[str, np.ndarray]:
        """(k, e) mean gate weight per task on a fixed validation batch, for replica 0 (expert ids differ by seed)."""
        x = self.data.x_val[0, :PROBE_ROWS]  # (p, d)
        out = {}
        for name, model in self.models.items():
            if model.spec.gated:
                out[name] = self._first[name](x).gates[0].mean(dim=0).cpu().numpy()  # (p, k, e) -> (k, e)
        return out

    @torch.no_grad()
    def probe_diagnostics(self) -> list[MetricRow]:
        """Expert-utilisation diagnostics (mmoe_core.diagnostics) of every running gated model, replica 0, on
        the probe batch, as metric rows with split 'probe'."""
        x = self.data.x_val[0, :PROBE_ROWS]  # (p, d)
        rows: list[MetricRow] = []
        for name, model in self.models.items():
            if model.spec.gated and self.results[name].status == "running":
                gates = self._first[name](x).gates[0].float().cpu().numpy()  # (p, k, e)
                diag = diagnostics.diagnose(gates, diagnostics.expert_weights(model), diagnostics.gate_mask(model))
                rows += diagnostics.metric_rows(name, self.step_count, diag)
        return rows

    @torch.no_grad()
    def probe_specialisation(self) -> list[MetricRow]:
        """Routing specialisation (mmoe_core.specialisation) of every running gated mixture, per replica, on its
        own first PROBE_ROWS validation rows: metric 'routing_specialisation', split 'probe', task -1, and beside
        it the gates' task difference per replica ('gate_task_difference', what the p-sweep plots; CGC/PLE too,
        from their last level's task gates). Synthetic data only (the task directions are known there)."""
        rows: list[MetricRow] = []
        if self._directions is None or self.data.n_tasks < 2:
            return rows
        x = self._x_val[:, :PROBE_ROWS]
        for name, model in self.models.items():
            res = self.results[name]
            if res.status != "running" or not model.spec.gated:
                continue
            gates = torch.cat([part(xs).gates.mean(dim=1) for part, xs in self._parts(name, x)])  # (r, k, e)
            difference = task_difference(gates.double().cpu().numpy())  # (r,)
            rows += long_rows(name, self.step_count, "probe", "gate_task_difference", difference[:, None])
            if not has_specialisation(model):  # CGC/PLE: experts in levels, each task's own and shared ones
                continue
            alignment = expert_alignment(model, self._directions)
            values = routing_specialisation(gates, alignment, model.spec.n_gates).numpy()
            res.routing_specialisation = values
            first = alignment[0].cpu().numpy()  # (e, k): the expert map of the seed the heatmaps show
            self._alignment_rows += [
                (name, self.step_count, k, i, float(first[i, k]))
                for i in range(first.shape[0])
                for k in range(first.shape[1])
            ]
            rows += long_rows(name, self.step_count, "probe", "routing_specialisation", values[:, None])
        return [(m, s, r, -1, split, metric, v) for (m, s, r, _, split, metric, v) in rows]

    def probe_agreement(self) -> list[MetricRow]:
        """Gradient agreement (mmoe_core.gradients) of every running model, per replica, on its own first
        PROBE_ROWS validation rows; split 'probe', the task column holds the task-pair index. A weighting
        method's task weights are recorded beside it (metric 'task_weight')."""
        rows: list[MetricRow] = []
        if self.data.n_tasks < 2:
            return rows
        x, y = self._x_val[:, :PROBE_ROWS], self._y_val[:, :PROBE_ROWS]
        for name in self.models:
            res = self.results[name]
            if res.status != "running":
                continue
            found: dict[str, list[torch.Tensor]] = {}
            for (part, xs), (r0, r1) in zip(self._parts(name, x), self._chunks):
                with torch.enable_grad():
                    preds = part(xs).preds
                    per_task = self.task_losses(preds, y[r0:r1] if y.shape[0] > 1 else y.expand(r1 - r0, -1, -1))
                    for layer, cos in grad_agreement(part, per_task).items():
                        found.setdefault(layer, []).append(cos)
            for j, (layer, parts) in enumerate(found.items()):
                cos = torch.cat(parts)  # (r, pairs)
                values = cos.detach().cpu().numpy()
                if j == 0:
                    res.grad_agreement = values
                metric = "grad_agreement" if j == 0 else f"grad_agreement_{layer.replace(' ', '')}"
                rows += long_rows(name, self.step_count, "probe", metric, values)
            weights = self.weighting.weights(name)
            if weights is not None:
                rows += long_rows(name, self.step_count, "probe", "task_weight", weights.cpu().numpy())
        return rows


def long_rows(model: str, step: int, split: str, metric: str, values: np.ndarray) -> list[MetricRow]:
    """(r, k) array -> long rows; NaN stays NaN (a diverged seed is recorded, not dropped)."""
    return [
        (model, step, r, k, split, metric, float(values[r, k]))
        for r in range(values.shape[0])
        for k in range(values.shape[1])
    ]
