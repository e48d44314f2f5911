"""Gradient agreement over training (mmoe_core.gradients) as a figure: a panel per task pair, a line per model."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from .config import MODEL_KINDS
from .plots import _axis_name, _figure, _panels, _rgba, empty_figure, figure_text, model_color, model_order


def agreement_curves(curves: pd.DataFrame, pair_names: Sequence[str], height: int = 300) -> go.Figure:
    """Gradient agreement over training: a panel per task pair, a line per model (mean over seeds, ±1 sd band).

    curves: views.curve_frame(metrics, "grad_agreement", ("probe",)); its task column is the pair index."""
    pair_names = figure_text(pair_names)
    if curves.empty:
        return empty_figure("Gradient agreement appears with the first recorded point…", height)
    traces: list[dict] = []
    for model in model_order(curves["model"].unique()):
        color, name = model_color(model), MODEL_KINDS.get(model, model)
        for pair in range(len(pair_names)):
            c = curves[(curves["model"] == model) & (curves["task"] == pair)].sort_values("step")
            if c.empty:
                continue
            axes = {"xaxis": _axis_name("x", pair), "yaxis": _axis_name("y", pair)}
            steps, mean, sd = c["step"].tolist(), c["mean"].to_numpy(), c["sd"].to_numpy()
            if (c["n"] > 1).any():
                band = (mean + sd).tolist() + (mean - sd).tolist()[::-1]
                traces.append(
                    {
                        "type": "scatter",
                        "x": steps + steps[::-1],
                        "y": band,
                        "fill": "toself",
                        "fillcolor": _rgba(color, 0.15),
                        "line": {"width": 0},
                        "hoverinfo": "skip",
                        "showlegend": False,
                        "legendgroup": model,
                        **axes,
                    }
                )
            traces.append(
                {
                    "type": "scatter",
                    "x": steps,
                    "y": mean.tolist(),
                    "name": name,
                    "legendgroup": model,
                    "showlegend": pair == 0,
                    "mode": "lines" if len(steps) > 2 else "lines+markers",
                    "line": {"color": color, "width": 2},
                    "marker": {"size": 4, "color": color},
                    "hovertemplate": f"{name}<br>cosine %{{y:.3f}}<br>step %{{x}}<extra></extra>",
                    **axes,
                }
            )
    layout = _panels(pair_names, "step", "gradient cosine", {"range": [-1.05, 1.05], "zeroline": True})
    return _figure(traces, layout, height)
