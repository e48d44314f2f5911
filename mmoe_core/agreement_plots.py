"""Per-model measures recorded on the probe rows, over training, as figures: gradient agreement
(mmoe_core.gradients; a panel per task pair) and routing specialisation (mmoe_core.specialisation)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from .config import MODEL_KINDS
from .plots import _axis_name, _figure, _panels, band_trace, empty_figure, figure_text, model_color, model_order


def agreement_curves(curves: pd.DataFrame, pair_names: Sequence[str], height: int = 300) -> go.Figure:
    """Gradient agreement over training: a panel per task pair, a line per model (mean over seeds, ±1 sd band).

    curves: views.curve_frame(metrics, "grad_agreement", ("probe",)); its task column is the pair index."""
    y = {"range": [-1.05, 1.05], "zeroline": True}
    return probe_curves(curves, figure_text(pair_names), "gradient cosine", y, "Gradient agreement", height)


def specialisation_curves(curves: pd.DataFrame, height: int = 280) -> go.Figure:
    """Routing specialisation S over training, a line per gated model (mean over seeds, ±1 sd band).

    curves: views.curve_frame(metrics, "routing_specialisation", ("probe",)); one model-wide value (task -1)."""
    curves = curves.assign(task=0)
    return probe_curves(curves, [""], "specialisation S", {"zeroline": True}, "Routing specialisation", height)


def probe_curves(
    curves: pd.DataFrame,
    panel_names: Sequence[str],
    y_title: str,
    y: dict,
    what: str,
    height: int,
    x_title: str = "step",
) -> go.Figure:
    """A panel per entry of panel_names (the curves' task column indexes them), a line per model over the
    curves' step column (training steps, or a sweep's p)."""
    pair_names = panel_names
    if curves.empty:
        return empty_figure(f"{what} appears with the first recorded point…", height)
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
                traces.append(band_trace(steps, mean, sd, color, model, axes))
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
                    "hovertemplate": f"{name}<br>{y_title or what} %{{y:.4f}}<br>{x_title} %{{x}}<extra></extra>",
                    **axes,
                }
            )
    return _figure(traces, _panels(pair_names, x_title, y_title, y), height)


def sweep_curves(frame: pd.DataFrame, height: int = 320) -> go.Figure:
    """The p-sweep (mmoe_core.p_sweep.sweep_frame): validation loss, gate task difference and routing
    specialisation against p, a line per model (mean over seeds, ±1 sd band): the paper's Fig. 4 and why."""
    from .p_sweep import MEASURES

    titles = [title for _, _, title in MEASURES]
    fig = probe_curves(frame, titles, "", {"zeroline": True}, "The sweep", height, x_title="task correlation p")
    fig.update_layout(margin={"t": 80}, legend={"y": 1.16})  # the legend above the panel titles, not on them
    return fig
