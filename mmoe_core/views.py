"""Pure helpers that shape RunStore data for the pages: curve frames with mean ± spread over seeds, gate
matrices, the results table, which model won, the runs list. No streamlit here, so every rule a page shows
is tested without a browser; the pages only lay these out.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import compare
from .config import MODEL_KINDS, RunConfig
from .gate_difference import task_difference
from .hygiene import csv_safe, dot_label
from .source_names import display_name

CURVE_COLUMNS = ["model", "task", "split", "step", "mean", "sd", "n"]


def model_label(name: str) -> str:
    return MODEL_KINDS.get(name, name)


def task_names(run: Mapping[str, Any] | None, n_tasks: int) -> list[str]:
    """Names stored with the run (real data names its targets); otherwise Task 1..k."""
    summary = (run or {}).get("summary") or {}
    names = summary.get("task_names") if isinstance(summary, dict) else None
    if names and len(names) == n_tasks:
        return [str(n)[:1].upper() + str(n)[1:] for n in names]
    return [f"Task {k + 1}" for k in range(n_tasks)]


def n_tasks_of(metrics: pd.DataFrame, config: RunConfig) -> int:
    """Tasks actually recorded (a data source may change k); the config's count before any point exists."""
    if len(metrics):
        return int(metrics["task"].max()) + 1
    return config.n_tasks


# ---------------------------------------------------------------------------------------------- curves
def curve_frame(metrics: pd.DataFrame, metric: str = "loss", splits: Sequence[str] = ("train", "val")) -> pd.DataFrame:
    """Long metric rows -> one row per (model, task, split, step): mean and sd over the seeds whose value is
    finite, and how many there were. A diverged seed (NaN) drops out of the mean instead of poisoning it."""
    rows = metrics[(metrics["metric"] == metric) & metrics["split"].isin(list(splits))]
    rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
    if rows.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    g = rows.groupby(["model", "task", "split", "step"], sort=True)["value"]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)  # one seed: no spread
    return out[CURVE_COLUMNS]


def point_count(metrics: pd.DataFrame) -> int:
    """Recorded steps so far: what the live view reports as 'points'."""
    return int(metrics["step"].nunique()) if len(metrics) else 0


# ---------------------------------------------------------------------------------------------- gates
def gate_matrix(gates: pd.DataFrame, model: str, step: int | None = None, value: str = "weight") -> pd.DataFrame:
    """(tasks x experts) mean gate weights of one model at `step` (default: its latest snapshot); with
    value="value", the same from the store's expert alignment rows."""
    rows = gates[gates["model"] == model]
    if rows.empty:
        return pd.DataFrame()
    step = int(rows["step"].max()) if step is None else step
    at = rows[rows["step"] == step]
    return at.groupby(["task", "expert"])[value].mean().unstack("expert").sort_index()  # (k, e)


def gated_models(gates: pd.DataFrame, order: Sequence[str] = tuple(MODEL_KINDS)) -> list[str]:
    present = set(gates["model"]) if len(gates) else set()
    return [m for m in order if m in present] + sorted(present - set(order))


def gate_specialisation(matrix: pd.DataFrame) -> float | None:
    """Mean total-variation distance between task pairs' gate distributions: 0 = all tasks use the experts
    alike (OMoE by construction), 1 = disjoint experts. The one number behind 'MMoE's gates specialise'."""
    if matrix.shape[0] < 2:
        return None
    return float(task_difference(matrix.to_numpy(dtype=float)))


