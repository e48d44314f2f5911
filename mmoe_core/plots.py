"""Figures: pure functions from DataFrames (as `views` shapes them) to plotly figures. No streamlit here.

One colour per model, defined once below, so a model looks the same in every chart on every page. Line
style carries the split (dashed = train, solid = validation); a band is ±1 sd over seeds.

Figures are built from plain dicts and wrapped without plotly's per-property validation: a live page
redraws them every second, and validation cost ~10x the rest (0.2 s vs 0.02 s per figure on a loaded
2-core machine). The tests check the structure instead.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .model_kinds import KINDS, MODEL_KINDS

MODEL_COLORS: dict[str, str] = {name: kind.color for name, kind in KINDS.items()}
EXPERT_COLORS = [
    "#4C78A8",
    "#F58518",
    "#E45756",
    "#72B7B2",
    "#54A24B",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
]
SPLIT_DASH = {"train": "dash", "val": "solid", "test": "dot"}
SPLIT_LABEL = {"train": "train", "val": "validation", "test": "test"}
# Gate heatmaps: blue (less than even use) - white (even, 1/n) - orange (more), over ±GATE_OCTAVES doublings.
GATE_SCALE = [[0.0, "#2166AC"], [0.25, "#92C5DE"], [0.5, "#F7F7F7"], [0.75, "#FDB863"], [1.0, "#B35806"]]
GATE_OCTAVES = 2  # the colour scale ends at a quarter and at four times even use
PANEL_GAP = 0.07  # horizontal gap between per-task panels, as a fraction of the width


def model_color(model: str) -> str:
    return MODEL_COLORS.get(model, "#7F7F7F")


def model_order(models: Sequence[str]) -> list[str]:
    """The paper's order (Single-task, Shared-Bottom, OMoE, MMoE), unknown names last."""
    present = set(models)
    return [m for m in MODEL_KINDS if m in present] + sorted(present - set(MODEL_KINDS))


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _axis_name(prefix: str, i: int) -> str:
    """Panel i's axis: 'x', 'x2', ... as trace references; 'xaxis', 'xaxis2', ... as layout keys."""
    return prefix if i == 0 else f"{prefix}{i + 1}"


def figure_text(names: Sequence[str]) -> list[str]:
    """User strings (task and column names) as Plotly shows them: it renders a subset of HTML in every text,
    so a name like `<a href=…>` would become a link; escaped, it reads as typed."""
    return [html.escape(str(n), quote=False) for n in names]


def band_trace(
    x: list,
    mean: Any,
    sd: Any,
    color: str,
    group: str,
    axes: Mapping[str, str],
    name: str = "",
    floor: float | None = None,
) -> dict:
    """The ±1 sd band behind a mean line (drawn first, so the line sits on top); `floor` keeps a log axis's
    lower edge positive."""
    upper, lower = (mean + sd).tolist(), (mean - sd).tolist()
    if floor is not None:
        lower = [max(v, floor) for v in lower]
    return {
        "type": "scatter",
        "x": x + x[::-1],
        "y": upper + lower[::-1],
        "fill": "toself",
        "mode": "lines",  # plotly's default adds markers under 20 points: stray dots in the default colours
        "fillcolor": _rgba(color, 0.15),
        "line": {"width": 0},
        "hoverinfo": "skip",
        "showlegend": False,
        "legendgroup": group,
        **({"name": name} if name else {}),
        **axes,
    }


def _panels(titles: Sequence[str], x_title: str, y_title: str, y: Mapping[str, Any] | None = None) -> dict:
    """Layout of len(titles) side-by-side panels with their own axes and a title above each."""
    k = max(len(titles), 1)
    width = (1.0 - PANEL_GAP * (k - 1)) / k
    layout: dict[str, Any] = {"annotations": []}
    for i, title in enumerate(titles):
        lo = i * (width + PANEL_GAP)
        layout[f"xaxis{'' if i == 0 else i + 1}"] = {
            "domain": [lo, lo + width],
            "anchor": _axis_name("y", i),
            "title": {"text": x_title},
        }
        layout[f"yaxis{'' if i == 0 else i + 1}"] = {
            "anchor": _axis_name("x", i),
            **(y or {}),
            "title": {"text": y_title if i == 0 else ""},
        }
        layout["annotations"].append(
            {
                "text": f"<b>{title}</b>",
                "x": lo + width / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 13},
            }
        )
    return layout


