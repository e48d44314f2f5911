"""Figures of a study, as pure functions from DataFrames (mmoe_core.studies.study) to plotly figures.

The paper's three views of its synthetic experiments (Ma et al. 2018): label correlation against the weight
cosine p (Fig. 2), mean loss over training with a ±1 sd band over seeds (Fig. 4), and the distribution of
final loss over seeds, "trainability" (Fig. 5). Each works from partial results: a correlation whose run has
not got there yet keeps an empty panel.

Like mmoe_core.plots (whose colours and panel layout these share), figures are plain dicts wrapped without
plotly's per-property validation: a live page redraws them every two seconds, and validation made Fig. 4
take 2 s on a busy 2-core machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..config import MODEL_KINDS
from ..plots import _axis_name, _figure, _panels, _rgba, band_trace, empty_figure, log_ticks, model_color, model_order

HEIGHT = 400
LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.1, "xanchor": "right", "x": 1}
MARGIN = {"l": 70, "r": 10, "t": 60, "b": 40}  # room for the y title beside full tick labels


def _titles(correlations: Sequence[float]) -> list[str]:
    return [f"p = {p:g}" for p in correlations]


def _axes(i: int) -> dict[str, str]:
    return {"xaxis": _axis_name("x", i), "yaxis": _axis_name("y", i)}


def _not_yet(layout: dict, i: int) -> dict[str, Any]:
    """A note in the middle of panel i, whose run has no result yet (in paper coordinates: plotly leaves out
    the axes of a panel without traces)."""
    lo, hi = layout[f"xaxis{'' if i == 0 else i + 1}"]["domain"]
    return {
        "text": "not finished yet",
        "showarrow": False,
        "x": (lo + hi) / 2,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "font": {"color": "#888"},
    }


def curves_figure(
    curves: pd.DataFrame, correlations: Sequence[float], log_y: bool = False, steps: int | None = None
) -> go.Figure:
    """Paper Fig. 4: mean held-out loss over training steps per model, one panel per correlation, with a
    band of ±1 sd over seeds. `curves` has correlation, model, step, mean, sd, n (one learning rate); `steps`
    fixes every panel's x axis to the whole run, so a run in progress shows how far it has come.

    Linear axis: it starts at 0 and its top is set by the curves after the first quarter of training, so the
    models' final differences stay visible (the first steps' large losses run off the top; zoom out to see
    them). Log axis: a band that reaches 0 is cut at a floor a decade under the lowest mean."""
    if curves.empty:
        return empty_figure("No points yet: curves appear after the first recorded step", HEIGHT)
    ps = list(correlations)
    floor = float(curves["mean"].min()) / 10 if log_y and curves["mean"].min() > 0 else 0.0
    upper = curves["mean"] + curves["sd"].fillna(0.0)
    traces: list[dict] = []
    shown: set[str] = set()
    for i, p in enumerate(ps):
        panel = curves[curves["correlation"] == p]
        for model in model_order(panel["model"].unique()):
            c = panel[panel["model"] == model].sort_values("step")
            color, label = model_color(model), MODEL_KINDS.get(model, model)
            x, mean, sd = c["step"].tolist(), c["mean"].to_numpy(), c["sd"].fillna(0.0).to_numpy()
            traces.append(band_trace(x, mean, sd, color, model, _axes(i), f"{label} ±1 sd", floor))
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": mean.tolist(),
                    "name": label,
                    "legendgroup": model,
                    "showlegend": model not in shown,
                    "line": {"color": color, "width": 2},
                    "customdata": c[["sd", "n"]].to_numpy().tolist(),
                    "hovertemplate": f"{label}<br>step %{{x}}<br>mean %{{y:.4f}} ± %{{customdata[0]:.4f}}"
                    "<br>%{customdata[1]} seeds<extra></extra>",
                    **_axes(i),
                }
            )
            shown.add(model)
    if log_y:
        y: dict[str, Any] = {
            "type": "log",
            "tickvals": log_ticks(floor or float(curves["mean"].min()), float(upper.max())),
        }
        if floor > 0:
            y["range"] = [math.log10(floor), math.log10(float(upper.max())) + 0.05]
    else:
        settled = curves["step"] >= (steps or curves["step"].max()) / 4
        top = float(upper[settled].max()) if settled.any() else float(upper.max())
        y = {"type": "linear", "range": [0, 1.1 * top]}
    layout = _panels(_titles(ps), "training step", "held-out loss (MSE), mean ± 1 sd", y)
    for i in range(len(ps)):
        layout[f"xaxis{'' if i == 0 else i + 1}"]["range"] = [0, steps] if steps else None
    layout["legend"], layout["margin"] = LEGEND, MARGIN
    return _figure(traces, layout, HEIGHT)


def trainability_figure(
    final: pd.DataFrame, correlations: Sequence[float], kind: str = "violin", log_y: bool = False
) -> go.Figure:
    """Paper Fig. 5: the distribution of final test loss over seeds, per model, one panel per correlation.
    `kind` is "violin" (box, mean line and every seed as a dot) or "histogram" (the paper's form)."""
    if kind not in ("violin", "histogram"):
        raise ValueError(f"kind={kind!r} is unknown; choose 'violin' or 'histogram'")
    final = final.dropna(subset=["test_loss_mean"])
    if final.empty:
        return empty_figure("No finished runs yet: final losses appear when a correlation's run ends", HEIGHT)
    ps = list(correlations)
    traces: list[dict] = []
    shown: set[str] = set()
    empty = []
    for i, p in enumerate(ps):
        panel = final[final["correlation"] == p]
        if panel.empty:
            empty.append(i)
        for model in model_order(panel["model"].unique()):
            v = panel.loc[panel["model"] == model, "test_loss_mean"].tolist()
            color, label = model_color(model), MODEL_KINDS.get(model, model)
            common = {"name": label, "legendgroup": model, "showlegend": model not in shown, **_axes(i)}
            if kind == "violin":
                traces.append(
                    {
                        "type": "violin",
                        "y": v,
                        "x": [label] * len(v),
                        "box": {"visible": True},
                        "meanline": {"visible": True},
                        "points": "all",
                        "pointpos": 0,
                        "jitter": 0.3,
                        "marker": {"size": 3, "opacity": 0.5, "color": color},
                        "line": {"color": color},
                        "fillcolor": _rgba(color, 0.35),
                        "spanmode": "hard",
                        **common,
                    }
                )
            else:
                traces.append(
                    {"type": "histogram", "x": v, "opacity": 0.55, "nbinsx": 30, "marker": {"color": color}, **common}
                )
            shown.add(model)
    loss_axis: dict[str, Any] = {"type": "log" if log_y else "linear"}
    if log_y:
        loss_axis["tickvals"] = log_ticks(float(final["test_loss_mean"].min()), float(final["test_loss_mean"].max()))
    if kind == "violin":
        layout = _panels(_titles(ps), "", "final test loss (one dot per seed)", {**loss_axis, "matches": "y"})
    else:
        layout = _panels(_titles(ps), "final test loss", "seeds")
        layout["barmode"] = "overlay"
        for i in range(len(ps)):
            layout[f"xaxis{'' if i == 0 else i + 1}"].update(loss_axis)
    layout["annotations"] += [_not_yet(layout, i) for i in empty]
    layout["legend"], layout["margin"] = LEGEND, MARGIN
    return _figure(traces, layout, HEIGHT)


def label_correlation_figure(draws: pd.DataFrame, measured: pd.DataFrame | None = None) -> go.Figure:
    """Paper Fig. 2: Pearson correlation of the two labels against the weight cosine p, mean ± 1 sd over
    α/β draws, for linear tasks (m = 0) and with sine terms; `measured` (p, label_correlation) adds the
    study's own runs."""
    if draws.empty:
        return empty_figure("No data", HEIGHT)
    lo, hi = float(draws["p"].min()), float(draws["p"].max())
    traces: list[dict] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": [lo, hi],
            "y": [lo, hi],
            "name": "label correlation = p",
            "line": {"color": "#999", "dash": "dot"},
        }
    ]
    palette = ["#9467BD", "#E45756", "#17BECF", "#8C564B"]
    for i, (m, g) in enumerate(draws.groupby("sine_terms", sort=True)):
        s = g.groupby("p")["label_correlation"].agg(["mean", "std", "count"]).reset_index()
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": s["p"].tolist(),
                "y": s["mean"].tolist(),
                "error_y": {"type": "data", "array": s["std"].fillna(0).tolist(), "visible": True},
                "name": "linear tasks (m = 0)" if m == 0 else f"with {m} sine terms (m = {m})",
                "line": {"color": palette[i % len(palette)]},
                "customdata": s[["std", "count"]].to_numpy().tolist(),
                "hovertemplate": "p = %{x:g}<br>label correlation %{y:.3f} ± %{customdata[0]:.3f}"
                "<br>%{customdata[1]} draws<extra></extra>",
            }
        )
    if measured is not None and not measured.empty:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": measured["p"].tolist(),
                "y": measured["label_correlation"].tolist(),
                "name": "this study's runs (mean over seeds)",
                "marker": {"symbol": "x", "size": 11, "color": "#000"},
            }
        )
    layout = {
        "xaxis": {"title": {"text": "weight cosine p"}},
        "margin": MARGIN,
        "yaxis": {"title": {"text": "Pearson correlation of the labels"}},
    }
    return _figure(traces, layout, HEIGHT)


