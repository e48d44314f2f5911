"""Comparing stored runs: which settings tell them apart, a legend label per run from those settings, and one
figure that overlays their validation curves. Pure functions over RunConfigs and DataFrames; no streamlit.

A comparison names runs by what differs (p = 0.2 against p = 0.9, or two learning rates), never by id alone:
the id is kept for hover text and for runs whose settings are all equal (re-runs of one config).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from .config import MODEL_KINDS, RunConfig
from .plots import EXPERT_COLORS, _axis_name, _figure, _panels, empty_figure, figure_text, log_ticks, model_order
from .runs import RUN_ID

MAX_COMPARED = 8  # runs on one chart: more lines than this are no longer readable, and each costs a store read
SHORT_NAMES = {  # how a differing field is written in a legend
    "correlation": "p",
    "n_experts": "experts",
    "expert_units": "expert units",
    "batch_size": "batch",
    "data_seed": "data seed",
    "noise_std": "noise",
    "sine_terms": "sine terms",
}
MODEL_DASH = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]  # a model's line style, by paper order
LABEL_IGNORED = {"models", "device"}  # each line names its model; the device does not change what is learned


def parse_compare_ids(text: str, known: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """`?compare=id1,id2,…` -> (valid ids in the given order, a warning per id dropped). Only well-formed run
    ids that the store knows are kept, duplicates once, at most MAX_COMPARED; anything else is named in a
    warning (shortened, so a hostile URL cannot flood the page)."""
    ids: list[str] = []
    warnings: list[str] = []
    parts = [p.strip() for p in str(text or "").split(",") if p.strip()]
    for raw in parts[: MAX_COMPARED * 4]:
        shown = raw[:20] + ("…" if len(raw) > 20 else "")
        if not RUN_ID.match(raw):
            warnings.append(f"{shown!r} is not a run id (12 lowercase hex characters); left out")
        elif known is not None and raw not in known:
            warnings.append(f"run {raw} is not on this server; left out")
        elif raw in ids:
            continue
        elif len(ids) >= MAX_COMPARED:
            warnings.append(f"at most {MAX_COMPARED} runs are compared at once; run {raw} left out")
        else:
            ids.append(raw)
    if len(parts) > MAX_COMPARED * 4:
        warnings.append(f"{len(parts) - MAX_COMPARED * 4} more ids left out")
    return ids, warnings


def differing_fields(configs: Sequence[RunConfig]) -> list[str]:
    """RunConfig fields (in declaration order) whose value is not the same in every config; [] for 0 or 1."""
    if len(configs) < 2:
        return []
    names = [f.name for f in fields(RunConfig)]
    return [n for n in names if len({repr(getattr(c, n)) for c in configs}) > 1]


def _value_text(name: str, value: Any) -> str:
    if isinstance(value, tuple):
        return "+".join(MODEL_KINDS.get(v, str(v)) for v in value) if name == "models" else ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if name == "dataset":
        return re.split(r"[\\/]", str(value))[-1]
    return f"{value:,}" if isinstance(value, int) else str(value)


def run_labels(configs: Mapping[str, RunConfig]) -> dict[str, str]:
    """A legend label per run id from the fields that differ, e.g. 'p = 0.2 · lr = 0.003'. Runs whose settings
    are all equal (or equal on every labelled field) are told apart by their id."""
    diff = [n for n in differing_fields(list(configs.values())) if n not in LABEL_IGNORED]
    labels = {
        rid: " · ".join(f"{SHORT_NAMES.get(n, n)} = {_value_text(n, getattr(c, n))}" for n in diff)
        for rid, c in configs.items()
    }
    counts = pd.Series(list(labels.values())).value_counts()
    return {
        rid: (f"{lab} ({rid[:6]})" if lab and counts[lab] > 1 else lab or f"run {rid[:6]}")
        for rid, lab in labels.items()
    }


def compare_curves(
    curves: Mapping[str, pd.DataFrame],
    labels: Mapping[str, str],
    task_names: Sequence[str],
    models: Sequence[str] | None = None,
    log_y: bool = True,
    metric: str = "loss",
    height: int = 420,
) -> go.Figure:
    """Each run's validation curves on one chart: a panel per task, a colour per run, a line style per model.

    curves: run id -> views.curve_frame output (model, task, split, step, mean, sd, n); only split 'val' drawn.
    labels: run id -> legend text (run_labels). models: the models to draw (default: every one present)."""
    task_names = figure_text(task_names)
    present = sorted({m for c in curves.values() if len(c) for m in c["model"].unique()})
    order = model_order([m for m in present if models is None or m in models])
    if not order:
        return empty_figure("No validation points to compare yet", height)
    traces: list[dict] = []
    for i, (rid, c) in enumerate(curves.items()):
        color = EXPERT_COLORS[i % len(EXPERT_COLORS)]
        val = c[c["split"] == "val"] if len(c) else c
        for m_i, model in enumerate(order):
            for task in range(len(task_names)):
                g = val[(val["model"] == model) & (val["task"] == task)].sort_values("step") if len(val) else val
                if g.empty:
                    continue
                name = f"{labels.get(rid, rid)} · {MODEL_KINDS.get(model, model)}"
                traces.append(
                    {
                        "type": "scatter",
                        "x": g["step"].tolist(),
                        "y": g["mean"].round(6).tolist(),
                        "mode": "lines",
                        "name": name,
                        "legendgroup": f"{rid}:{model}",
                        "showlegend": task == 0,
                        "line": {"color": color, "dash": MODEL_DASH[m_i % len(MODEL_DASH)], "width": 2},
                        "hovertemplate": f"{name}<br>run {rid}<br>validation {metric} %{{y:.4g}}<br>step %{{x}}"
                        "<extra></extra>",
                        "xaxis": _axis_name("x", task),
                        "yaxis": _axis_name("y", task),
                    }
                )
    layout = _panels(task_names, "step", f"validation {metric}", {"type": "log" if log_y else "linear"})
    if log_y:
        for task in range(len(task_names)):
            ys = [v for t in traces if t["yaxis"] == _axis_name("y", task) for v in t["y"] if v is not None and v > 0]
            ticks = log_ticks(min(ys), max(ys)) if ys else None
            if ticks:
                layout[f"yaxis{'' if task == 0 else task + 1}"].update(
                    {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}
                )
    layout["legend"] = {"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0}
    layout["margin"] = {"l": 10, "r": 10, "t": 40, "b": 10}
    legend_rows = -(-sum(t["showlegend"] for t in traces) // 3)  # the legend below, about three entries a row
    return _figure(traces, layout, height + 22 * legend_rows)


def compare_results(
    summaries: Mapping[str, Mapping[str, Any] | None], labels: Mapping[str, str], task_names: Sequence[str]
) -> pd.DataFrame:
    """Final test results side by side: one row per (run, model), in the runs' order and the paper's model
    order. A run that has not finished has no row (its curves still show)."""
    rows = []
    for rid, summary in summaries.items():
        entries = (summary or {}).get("models") or {}
        for model in model_order(list(entries)):
            e = entries[model]
            row: dict[str, Any] = {"Run": labels.get(rid, rid), "Id": rid, "Model": MODEL_KINDS.get(model, model)}
            losses = e.get("test_loss") or []
            for k, name in enumerate(task_names):
                row[f"{name} test loss"] = losses[k] if k < len(losses) else None
            row["Mean test loss"] = e.get("test_loss_mean")
            row["Status"] = e.get("status", "")
            rows.append(row)
    return pd.DataFrame(rows)
