"""Which model did better in one run, told only as far as the evidence goes.

Each task is compared by its own metric (test AUC for a binary task, higher is better; test MSE for a regression
task, lower is better), never by a mean of unlike losses. Seeds are paired (every model of a run trains on the
same seeds' data and batches), so a comparison is `studies.stats.paired_gap` over seeds: a diverged seed is a
loss for its model. A model is named the *winner* only when, on every task, its gap to every other model "holds"
(the 95% sign-test interval excludes zero), which needs 6 or more seeds; otherwise the text says who is ahead and
that it is too close to call.

Reads a run summary (`summary.summarize` + task names and kinds, as stored by the worker).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import MODEL_KINDS
from .studies import stats

MIN_SEEDS = 6  # the fewest seeds whose 95% sign-test interval can exclude zero (6 of 6 won: p = 0.031)


@dataclass(frozen=True)
class TaskMetric:
    name: str  # "AUC" | "MSE" | "loss"
    higher_is_better: bool
    key: str  # the summary field: test_auc or test_loss


@dataclass(frozen=True)
class TaskLead:
    """One task: the model ahead on its metric, the runner-up, and the paired evidence between them."""

    task: str
    metric: TaskMetric
    best: str
    best_value: float  # median over seeds (failed seeds count as the worst)
    runner: str | None
    runner_value: float
    gap: stats.PairedGap | None


def task_metrics(summary: Mapping[str, Any], n_tasks: int) -> list[TaskMetric]:
    """Each task's own metric: AUC for a binary task (when recorded), MSE for a regression task."""
    kinds = list(summary.get("task_kinds") or [])
    kinds += ["regression"] * (n_tasks - len(kinds))
    has_auc = any(e.get("test_auc") for e in (summary.get("models") or {}).values())
    out = []
    for kind in kinds[:n_tasks]:
        if kind == "binary" and has_auc:
            out.append(TaskMetric("AUC", True, "test_auc"))
        elif kind == "binary":
            out.append(TaskMetric("loss", False, "test_loss"))
        else:
            out.append(TaskMetric("MSE", False, "test_loss"))
    return out


def seed_values(entry: Mapping[str, Any], task: int, metric: TaskMetric) -> np.ndarray:
    """(seeds,) the model's metric on `task` per seed; NaN where the seed failed (diverged, never tested)."""
    rows = entry.get("per_seed")
    if rows:
        values = [_at(s.get(metric.key), task) for s in rows]
    else:
        values = [_at(entry.get(metric.key), task)]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def seeds_of(summary: Mapping[str, Any] | None) -> int:
    """How many seeds the run's models trained (1 without a per-seed breakdown)."""
    entries = (summary or {}).get("models") or {}
    return max((len(e.get("per_seed") or []) or 1 for e in entries.values()), default=0)