VERDICT_MARK = {"holds": "✓", "contradicted": "✗", "too close to call": "·", "not enough data": ""}


def regime_heatmap(table: pd.DataFrame, height: int = 360) -> go.Figure:
    """The regime map (mmoe_core.studies.regime.regime_table): one panel per comparison (MMoE vs Shared-Bottom,
    MMoE vs OMoE), task correlation p across, training rows down; colour = share of seeds MMoE won (blue above
    one half, red below), text = wins of pairs and the verdict mark (✓ MMoE helps: the 95% interval of the median
    gap lies below zero; ✗ it hurts; · too close to call)."""
    if table.empty:
        return empty_figure("No finished cell yet: the map fills in as its runs finish.", height)
    others = [o for o in ("shared_bottom", "omoe") if (table["other"] == o).any()]
    titles = [f"MMoE vs {MODEL_KINDS[o]}: share of seeds MMoE won" for o in others]
    layout = _panels(titles, "task correlation p", "training rows")
    ps = sorted(table["correlation"].unique())
    sizes = sorted(table["rows"].unique())
    traces = []
    for i, other in enumerate(others):
        t = table[table["other"] == other].set_index(["rows", "correlation"])
        z, text, hover = [], [], []
        for n in sizes:
            zr, tr, hr = [], [], []
            for p in ps:
                if (n, p) not in t.index:
                    zr.append(None), tr.append(""), hr.append("not run yet")
                    continue
                c = t.loc[(n, p)]
                zr.append(float(c["win_rate"]))
                tr.append(f"{int(c['wins'])}/{int(c['pairs'])} {VERDICT_MARK.get(c['verdict'], '')}")
                hr.append(
                    f"{int(n):,} rows, p = {p:g}<br>MMoE won {int(c['wins'])} of {int(c['pairs'])} seeds<br>"
                    f"median gap {c['median']:+.4f} [{c['lo']:+.4f}, {c['hi']:+.4f}]<br>{c['verdict']}"
                )
            z.append(zr), text.append(tr), hover.append(hr)
        traces.append(
            {
                "type": "heatmap",
                "x": [f"{p:g}" for p in ps],
                "y": [f"{int(n):,}" for n in sizes],
                "z": z,
                "text": text,
                "texttemplate": "%{text}",
                "customdata": hover,
                "hovertemplate": "%{customdata}<extra></extra>",
                "zmin": 0.0,
                "zmax": 1.0,
                "colorscale": [[0.0, "#d6604d"], [0.5, "#f7f7f7"], [1.0, "#4393c3"]],  # red lost, blue won
                "textfont": {"color": "#222"},
                "showscale": i == len(others) - 1,
                "colorbar": {"title": {"text": "MMoE won"}, "tickformat": ".0%"},
                **_axes(i),
            }
        )
        layout[_axis_name("x", i).replace("x", "xaxis", 1)]["type"] = "category"
        layout[_axis_name("y", i).replace("y", "yaxis", 1)]["type"] = "category"
    return _figure(traces, {**layout, "margin": MARGIN}, height)