# ---------------------------------------------------------------------------------------------- results
def results_table(
    summary: Mapping[str, Any] | None, names: Sequence[str], models: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per model: test loss (and AUC for binary tasks) per task, parameters, seconds, status. With more
    than one seed each value is "mean ± sd" over the seeds that trained, and the failed seeds are counted. A mean
    over tasks is shown only when every task is scored alike (all regression: MSE); never a mean of an MSE with
    a log-loss. The star marks a winner only when the evidence supports one (compare.winner)."""
    entries = (summary or {}).get("models") or {}
    best = compare.winner(summary, names)
    n_seeds = compare.seeds_of(summary)
    kinds = list((summary or {}).get("task_kinds") or [])
    alike = len(set(kinds)) <= 1
    rows = []
    for model, e in entries.items():
        row: dict[str, Any] = {"Model": model_label(model) + (" ★" if model == best else "")}
        for k, name in enumerate(names):
            row[f"{name} test loss"] = _cell(e, "test_loss", k, n_seeds)
        for k, name in enumerate(names):
            auc = _cell(e, "test_auc", k, n_seeds)
            if auc is not None:
                row[f"{name} test AUC"] = auc
        if alike:
            row["Mean test loss"] = _num(e.get("test_loss_mean"))
        if n_seeds > 1:
            row["Failed seeds"] = sum(1 for s in e.get("per_seed") or [] if _num(s.get("test_loss_mean")) is None)
        row["Parameters"] = e.get("params")
        row["Paper count"] = e.get("paper_params")
        row["Seconds"] = e.get("seconds")
        row["Status"] = e.get("status", "")
        if e.get("message"):
            row["Status"] += f": {e['message']}"
        rows.append(row)
    if not rows and models is not None and len(models):  # a run that never finished: what the store knows
        for m in models.itertuples():
            rows.append(
                {
                    "Model": model_label(m.model),
                    "Parameters": m.params,
                    "Paper count": m.paper_params,
                    "Seconds": m.seconds,
                    "Status": m.status + (f": {m.message}" if m.message else ""),
                }
            )
    return pd.DataFrame(rows)


def _cell(entry: Mapping[str, Any], key: str, k: int, n_seeds: int) -> float | str | None:
    """One seed: the number. Several: "mean ± sd" over the finite seeds (None when there is no such value)."""
    values = entry.get(key) or []
    mean = _num(values[k]) if k < len(values) else None
    if n_seeds <= 1 or mean is None:
        return mean
    per = [_num((s.get(key) or [None] * (k + 1))[k]) for s in entry.get("per_seed") or []]
    finite = [v for v in per if v is not None]
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return f"{mean:.4f} ± {sd:.4f}"


def winner(summary: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> str | None:
    """The model the evidence names the winner (compare.winner: ahead on every task's own metric against every
    other model, the 95% paired interval excluding zero), or None, which is the answer for a single seed."""
    return compare.winner(summary, names)


def winner_text(summary: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> str | None:
    """The results sentence: the winner with its evidence, or who leads each task and that it is too close to
    call (compare.verdict_text). None with nothing to compare."""
    return compare.verdict_text(summary, names)


# ---------------------------------------------------------------------------------------------- runs
def config_summary(config: RunConfig, summary: Mapping[str, Any] | None = None) -> str:
    """A short line that tells runs apart in a list. `rows` is a synthetic-data setting: for Census or a CSV the
    row count is the data's own, known once the run has loaded it (its summary's train_rows), else left out."""
    models = ", ".join(model_label(m) for m in config.models)
    seeds = f", {config.seeds} seeds" if config.seeds > 1 else ""
    if config.dataset == "synthetic" and config.sweep:
        data = f"sweep p = {', '.join(f'{p:g}' for p in config.sweep)} · {config.rows:,} rows"
        seeds = f", {config.seeds} seeds at each p ({config.replicas} models of each kind)"
    elif config.dataset == "synthetic":
        data = f"p = {config.correlation:g} · {config.rows:,} rows"
    else:
        data = display_name(config.dataset)
        rows = (summary or {}).get("train_rows") if isinstance(summary, Mapping) else None
        data += f" · {int(rows):,} training rows" if isinstance(rows, int) else ""
    if config.sweep_lr:
        seeds += f", learning rates {', '.join(f'{lr:g}' for lr in config.sweep_lr)}"
    return f"{data} · {models} · {config.steps:,} steps{seeds}"


def run_axes(config: RunConfig) -> str:
    """'p = 0.5, 0.9, lr = 0.001': the correlations and rates a (possibly batched) run trains at."""
    ps = ", ".join(f"{p:g}" for p in config.sweep or (config.correlation,))
    return f"p = {ps}, lr = {', '.join(f'{lr:g}' for lr in config.sweep_lr or (config.lr,))}"


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The Runs page list: newest first, one readable row per stored run."""
    rows = []
    for r in runs.itertuples():
        try:
            cfg = RunConfig.from_json(r.config)
            summary = json.loads(r.summary) if isinstance(r.summary, str) and r.summary else None
            what = config_summary(cfg, summary)
        except (ValueError, TypeError):
            what, summary = "(config from another version)", None
        best = winner(summary)
        rows.append(
            {
                "Run": r.id,
                "Created": dt.datetime.fromtimestamp(r.created),
                "Status": "paused" if r.status == "running" and getattr(r, "pace", None) == "pause" else r.status,
                "Configuration": what,
                "Winner": model_label(best) if best else "",
                "Label corr.": _num(r.label_correlation),
                "Rows/s": _num(r.rows_per_s),
                "Source": r.label or r.kind,
            }
        )
    cols = [
        "Run",
        "Created",
        "Status",
        "Configuration",
        "Winner",
        "Label corr.",
        "Rows/s",
        "Source",
    ]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------- text
