"""One run as a self-contained HTML report: its interactive figures (plotly.js inline, so it opens offline and
on a lecture-hall PC), every setting, and the results table. No streamlit here.

Everything that came from a user (CSV column names used as task names, a data set's file name, labels) is
escaped: in the page text with html.escape, inside the figures' JSON by writing '<' as '\\u003c' so no value can
close the script element that carries it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

from .agreement_plots import sweep_curves
from .config import RunConfig, field_help, field_names
from .p_sweep import sweep_frame
from .plots import gate_evolution, gate_heatmap, loss_curves
from .runs import RunStore
from .views import (
    curve_frame,
    gate_matrix,
    gate_specialisation,
    gated_models,
    model_label,
    n_tasks_of,
    results_table,
    task_names,
    winner_text,
)

SLIDE_W, SLIDE_H = 1280, 720  # a projector's 720p slide: the size figure downloads are rendered at


def slide_title(config: RunConfig, run_id: str) -> str:
    """What a figure taken out of the app is titled with: the run's p (or data set) and id."""
    if config.sweep:
        return f"p swept {min(config.sweep):g} to {max(config.sweep):g} · run {run_id}"
    if config.dataset == "synthetic":
        return f"p = {config.correlation:g} · run {run_id}"
    return f"{str(config.dataset).replace(chr(92), '/').rsplit('/', 1)[-1]} · run {run_id}"


def slide_config(config: RunConfig, run_id: str, what: str) -> dict[str, Any]:
    """plotly config: the camera button saves a 1280×720 PNG named after the run's p and id."""
    p = "psweep" if config.sweep else f"p{config.correlation:g}" if config.dataset == "synthetic" else "data"
    return {
        "displaylogo": False,
        "toImageButtonOptions": {
            "format": "png",
            "width": SLIDE_W,
            "height": SLIDE_H,
            "scale": 1,
            "filename": f"mmoe_{run_id}_{p}_{what}",
        },
    }


def figure_json(fig: go.Figure) -> str:
    """A figure as JSON safe to place inside a <script> element."""
    text = json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def run_figures(store: RunStore, run_id: str, names: Sequence[str]) -> list[tuple[str, go.Figure]]:
    """(name, figure) of everything the report draws: loss curves, each gated model's heatmap, MMoE's gates
    over training. `names` must already be escaped (plotly reads a subset of HTML in text)."""
    config = store.config(run_id)
    metrics, gates = store.metrics(run_id), store.gates(run_id)
    title = html.escape(slide_title(config, run_id))
    if config.sweep:  # replicas are several p: the sweep chart, not curves averaged over them
        return [("sweep", sweep_curves(sweep_frame(metrics, config)))]
    figs = [("loss", loss_curves(curve_frame(metrics), names, log_y=True, title=title))]
    for model in gated_models(gates):
        matrix = gate_matrix(gates, model)
        spec = gate_specialisation(matrix)
        text = model_label(model) + (f" · task difference {spec:.2f}" if spec is not None else "")
        figs.append((f"gates_{model}", gate_heatmap(matrix, names, title=f"{text} · {title}")))
    if "mmoe" in gated_models(gates):
        figs.append(
            ("evolution", gate_evolution(gates[gates["model"] == "mmoe"], names, title=f"MMoE gates · {title}"))
        )
    return figs


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, na_rep="–", float_format=lambda v: f"{v:.4g}")


def run_report(store: RunStore, run_id: str) -> str:
    """The whole report as one HTML string (~5 MB: plotly.js is inside)."""
    row = store.run(run_id)
    if row is None:
        raise ValueError(f"run {run_id} is not in the store; it may have been deleted")
    config = RunConfig.from_json(row["config"])
    metrics = store.metrics(run_id)
    names = task_names(row, n_tasks_of(metrics, config))
    figs = run_figures(store, run_id, names)  # the figures escape the names themselves
    values = config.to_dict()
    settings = pd.DataFrame(
        [{"Setting": n, "Value": json.dumps(values[n]), "Meaning": field_help(n)} for n in field_names()]
    )
    results = results_table(row.get("summary"), names, store.models(run_id))  # to_html escapes the names
    verdict = winner_text(row.get("summary")) or f"Status: {row['status']}"
    esc = html.escape
    plots = "\n".join(
        f'<div id="fig_{i}" class="fig"></div><script>(function(f){{Plotly.newPlot("fig_{i}", f.data, f.layout, '
        f"{{displaylogo: false, responsive: true}});}})({figure_json(fig)});</script>"
        for i, (_, fig) in enumerate(figs)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(f"MMoE Playground · {slide_title(config, run_id)}")}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}}
.fig{{margin:1em 0}}.verdict{{font-size:1.3em;font-weight:600}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>{esc(f"MMoE Playground · {slide_title(config, run_id)}")}</h1>
<p>Run <code>{esc(run_id)}</code> · status {esc(str(row["status"]))} · device {esc(str(row.get("device") or "–"))}</p>
<p class="verdict">{esc(verdict)}</p>
<h2>Results on the test set</h2>
{_table(results) if len(results) else "<p>No results: the run has not finished.</p>"}
<h2>Figures</h2>
{plots}
<h2>Configuration</h2>
<p>Load it again with <code>RunConfig.from_json</code> or the Playground's URL.</p>
{_table(settings)}
<p>Made by MMoE Playground, after Ma et al., KDD 2018.</p>
</body></html>
"""
