"""Figures of a study, as pure functions from DataFrames (mmoe_core.study) to plotly figures.

The paper's three views of its synthetic experiments (Ma et al. 2018): label correlation against the weight
cosine p (Fig. 2), mean loss over training with a ±1 sd band over seeds (Fig. 4), and the distribution of
final loss over seeds, "trainability" (Fig. 5). Each works from partial results: missing models or
correlations simply leave their panel empty.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .config import MODEL_KINDS
from .plots import model_color

HEIGHT = 380


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _models_in(df: pd.DataFrame) -> list[str]:
    """Models present, in the app's usual order (Shared-Bottom, OMoE, MMoE)."""
    present = set(df["model"]) if "model" in df else set()
    return [m for m in MODEL_KINDS if m in present]


def _panel_title(p: float) -> str:
    return f"p = {p:g}"


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#666"))
    fig.update_layout(height=HEIGHT, xaxis_visible=False, yaxis_visible=False, margin=dict(t=30, b=30))
    return fig


def curves_figure(curves: pd.DataFrame, correlations: Sequence[float], log_y: bool = False,
                  steps: int | None = None) -> go.Figure:
    """Paper Fig. 4: mean held-out loss over training steps per model, one panel per correlation, with a
    band of ±1 sd over seeds. `curves` has correlation, model, step, mean, sd, n (one learning rate); `steps`
    fixes every panel's x axis to the whole run, so a run in progress shows how far it has come.

    Linear axis: it starts at 0 and its top is set by the curves after the first quarter of training, so the
    models' final differences stay visible (the first steps' large losses run off the top; zoom out to see
    them). Log axis: a band that reaches 0 is cut at a floor a decade under the lowest mean."""
    if curves.empty:
        return _empty("No points yet: curves appear after the first recorded step")
    ps = list(correlations)
    fig = make_subplots(rows=1, cols=len(ps), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[_panel_title(p) for p in ps])
    floor = float(curves["mean"].min()) / 10 if log_y and curves["mean"].min() > 0 else 0.0
    upper = curves["mean"] + curves["sd"].fillna(0.0)
    shown: set[str] = set()
    for col, p in enumerate(ps, start=1):
        panel = curves[curves["correlation"] == p]
        for model in _models_in(panel):
            c = panel[panel["model"] == model].sort_values("step")
            color, label = model_color(model), MODEL_KINDS[model]
            sd = c["sd"].fillna(0.0)
            fig.add_trace(go.Scatter(x=c["step"], y=c["mean"] + sd, mode="lines", line=dict(width=0),
                                     legendgroup=model, showlegend=False, hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Scatter(x=c["step"], y=(c["mean"] - sd).clip(lower=floor), mode="lines",
                                     line=dict(width=0), fill="tonexty", fillcolor=_rgba(color, 0.15),
                                     legendgroup=model, showlegend=False, hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Scatter(
                x=c["step"], y=c["mean"], mode="lines", name=label, legendgroup=model, line=dict(color=color, width=2),
                showlegend=model not in shown, customdata=c[["sd", "n"]].to_numpy(),
                hovertemplate=f"{label}<br>step %{{x}}<br>mean %{{y:.4f}} ± %{{customdata[0]:.4f}}"
                              "<br>%{customdata[1]} seeds<extra></extra>"), row=1, col=col)
            shown.add(model)
        fig.update_xaxes(title_text="training step", row=1, col=col,
                         range=[0, steps] if steps else None)
    fig.update_yaxes(title_text="held-out loss (MSE), mean ± 1 sd", row=1, col=1)
    if log_y:
        top = float(upper.max())
        fig.update_yaxes(type="log", range=[math.log10(floor), math.log10(top) + 0.05] if floor > 0 else None)
    else:
        settled = curves["step"] >= (steps or curves["step"].max()) / 4
        top = float(upper[settled].max()) if settled.any() else float(upper.max())
        fig.update_yaxes(range=[0, 1.1 * top])
    fig.update_layout(height=HEIGHT, margin=dict(t=70, b=40, l=60, r=20), hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, x=1, xanchor="right"))
    return fig


def trainability_figure(final: pd.DataFrame, correlations: Sequence[float], kind: str = "violin",
                        log_y: bool = False) -> go.Figure:
    """Paper Fig. 5: the distribution of final test loss over seeds, per model, one panel per correlation.
    `kind` is "violin" (box, mean line and every seed as a dot) or "histogram" (the paper's form)."""
    final = final.dropna(subset=["test_loss_mean"])
    if final.empty:
        return _empty("No finished runs yet: final losses appear when a correlation's run ends")
    if kind not in ("violin", "histogram"):
        raise ValueError(f"kind={kind!r} is unknown; choose 'violin' or 'histogram'")
    ps = list(correlations)
    fig = make_subplots(rows=1, cols=len(ps), shared_yaxes=kind == "violin", horizontal_spacing=0.03 if kind ==
                        "violin" else 0.05, subplot_titles=[_panel_title(p) for p in ps])
    shown: set[str] = set()
    for col, p in enumerate(ps, start=1):
        panel = final[final["correlation"] == p]
        if panel.empty:
            axis = "" if col == 1 else str(col)
            fig.add_annotation(text="not finished yet", showarrow=False, x=0.5, y=0.5, xref=f"x{axis} domain",
                               yref=f"y{axis} domain", font=dict(color="#888"))
        for model in _models_in(panel):
            v = panel.loc[panel["model"] == model, "test_loss_mean"]
            color, label = model_color(model), MODEL_KINDS[model]
            common = dict(name=label, legendgroup=model, showlegend=model not in shown, marker_color=color)
            if kind == "violin":
                fig.add_trace(go.Violin(y=v, x=[label] * len(v), box_visible=True, meanline_visible=True,
                                        points="all", pointpos=0, jitter=0.3, marker=dict(size=3, opacity=0.5),
                                        line_color=color, spanmode="hard", **common), row=1, col=col)
            else:
                fig.add_trace(go.Histogram(x=v, opacity=0.55, nbinsx=30, **common), row=1, col=col)
            shown.add(model)
        if kind == "histogram":
            fig.update_xaxes(title_text="final test loss", row=1, col=col)
    if kind == "violin":
        fig.update_yaxes(title_text="final test loss (one dot per seed)", row=1, col=1)
        if log_y:
            fig.update_yaxes(type="log")
    else:
        fig.update_yaxes(title_text="seeds", row=1, col=1)
        fig.update_layout(barmode="overlay")
        if log_y:
            fig.update_xaxes(type="log")
    fig.update_layout(height=HEIGHT, margin=dict(t=70, b=40, l=60, r=20),
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, x=1, xanchor="right"))
    return fig