def log_ticks(lo: float, hi: float) -> list[float] | None:
    """1-2-5 ticks spanning [lo, hi] for a log axis, each labelled in full (plotly's own 'D2' labels 20 as
    '2'); None when the range is too narrow for two such ticks, so plotly picks its own."""
    if not (lo > 0 and math.isfinite(lo) and math.isfinite(hi) and hi >= lo):
        return None
    ticks = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    ticks = [float(f"{t:.6g}") for t in ticks if lo / 1.05 <= t <= hi * 1.05]
    return ticks if len(ticks) >= 2 else None


def _figure(traces: list[dict], layout: dict, height: int) -> go.Figure:
    base = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "font": {"size": 12},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.08, "xanchor": "left", "x": 0},
        "hovermode": "closest",
    }
    base.update(layout)
    return go.Figure(data=traces, layout=base, _validate=False)


def empty_figure(message: str, height: int = 320) -> go.Figure:
    return _figure(
        [],
        {
            "annotations": [
                {
                    "text": message,
                    "showarrow": False,
                    "x": 0.5,
                    "y": 0.5,
                    "xref": "paper",
                    "yref": "paper",
                    "font": {"size": 14, "color": "#888"},
                }
            ],
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
        },
        height,
    )


# ---------------------------------------------------------------------------------------------- loss curves
def loss_curves(
    curves: pd.DataFrame,
    task_names: Sequence[str],
    log_y: bool = False,
    labels: Mapping[str, str] | None = None,
    metric: str = "loss",
    height: int = 380,
    title: str = "",
) -> go.Figure:
    """Per-task panels; a line per model and split (dashed train, solid validation); ±1 sd band over seeds.
    title: above the legend, e.g. the run's p and id, so a downloaded picture says what it shows.

    curves: views.curve_frame output (model, task, split, step, mean, sd, n).
    labels: legend text per model, e.g. 'MMoE · 14,818 params'.
    """
    task_names = figure_text(task_names)
    if curves.empty:
        return empty_figure("Waiting for the first recorded point…", height)
    traces: list[dict] = []
    groups = {key: g.sort_values("step") for key, g in curves.groupby(["model", "split", "task"], sort=False)}
    has_val = bool((curves["split"] == "val").any())
    for model in model_order(curves["model"].unique()):
        color = model_color(model)
        name = (labels or {}).get(model, MODEL_KINDS.get(model, model))
        for split in ("train", "val", "test"):
            for task in range(len(task_names)):
                c = groups.get((model, split, task))
                if c is None:
                    continue
                axes = {"xaxis": _axis_name("x", task), "yaxis": _axis_name("y", task)}
                steps, mean, sd = c["step"].tolist(), c["mean"].to_numpy(), c["sd"].to_numpy()
                if (c["n"] > 1).any():  # the band first, so the line draws on top of it
                    floor = 1e-12 if log_y else None
                    traces.append(band_trace(steps, mean, sd, color, model, axes, f"{name} ±1 sd", floor))
                first = task == 0 and (split == "val" or not has_val)
                traces.append(
                    {
                        # markers only while a line has too few points to be seen (each marker is an SVG node)
                        "type": "scatter",
                        "x": steps,
                        "y": mean.tolist(),
                        "mode": "lines" if len(steps) > 2 else "lines+markers",
                        "name": name,
                        "legendgroup": model,
                        "showlegend": first,
                        "line": {"color": color, "dash": SPLIT_DASH[split], "width": 2.2 if split == "val" else 1.4},
                        "marker": {"size": 4 if split == "val" else 3, "color": color},
                        "hovertemplate": f"{name}<br>{SPLIT_LABEL[split]} {metric} %{{y:.4g}}<br>step %{{x}}"
                        "<extra></extra>",
                        **axes,
                    }
                )
    for split in ("train", "val"):  # legend keys for the two line styles
        traces.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "lines",
                "name": SPLIT_LABEL[split],
                "line": {"color": "#666666", "dash": SPLIT_DASH[split]},
                "legendgroup": f"_{split}",
            }
        )
    layout = _panels(task_names, "step", metric, {"type": "log" if log_y else "linear"})
    if log_y:
        for task in range(len(task_names)):
            ys = [
                v
                for t in traces
                if t.get("yaxis") == _axis_name("y", task) and "fill" not in t
                for v in t["y"]
                if v is not None and v > 0
            ]
            ticks = log_ticks(min(ys), max(ys)) if ys else None
            if ticks:
                axis = layout[f"yaxis{'' if task == 0 else task + 1}"]
                axis.update({"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]})
    if title:
        layout["title"] = {"text": title, "x": 0, "y": 0.99, "yanchor": "top", "font": {"size": 14}}
        layout["margin"] = {"l": 10, "r": 10, "t": 95, "b": 10}
        layout["legend"] = {"orientation": "h", "yanchor": "bottom", "y": 1.1, "xanchor": "right", "x": 1}
    return _figure(traces, layout, height + (30 if title else 0))


# ---------------------------------------------------------------------------------------------- gates
def gate_heatmap(
    matrix: pd.DataFrame, task_names: Sequence[str], title: str = "", height: int | None = None
) -> go.Figure:
    """Tasks x experts, coloured by use relative to even use (1/n of n experts): white = even, orange = more,
    blue = less, on a fixed log scale from a quarter to four times even, so two heatmaps compare by eye. Gate
    weights sit near 1/n (0.08-0.28 with 8 experts) and all read pale on a 0-1 scale; relative to 1/n a task
    that doubles an expert's share is as strong a colour as one that halves another's. The weights themselves
    are printed in the cells."""
    task_names = figure_text(task_names)
    if matrix.empty:
        return empty_figure("No gate snapshot yet", height or 200)
    weights = matrix.to_numpy()
    n = weights.shape[1]
    ratio = np.log2(np.clip(weights * n, 2.0**-GATE_OCTAVES, 2.0**GATE_OCTAVES))  # 0 = even use
    experts = [f"E{int(e) + 1}" for e in matrix.columns]
    tasks = [task_names[int(t)] if int(t) < len(task_names) else f"Task {int(t) + 1}" for t in matrix.index]
    ticks = list(range(-GATE_OCTAVES, GATE_OCTAVES + 1))
    trace = {
        "type": "heatmap",
        "z": ratio.round(4).tolist(),
        "x": experts,
        "y": tasks,
        "zmin": -float(GATE_OCTAVES),
        "zmax": float(GATE_OCTAVES),
        "zmid": 0.0,
        "colorscale": GATE_SCALE,
        "text": weights.round(4).tolist(),
        "texttemplate": "%{text:.2f}",
        "hovertemplate": "%{y} · expert %{x}: weight %{text:.3f}<extra></extra>",
        "colorbar": {
            "title": {"text": "use vs even", "side": "right"},
            "thickness": 10,
            "len": 0.9,
            "tickvals": ticks,
            "ticktext": [_even_tick(t, n) for t in ticks],
        },
    }
    layout = {
        "title": {"text": title, "x": 0, "font": {"size": 14}},
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "yaxis": {"autorange": "reversed"},
        "xaxis": {"title": {"text": "expert"}},
    }
    return _figure([trace], layout, height or (110 + 42 * len(tasks)))


def _even_tick(octave: int, n: int) -> str:
    if octave == 0:
        return f"1/{n} (even)"
    return f"{2**octave:g}×" if octave > 0 else f"1/{2**-octave}×"


def gate_evolution(gates: pd.DataFrame, task_names: Sequence[str], title: str = "", height: int = 340) -> go.Figure:
    """Each expert's mean gate weight over training steps, a panel per task (one model's gate rows). The y axis
    starts at 0 and ends a little above the largest weight, so a gate moving from 1/8 to 1/4 is visible."""
    task_names = figure_text(task_names)
    if gates.empty:
        return empty_figure("No gate snapshot yet", height)
    traces = []
    groups = {key: g.sort_values("step") for key, g in gates.groupby(["expert", "task"], sort=True)}
    for e in sorted(gates["expert"].unique()):
        color = EXPERT_COLORS[int(e) % len(EXPERT_COLORS)]
        for task in range(len(task_names)):
            g = groups.get((e, task))
            if g is None:
                continue
            traces.append(
                {
                    "type": "scatter",
                    "x": g["step"].tolist(),
                    "y": g["weight"].round(4).tolist(),
                    "mode": "lines",
                    "name": f"E{int(e) + 1}",
                    "legendgroup": f"E{e}",
                    "showlegend": task == 0,
                    "line": {"color": color, "width": 1.8},
                    "xaxis": _axis_name("x", task),
                    "yaxis": _axis_name("y", task),
                    "hovertemplate": f"expert E{int(e) + 1}<br>weight %{{y:.3f}}<br>step %{{x}}<extra></extra>",
                }
            )
    top = min(1.0, max(0.3, float(gates["weight"].max()) * 1.15))  # weights near 1/n would hug the floor of 0..1
    layout = _panels(task_names, "step", "gate weight", {"range": [0, top]})
    layout.update(
        {
            "title": {"text": title, "x": 0, "y": 0.98, "yanchor": "top", "font": {"size": 14}},
            "margin": {"l": 10, "r": 10, "t": 90, "b": 10},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.08, "xanchor": "right", "x": 1},
        }
    )
    return _figure(traces, layout, height)


# ---------------------------------------------------------------------------------------------- diagnostics
DIAGNOSTIC_PANELS = {  # metric -> (panel title, dotted line where the warning starts)
    "load_entropy": ("Load entropy", 0.2),  # short titles: three panels side by side on a phone
    "max_load": ("Largest share", 0.9),
    "expert_cosine": ("Expert similarity", 0.95),
}


def diagnostics_figure(
    probe: pd.DataFrame, task_names: Sequence[str], labels: Mapping[str, str] | None = None, height: int = 320
) -> go.Figure:
    """Expert-utilisation diagnostics over training (mmoe_core.diagnostics): a panel per metric, a line per
    model (and task: solid first task, dashed the others); dotted lines mark the warning thresholds.

    probe: metric rows with split 'probe' (model, step, task, metric, value); task -1 = model-wide."""
    task_names = figure_text(task_names)
    if probe.empty:
        return empty_figure("No diagnostics yet", height)
    traces: list[dict] = []
    dashes = ["solid", "dash", "dot", "dashdot"]
    panels = list(DIAGNOSTIC_PANELS)
    for i, metric in enumerate(panels):
        rows = probe[probe["metric"] == metric]
        for (model, task), g in rows.groupby(["model", "task"], sort=False):
            g = g.sort_values("step")
            name = (labels or {}).get(model, MODEL_KINDS.get(model, model))
            who = name if task < 0 else f"{name} · {task_names[task] if task < len(task_names) else task + 1}"
            traces.append(
                {
                    "type": "scatter",
                    "x": g["step"].tolist(),
                    "y": g["value"].round(4).tolist(),
                    "mode": "lines",
                    "name": name,
                    "legendgroup": model,
                    "showlegend": i == 0 and task <= 0,
                    "line": {
                        "color": model_color(model),
                        "dash": dashes[max(int(task), 0) % len(dashes)],
                        "width": 1.8,
                    },
                    "xaxis": _axis_name("x", i),
                    "yaxis": _axis_name("y", i),
                    "hovertemplate": f"{who}<br>{metric} %{{y:.3f}}<br>step %{{x}}<extra></extra>",
                }
            )
        limit = DIAGNOSTIC_PANELS[metric][1]
        steps = probe["step"]
        traces.append(
            {
                "type": "scatter",
                "x": [int(steps.min()), int(steps.max())],
                "y": [limit, limit],
                "mode": "lines",
                "showlegend": False,
                "hoverinfo": "skip",
                "line": {"color": "#999999", "dash": "dot", "width": 1},
                "xaxis": _axis_name("x", i),
                "yaxis": _axis_name("y", i),
            }
        )
    per_task = sorted(int(t) for t in probe["task"].unique() if t >= 0)
    for task in per_task[: len(dashes)]:  # legend keys for the line styles: which task is which dash
        name = task_names[task] if task < len(task_names) else f"Task {task + 1}"
        traces.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "lines",
                "name": f"{name} ({dashes[task]})",
                "line": {"color": "#666666", "dash": dashes[task]},
                "legendgroup": f"_task{task}",
            }
        )
    layout = _panels([DIAGNOSTIC_PANELS[m][0] for m in panels], "step", "", {"range": [-0.05, 1.05]})
    return _figure(traces, layout, height)