def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def progress_text(state: Any) -> str:
    """The line under the progress bar: step, rows/s and time left (a RunState from jobs.run_state)."""
    if state.status == "queued":
        return f"Waiting in the queue, position {state.queue_position}" if state.queue_position else "Waiting"
    if getattr(state, "paused", False):
        return f"Paused at step {state.step:,} of {state.total_steps:,} · Resume goes on, Step adds one point"
    parts = [f"step {state.step:,} of {state.total_steps:,}"]
    if state.rows_per_s:
        parts.append(f"{state.rows_per_s:,.0f} rows/s")
    if state.status == "running":
        parts.append(f"{format_duration(state.eta_s)} left" if state.eta_s is not None else "starting")
    else:
        parts.append(state.status)
    return " · ".join(parts)


def refresh_mode(state: Any, free_slot: bool, has_points: bool) -> str | None:
    """How eagerly a page watching a run should look again (a RunState from jobs.run_state): "first_point" while
    no point is drawn yet, including a run next in line with a free slot, which a worker claims within ~0.1 s;
    "queued" behind other runs, where many waiting pages must not load the server; "live" while it trains;
    None once it has ended."""
    if state is None or state.finished:
        return None
    if state.status == "queued":
        return "first_point" if state.queue_position == 1 and free_slot else "queued"
    return "live" if has_points else "first_point"


def metrics_csv(metrics: pd.DataFrame, names: Sequence[str] | None = None) -> bytes:
    """Every recorded point, long format, with readable model and task names alongside the ids."""
    out = metrics.copy()
    out.insert(1, "model_label", out["model"].map(model_label))
    if names is not None:
        out["task_name"] = out["task"].map(lambda k: names[k] if 0 <= k < len(names) else f"Task {k + 1}")
    return csv_safe(out).to_csv(index=False).encode()  # a task named "=cmd|..." must not run in a spreadsheet


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ---------------------------------------------------------------------------------------------- diagram
MAX_DRAWN_EXPERTS = 6  # beyond this the diagram draws the first ones and a "…" node