def leads(summary: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> list[TaskLead]:
    """Per task, the model ahead by median (failed seeds worst) and its paired gap to the runner-up."""
    entries = dict((summary or {}).get("models") or {})
    if not entries:
        return []
    n_tasks = _n_tasks(summary, names)
    names = list(names or []) or [f"Task {k + 1}" for k in range(n_tasks)]
    n = seeds_of(summary)
    out = []
    for k, metric in enumerate(task_metrics(summary, n_tasks)):
        values = {m: _pad(seed_values(e, k, metric), n) for m, e in entries.items()}
        ranked = sorted(values, key=lambda m: _badness(values[m], metric))
        best, runner = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        gap = stats.paired_gap(values[best], values[runner], metric.higher_is_better) if runner else None
        out.append(
            TaskLead(
                task=names[k] if k < len(names) else f"Task {k + 1}",
                metric=metric,
                best=best,
                best_value=_median(values[best], metric),
                runner=runner,
                runner_value=_median(values[runner], metric) if runner else float("nan"),
                gap=gap,
            )
        )
    return out


def winner(summary: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> str | None:
    """The model that beats every other model on every task with a "holds" verdict, else None."""
    entries = (summary or {}).get("models") or {}
    found = leads(summary, names)
    if len(entries) < 2 or not found or len({lead.best for lead in found}) != 1:
        return None
    best = found[0].best
    n = seeds_of(summary)
    for k, lead in enumerate(found):
        mine = _pad(seed_values(entries[best], k, lead.metric), n)
        for other, e in entries.items():
            if other == best:
                continue
            theirs = _pad(seed_values(e, k, lead.metric), n)
            if stats.paired_gap(mine, theirs, lead.metric.higher_is_better).verdict != stats.HOLDS:
                return None
    return best


def verdict_text(summary: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> str | None:
    """One paragraph: the winner with its evidence, or who leads each task and why that is not yet a win."""
    found = leads(summary, names)
    if not found:
        return None
    n = seeds_of(summary)
    best = winner(summary, names)
    parts = [_lead_text(lead, n) for lead in found if lead.runner is not None]
    if not parts:
        lead = found[0]
        return f"{_label(lead.best)}: test {lead.metric.name} on {lead.task} {_value(lead.best_value, lead.metric)}."
    if best:
        return f"{_label(best)} wins on every task, on paired seeds: " + "; ".join(parts) + "."
    if n < 2:
        return (
            "Ahead on one seed: "
            + "; ".join(parts)
            + f". One seed cannot tell a real difference from luck: run {MIN_SEEDS} or more seeds to name a winner."
        )
    advice = f" (with {n} seeds no 95% interval can exclude zero; run {MIN_SEEDS} or more)" if n < MIN_SEEDS else ""
    return f"No clear winner over {n} seeds{advice}: " + "; ".join(parts) + "."


def _lead_text(lead: TaskLead, n: int) -> str:
    m = lead.metric
    head = (
        f"on {lead.task}, {_label(lead.best)} {m.name} {_value(lead.best_value, m)} vs "
        f"{_label(lead.runner or '')} {_value(lead.runner_value, m)}"
    )
    g = lead.gap
    if g is None or n < 2:
        return head
    failed = f", {g.failed_b} failed seeds for {_label(lead.runner or '')}" if g.failed_b else ""
    failed += f", {g.failed_a} for {_label(lead.best)}" if g.failed_a else ""
    call = "a clear lead" if g.verdict == stats.HOLDS else "too close to call"
    return f"{head} (median over seeds; ahead on {g.wins} of {g.pairs} seeds{failed}: {call})"


def _label(model: str) -> str:
    return MODEL_KINDS.get(model, model)


def _value(v: float, metric: TaskMetric) -> str:
    if not np.isfinite(v):
        return "failed"
    return f"{v:.4f}" if metric.name == "AUC" else f"{v:.4g}"


def _at(values: Any, k: int) -> Any:
    return values[k] if isinstance(values, (list, tuple)) and k < len(values) else None


def _pad(v: np.ndarray, n: int) -> np.ndarray:
    """A model with fewer recorded seeds (none when it failed outright): its missing seeds count as failed."""
    return np.concatenate([v, np.full(max(n - len(v), 0), np.nan)]) if len(v) < n else v


def _badness(v: np.ndarray, metric: TaskMetric) -> tuple[float, int]:
    """Sort key: median with failures worst, then fewer failures."""
    signed = -v if metric.higher_is_better else v
    return stats.median(stats.as_losses(signed)), int((~np.isfinite(v)).sum())


def _median(v: np.ndarray, metric: TaskMetric) -> float:
    signed = stats.median(stats.as_losses(-v if metric.higher_is_better else v))
    return -signed if metric.higher_is_better else signed


def _n_tasks(summary: Mapping[str, Any] | None, names: Sequence[str] | None) -> int:
    if names:
        return len(names)
    entries = (summary or {}).get("models") or {}
    return max((len(e.get("test_loss") or []) for e in entries.values()), default=0) or len(
        (summary or {}).get("task_kinds") or []
    )
