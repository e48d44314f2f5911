"""The expert map (issue #17 item 2): where each expert sits between the tasks, and how much each task's gate
uses it. One row per task; each expert is a dot placed at its alignment with that row's task (a_ik, from
mmoe_core.specialisation: 1 = it responds only to this task's direction), sized by the row's gate weight. When a
model specialises, each row's big dots sit to the right of the dashed no-preference line at 1/K."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from .plots import EXPERT_COLORS, _figure, empty_figure, figure_text


def expert_map(
    gates: pd.DataFrame, alignment: pd.DataFrame, task_names: Sequence[str], title: str = "", height: int = 260
) -> go.Figure:
    """gates, alignment: (tasks x experts) matrices of one model at one step (views.gate_matrix)."""
    names = figure_text(task_names)
    if gates.empty or alignment.empty:
        return empty_figure("The expert map appears with the first recorded point…", height)
    k, n = alignment.shape
    traces = []
    for e in alignment.columns:
        e = int(e)
        xs, ys, sizes, hover = [], [], [], []
        for t in alignment.index:
            t = int(t)
            a = float(alignment.loc[t, e])
            g = float(gates.loc[t, e]) if t in gates.index and e in gates.columns else math.nan
            task = names[t] if t < len(names) else f"Task {t + 1}"
            xs.append(a)
            ys.append(task)
            # diameter grows with the weight relative to even use (1/n): 0.08 and 0.21 of 8 experts differ at a glance
            sizes.append(min(8 + 22 * g * n, 64) if math.isfinite(g) else 6)
            hover.append(f"E{e + 1} · {task}<br>alignment with {task} {a:.2f}<br>gate weight {g:.3f}")
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "x": xs,
                "y": ys,
                "text": [f"E{e + 1}"] * len(xs),
                "textposition": "middle center",
                "textfont": {"size": 9, "color": "#FFFFFF"},
                "marker": {"size": sizes, "color": EXPERT_COLORS[e % len(EXPERT_COLORS)], "opacity": 0.8},
                "name": f"E{e + 1}",
                "hovertext": hover,
                "hoverinfo": "text",
                "showlegend": False,
            }
        )
    layout = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 13}},
        "xaxis": {"range": [-0.05, 1.05], "title": {"text": "alignment with the row's task (1/K = no preference)"}},
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": names[:k][::-1]},
        "shapes": [
            {
                "type": "line",
                "x0": 1 / k,
                "x1": 1 / k,
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"dash": "dash", "color": "#888888", "width": 1},
            }
        ],
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    }
    return _figure(traces, layout, height)