def model_dot(spec: Any, names: Sequence[str] | None = None) -> str:
    """Graphviz DOT source of one configured model (a models.MixtureSpec), drawn bottom-up like the paper's
    Figure 1: input, experts (or the shared bottom), gates, the per-task mix, towers, outputs. CGC/PLE specs
    (with `gate_mask` and `sources`) draw shared and task experts and only the edges each gate may use."""
    k, e, kind = spec.n_tasks, spec.n_experts, spec.kind
    names = [dot_label(n) for n in names] if names else [f"Task {i + 1}" for i in range(k)]  # user text: quoted
    sizes = "→".join(str(u) for u in (spec.input_dim, *spec.expert_units))
    tower = "→".join(str(u) for u in (spec.expert_units[-1], *spec.tower_units, 1))
    mask = spec.gate_mask(False) if hasattr(spec, "gate_mask") else None  # (k, e) which experts each gate sees
    owner = spec.sources() if hasattr(spec, "sources") else None  # (e,) owning task; k = shared
    drawn = list(range(min(e, 2 * MAX_DRAWN_EXPERTS if mask else MAX_DRAWN_EXPERTS)))
    lines = [
        "digraph model {",
        "  rankdir=BT; nodesep=0.25; ranksep=0.5;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=13, color="#555555"];',
        '  edge [color="#888888", arrowsize=0.6];',
        f'  x [label="Input x\\n(d = {spec.input_dim})", fillcolor="#EEEEEE", ordering=out];',
    ]
    for i in drawn:
        if kind == "single_task":
            label = f"Bottom for {names[i] if i < k else i + 1}\\n{sizes}, ReLU"
        elif kind == "shared_bottom":
            label = f"Shared bottom\\n{sizes}, ReLU"
        elif owner is not None:
            who = f"Shared expert {i + 1}" if owner[i] == k else f"Expert of {names[owner[i]]}"
            label = f"{who}\\n{sizes}, ReLU"
        else:
            label = f"Expert {i + 1}\\n{sizes}, ReLU"
        lines.append(f'  e{i} [label="{label}", fillcolor="#DCE7F3"];')
    if e > len(drawn):
        lines.append(f'  emore [label="… {e - len(drawn)} more", shape=plaintext, style=""];')
    for t in range(k):
        lines.append(f'  t{t} [label="Tower ({names[t]})\\n{tower}", fillcolor="#DFF0D8"];')
        lines.append(f'  y{t} [label="{names[t]}", shape=ellipse, fillcolor="#FFFFFF"];')
        lines.append(f"  t{t} -> y{t};")
    gates = list(range(spec.n_gates))
    for g in gates:
        who = names[g] if spec.n_gates == k else "all tasks"
        seen = sum(mask[g]) if mask else e  # a CGC/PLE gate mixes the shared experts and its task's own
        lines.append(f'  g{g} [label="Gate ({who})\\nsoftmax(W x) over {seen}", fillcolor="#FCE5CD"];')
        lines.append(f'  m{g} [label="Σ gᵢ·fᵢ", shape=circle, fillcolor="#FFFFFF", fontsize=11];')
    # edges out of x in left-to-right order: the first gate, the experts, the other gates
    left, right = gates[:1], gates[1:]
    lines += [f"  x -> g{g};" for g in left] + [f"  x -> e{i};" for i in drawn]
    if e > len(drawn):
        lines.append("  x -> emore [style=invis];")
    lines += [f"  x -> g{g};" for g in right]
    if not gates:  # fixed routes: the shared bottom feeds every tower, a private bottom its own
        for t in range(k):
            sources = ([t] if t in drawn else []) if kind == "single_task" else drawn
            lines += [f"  e{i} -> t{t};" for i in sources]
    else:
        for g in gates:
            lines.append(f'  g{g} -> m{g} [style=dashed, label=" weights", fontsize=10];')
            lines += [f"  e{i} -> m{g};" for i in drawn if mask is None or mask[g][i]]
        for t in range(k):
            lines.append(f"  m{t if spec.n_gates == k else 0} -> t{t};")
    if getattr(spec, "levels", 1) > 1:
        lines.append(
            f'  label="This block repeats in {spec.levels} levels; between levels a shared gate over all '
            'experts feeds the next level." ; labelloc=t; fontname="Helvetica"; fontsize=12;'
        )
    lines.append("}")
    return "\n".join(lines)
