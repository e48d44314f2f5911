"""A trained run's results as the JSON the CLI writes and the run store keeps: per model its losses (mean over
seeds and per seed), AUC for binary tasks, gradient agreement and routing specialisation. A diverged seed is
reported (null), never silently averaged in."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .training import ModelResult


def summarize(results: Iterable[ModelResult]) -> dict[str, dict]:
    """The per-model JSON of the CLI contract: test losses averaged over finite seeds."""
    out = {}
    for res in results:
        entry: dict = {
            "params": res.params,
            "paper_params": res.paper_params,
            "status": res.status,
            "message": res.message,
            "seconds": round(res.seconds, 3),
        }
        if res.test_loss is not None:
            entry["test_loss"] = _nanmean_rows(res.test_loss)
            entry["test_loss_mean"] = _finite_mean(res.test_loss)
            if res.test_loss.shape[0] > 1:
                entry["per_seed"] = [
                    {"seed_index": r, "test_loss": [_num(v) for v in row], "test_loss_mean": _finite_mean(row[None])}
                    for r, row in enumerate(res.test_loss)
                ]
        if res.grad_agreement is not None:
            entry["grad_agreement"] = _finite_mean_cols(res.grad_agreement)  # one number per task pair
            for seed in entry.get("per_seed", []):
                seed["grad_agreement"] = [_num(v) for v in res.grad_agreement[seed["seed_index"]]]
        if res.routing_specialisation is not None:
            entry["routing_specialisation"] = _finite_mean(res.routing_specialisation[:, None])
            for seed in entry.get("per_seed", []):
                seed["routing_specialisation"] = _num(res.routing_specialisation[seed["seed_index"]])
        if res.test_auc is not None and np.isfinite(res.test_auc).any():
            # per task column: a regression task's AUC is NaN by design and must not void the binary ones
            entry["test_auc"] = _finite_mean_cols(res.test_auc)
            entry["test_auc_mean"] = float(np.mean([v for v in entry["test_auc"] if v is not None]))
            for seed in entry.get("per_seed", []):
                seed["test_auc"] = [_num(v) for v in res.test_auc[seed["seed_index"]]]
        out[res.name] = entry
    return out


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _nanmean_rows(a: np.ndarray) -> list[float | None]:
    finite = np.isfinite(a).all(axis=1)
    if not finite.any():
        return [None] * a.shape[1]
    return [float(v) for v in a[finite].mean(axis=0)]


def _finite_mean_cols(a: np.ndarray) -> list[float | None]:
    """(r, k) -> per column the mean of its finite entries (None where a column has none)."""
    finite = np.isfinite(a)
    return [float(a[finite[:, k], k].mean()) if finite[:, k].any() else None for k in range(a.shape[1])]


def _finite_mean(a: np.ndarray) -> float | None:
    finite = np.isfinite(a).all(axis=1)
    return float(a[finite].mean()) if finite.any() else None