def label_correlation_figure(draws: pd.DataFrame, measured: pd.DataFrame | None = None) -> go.Figure:
    """Paper Fig. 2: Pearson correlation of the two labels against the weight cosine p, mean ± 1 sd over
    α/β draws, for linear tasks (m = 0) and with sine terms; `measured` (p, label_correlation) adds the
    study's own runs."""
    if draws.empty:
        return _empty("No data")
    fig = go.Figure()
    lo, hi = float(draws["p"].min()), float(draws["p"].max())
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="label correlation = p",
                             line=dict(color="#999", dash="dot")))
    palette = ["#9467bd", "#ff7f0e", "#17becf", "#8c564b"]
    for i, (m, g) in enumerate(draws.groupby("sine_terms", sort=True)):
        s = g.groupby("p")["label_correlation"].agg(["mean", "std", "count"]).reset_index()
        name = "linear tasks (m = 0)" if m == 0 else f"with {m} sine terms (m = {m})"
        fig.add_trace(go.Scatter(
            x=s["p"], y=s["mean"], error_y=dict(type="data", array=s["std"].fillna(0), visible=True),
            mode="lines+markers", name=name, line=dict(color=palette[i % len(palette)]),
            customdata=s[["std", "count"]].to_numpy(),
            hovertemplate="p = %{x:g}<br>label correlation %{y:.3f} ± %{customdata[0]:.3f}"
                          "<br>%{customdata[1]} draws<extra></extra>"))
    if measured is not None and not measured.empty:
        fig.add_trace(go.Scatter(x=measured["p"], y=measured["label_correlation"], mode="markers",
                                 name="this study's runs (mean over seeds)",
                                 marker=dict(symbol="x", size=11, color="#000")))
    fig.update_layout(height=HEIGHT, margin=dict(t=30, b=40, l=60, r=20), xaxis_title="weight cosine p",
                      yaxis_title="Pearson correlation of the labels", legend=dict(orientation="h", y=1.15, x=0))
    return fig
