"""Expert-utilisation diagnostics: is routing collapsing onto one expert, are the experts copies of each other?

Pure functions of the gate weights on the trainer's fixed probe batch (replica 0) and of the experts' first-layer
weights. The trainer stores them as metric rows with split "probe" (task -1 for model-wide numbers) beside the
gate snapshots, so the Playground can draw them live and warn:

- load_k,e = mean_b G_k(x_b)_e                  per-expert load of task k's gate (sums to 1 over e)
- max_load_k = max_e load_k,e                   collapse when > COLLAPSE_MAX_LOAD
- load_entropy_k = H(load_k) / log n_k          0 = one expert takes everything, 1 = uniform; collapse < COLLAPSE_ENTROPY
- gate_entropy_k = mean_b H(G_k(x_b)) / log n_k how sharp each row's routing is (low is fine for top-k)
- importance_cv2_k = CV²(Σ_b G_k(x_b))          Shazeer et al. 2017's balancing quantity (0 = balanced)
- expert_cosine = mean_{i<j} cos(W_i, W_j)      experts' flattened first-layer weights; copies when > COPY_COSINE

n_k is the number of experts task k's gate may use (CGC/PLE mask the others). Shapes: b probe rows, k tasks,
e experts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # the tables' callers hold DataFrames already; training, which records, never needs pandas
    import pandas as pd

COLLAPSE_MAX_LOAD = 0.9  # one expert takes over 90% of a task's gate weight
COLLAPSE_ENTROPY = 0.2  # normalised entropy of the load below this: near one expert
COPY_COSINE = 0.95  # experts' weights this aligned compute nearly the same function
PROBE_SPLIT = "probe"  # the metrics table's split for these rows
PER_TASK = ("max_load", "load_entropy", "gate_entropy", "importance_cv2")
MODEL_WIDE = ("expert_cosine",)


def _allowed(gates: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """(k, e) bool: the experts each task's gate may use (all unless a mask is given)."""
    return np.ones(gates.shape[1:], dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy over the last axis (nats), 0·log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def expert_load(gates: np.ndarray) -> np.ndarray:
    """(b, k, e) gate weights -> (k, e) mean weight per task and expert."""
    return np.asarray(gates, dtype=np.float64).mean(axis=0)


def load_entropy(gates: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(k,) entropy of each task's load over its allowed experts / log(their number); NaN with one expert."""
    n = _allowed(gates, allowed).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 1, _entropy(expert_load(gates)) / np.log(np.maximum(n, 2)), np.nan)


def gate_entropy(gates: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(k,) mean over rows of each row's gate entropy / log(allowed experts); NaN with one expert."""
    n = _allowed(gates, allowed).sum(axis=1)
    rows = _entropy(np.asarray(gates, dtype=np.float64)).mean(axis=0)  # (k,)
    return np.where(n > 1, rows / np.log(np.maximum(n, 2)), np.nan)


def importance_cv2(gates: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(k,) CV² = var / mean² of Σ_b G_k,e over task k's allowed experts (population variance)."""
    imp = np.asarray(gates, dtype=np.float64).sum(axis=0)  # (k, e)
    mask = _allowed(gates, allowed)
    out = np.full(imp.shape[0], np.nan)
    for k in range(imp.shape[0]):
        v = imp[k, mask[k]]
        if v.size > 1 and v.mean() > 0:
            out[k] = v.var() / v.mean() ** 2
    return out


def mean_pairwise_cosine(weights: np.ndarray) -> float:
    """(e, n) one row per expert -> mean cosine over the e(e-1)/2 pairs; NaN with fewer than 2 experts."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[0] < 2:
        return float("nan")
    unit = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    return float(cos[np.triu_indices(w.shape[0], k=1)].mean())


def diagnose(
    gates: np.ndarray, expert_weights: np.ndarray | None = None, allowed: np.ndarray | None = None
) -> dict[str, np.ndarray | float]:
    """Every diagnostic of one model at one step: per-task arrays (k,) and the model-wide expert cosine."""
    load = expert_load(gates)
    mask = _allowed(gates, allowed)
    return {
        "max_load": np.where(mask.sum(axis=1) > 1, np.where(mask, load, 0.0).max(axis=1), np.nan),
        "load_entropy": load_entropy(gates, allowed),
        "gate_entropy": gate_entropy(gates, allowed),
        "importance_cv2": importance_cv2(gates, allowed),
        "expert_cosine": float("nan") if expert_weights is None else mean_pairwise_cosine(expert_weights),
    }


def metric_rows(model: str, step: int, diag: Mapping[str, np.ndarray | float]) -> list[tuple]:
    """The trainer's MetricRow tuples (model, step, replica 0, task, 'probe', name, value); task -1 = model-wide."""
    rows = [
        (model, step, 0, k, PROBE_SPLIT, name, float(v))
        for name in PER_TASK
        for k, v in enumerate(np.atleast_1d(diag[name]))
    ]
    return rows + [(model, step, 0, -1, PROBE_SPLIT, name, float(diag[name])) for name in MODEL_WIDE]


def expert_weights(model: torch.nn.Module, r: int = 0) -> np.ndarray | None:
    """(e, d·h) replica r's experts' first-layer weights, flattened; None for a one-expert model."""
    if hasattr(model, "expert_first_layer"):
        w = model.expert_first_layer(r)
    else:  # MixtureModel: layer 0 fused as (d, e*h)
        e = model.spec.n_experts
        w = model.expert_in_w[r].detach().view(model.spec.input_dim, e, -1).transpose(0, 1).reshape(e, -1)
    return None if w.shape[0] < 2 else w.float().cpu().numpy()


def gate_mask(model: torch.nn.Module) -> np.ndarray | None:
    """(k, e) the experts each task's returned gate may use (CGC/PLE's last level), or None for all."""
    if hasattr(model.spec, "gate_mask"):
        return np.array(model.spec.gate_mask(shared_gate=False), dtype=bool)
    return None


def latest(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metric rows -> the probe diagnostics at each model's last probed step (model, task, metric, value)."""
    probe = metrics[metrics["split"] == PROBE_SPLIT]
    if probe.empty:
        return probe[["model", "step", "task", "metric", "value"]]
    last = probe.groupby("model")["step"].transform("max")
    return probe[probe["step"] == last][["model", "step", "task", "metric", "value"]].reset_index(drop=True)


def warning_messages(
    latest_rows: pd.DataFrame, labels: Mapping[str, str] | None = None, task_names: list[str] | None = None
) -> list[str]:
    """Plain-language warnings from `latest(...)`: routing collapsed onto one expert, or experts as copies."""
    out = []
    labels = labels or {}
    for model, g in latest_rows.groupby("model", sort=False):
        name = labels.get(model, model)
        value = {(row.metric, row.task): row.value for row in g.itertuples()}
        tasks = sorted({t for (_, t) in value if t >= 0})
        for t in tasks:
            top, ent = value.get(("max_load", t), np.nan), value.get(("load_entropy", t), np.nan)
            if top > COLLAPSE_MAX_LOAD or ent < COLLAPSE_ENTROPY:
                task = task_names[t] if task_names and t < len(task_names) else f"task {t + 1}"
                out.append(
                    f"{name}: routing for {task} has collapsed onto one expert (it takes {top:.0%} of the "
                    f"gate weight; load entropy {ent:.2f}). Try more steps, a lower learning rate or a "
                    "balancing loss (balance_weight)."
                )
        cos = value.get(("expert_cosine", -1), np.nan)
        if cos > COPY_COSINE:
            out.append(
                f"{name}: the experts have become copies of each other (mean pairwise cosine of their "
                f"weights {cos:.2f} > {COPY_COSINE}); extra experts add nothing here."
            )
    return out
