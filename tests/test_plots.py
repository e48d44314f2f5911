"""Protects the figures: one colour per model everywhere, dashed train and solid validation lines, a band only
with several seeds, per-task panels, gate heatmaps on a fixed 0..1 scale, gate evolution per expert."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mmoe_core.config import MODEL_KINDS
from mmoe_core.plots import MODEL_COLORS, gate_evolution, gate_heatmap, log_ticks, loss_curves, model_color, model_order
from mmoe_core.views import curve_frame, gate_matrix


def metrics(models=("shared_bottom", "mmoe"), replicas=1, steps=(0, 50, 100), tasks=2):
    rows = []
    for m in models:
        for s in steps:
            for r in range(replicas):
                for t in range(tasks):
                    value = 1.0 / (1 + s) + 0.1 * r + 0.01 * t
                    rows.append((m, s, r, t, "val", "loss", value))
                    if s:
                        rows.append((m, s, r, t, "train", "loss", value * 0.9))
    return pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])


def lines(fig):
    return [t for t in fig.data if t.type == "scatter" and t.fill is None and t.x != (None,)]


def test_every_model_has_its_own_colour():
    assert set(MODEL_COLORS) == set(MODEL_KINDS)
    assert len(set(MODEL_COLORS.values())) == len(MODEL_COLORS)
    assert model_color("not_a_model") not in MODEL_COLORS.values()
    order = model_order(["mmoe", "zzz", "shared_bottom", "single_task"])
    assert order == ["single_task", "shared_bottom", "mmoe", "zzz"]


def test_loss_curves_one_line_per_model_split_and_task():
    fig = loss_curves(curve_frame(metrics()), ["Task 1", "Task 2"], labels={"mmoe": "MMoE · 14,818 params"})
    data = lines(fig)
    assert len(data) == 2 * 2 * 2  # models x splits x tasks
    for t in data:
        model = "mmoe" if t.name.startswith("MMoE") else "shared_bottom"
        assert t.line.color == MODEL_COLORS[model]
    val = [t for t in data if t.line.dash == "solid"]
    train = [t for t in data if t.line.dash == "dash"]
    assert len(val) == len(train) == 4
    assert all(list(t.x) == [0, 50, 100] for t in val) and all(list(t.x) == [50, 100] for t in train)
    assert {t.xaxis for t in data} == {"x", "x2"} and {t.yaxis for t in data} == {"y", "y2"}
    shown = sorted(t.name for t in fig.data if t.showlegend is not False)
    assert shown == ["MMoE · 14,818 params", "Shared-Bottom", "train", "validation"]  # one entry each
    assert [a.text for a in fig.layout.annotations] == ["<b>Task 1</b>", "<b>Task 2</b>"]
    assert not [t for t in fig.data if t.fill == "toself"]  # one seed: no band


def test_loss_curves_band_is_plus_minus_one_sd_over_seeds():
    fig = loss_curves(curve_frame(metrics(models=("omoe",), replicas=3, tasks=1)), ["Task 1"])
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2  # train and validation
    val_band = next(b for b in bands if len(b.x) == 6)
    mean = [t for t in lines(fig) if t.line.dash == "solid"][0]
    upper = list(val_band.y[:3])
    assert upper[0] == pytest.approx(mean.y[0] + 0.1)  # values r*0.1 for r = 0, 1, 2: sd = 0.1
    assert val_band.fillcolor.startswith("rgba(245,133,24,")  # OMoE's orange, translucent


def test_loss_curves_log_axis_and_ticks():
    fig = loss_curves(curve_frame(metrics()), ["Task 1", "Task 2"], log_y=True)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    ticks = list(fig.layout.yaxis.tickvals)
    assert ticks == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0] and list(fig.layout.yaxis.ticktext)[-1] == "1"
    assert loss_curves(curve_frame(metrics()), ["Task 1", "Task 2"]).layout.yaxis.type == "linear"


@pytest.mark.parametrize(
    "lo, hi, expected", [(0.4, 18, [0.5, 1.0, 2.0, 5.0, 10.0]), (0.11, 0.15, None), (0, 1, None), (2, 1, None)]
)
def test_log_ticks(lo, hi, expected):
    assert log_ticks(lo, hi) == expected


def test_loss_curves_without_points_says_so():
    fig = loss_curves(curve_frame(metrics(steps=())), ["Task 1"])
    assert not fig.data and "Waiting for the first recorded point" in fig.layout.annotations[0].text


def gates(steps=(0, 50), experts=3, tasks=2):
    rows = [
        ("mmoe", s, t, e, (e + 1 + t) / sum(range(1 + t, experts + 1 + t)))
        for s in steps
        for t in range(tasks)
        for e in range(experts)
    ]
    return pd.DataFrame(rows, columns=["model", "step", "task", "expert", "weight"])


def test_gate_heatmap_colours_centre_on_even_use_and_prints_the_weights():
    matrix = gate_matrix(gates(), "mmoe")  # task 1: 1/6, 2/6, 3/6 over 3 experts -> half, even, 1.5x even
    fig = gate_heatmap(matrix, ["income", "married"], title="MMoE")
    (hm,) = fig.data
    assert hm.type == "heatmap" and (hm.zmin, hm.zmax, hm.zmid) == (-2.0, 2.0, 0.0)
    assert list(hm.z[0]) == pytest.approx([-1.0, 0.0, math.log2(1.5)], abs=1e-4)
    assert [list(r) for r in hm.text] == [pytest.approx(list(r), abs=1e-4) for r in matrix.to_numpy()]
    assert list(hm.x) == ["E1", "E2", "E3"] and list(hm.y) == ["income", "married"]
    assert hm.texttemplate == "%{text:.2f}" and hm.colorscale[2][1] == "#F7F7F7"  # white = even use
    assert list(hm.colorbar.ticktext) == ["1/4×", "1/2×", "1/3 (even)", "2×", "4×"]
    assert fig.layout.title.text == "MMoE"
    dead = matrix.copy()
    dead.iloc[0] = [0.0, 0.0, 1.0]  # a top-k gate: an unused expert is clipped to the scale's end, not -inf
    assert list(gate_heatmap(dead, ["a", "b"]).data[0].z[0]) == pytest.approx([-2.0, -2.0, math.log2(3)], abs=1e-4)
    assert "No gate snapshot" in gate_heatmap(pd.DataFrame(), ["a"]).layout.annotations[0].text


def test_gate_evolution_one_line_per_expert_and_task():
    fig = gate_evolution(gates(steps=(0, 50, 100)), ["Task 1", "Task 2"])
    assert len(fig.data) == 3 * 2
    assert all(list(t.x) == [0, 50, 100] for t in fig.data)
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["E1", "E2", "E3"]  # each expert once, same colour in both panels
    colours = {(t.name, t.line.color) for t in fig.data}
    assert len(colours) == 3
    assert list(fig.layout.yaxis.range) == pytest.approx([0, 0.5 * 1.15])  # a little above the top weight
    assert list(fig.layout.yaxis2.range) == list(fig.layout.yaxis.range)  # panels share the scale
    flat = gates(experts=8).assign(weight=0.125)  # untrained gates: the axis still shows a useful range
    assert gate_evolution(flat, ["Task 1", "Task 2"]).layout.yaxis.range[1] == 0.3
    peaked = gates().assign(weight=0.95)
    assert gate_evolution(peaked, ["Task 1", "Task 2"]).layout.yaxis.range[1] == 1.0


def test_task_names_in_figures_are_text_not_html():
    """Plotly renders a subset of HTML in titles, legends and ticks: a column named like a link must stay text."""
    hostile = ['<a href="https://evil.example">click</a>', "<b>bold</b> & co"]
    shown = ['&lt;a href="https://evil.example"&gt;click&lt;/a&gt;', "&lt;b&gt;bold&lt;/b&gt; &amp; co"]
    fig = loss_curves(curve_frame(metrics(), "loss", ("train", "val")), hostile)
    assert [a.text for a in fig.layout.annotations] == [f"<b>{s}</b>" for s in shown]
    assert list(gate_heatmap(gate_matrix(gates(), "mmoe"), hostile).data[0].y) == shown
    assert "<a " not in gate_evolution(gates(), hostile).to_json()
