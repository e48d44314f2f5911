"""A study's figures (mmoe_core.studies.plots) from DataFrames: panels, legends, every seed drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmoe_core.studies.plots import curves_figure, label_correlation_figure, trainability_figure


def _curves() -> pd.DataFrame:
    rows = [
        {"correlation": p, "lr": 1e-3, "model": m, "step": s, "mean": 1.0 / (s + 1), "sd": 0.1, "n": 4}
        for p in (0.5, 1.0)
        for m in ("mmoe", "shared_bottom")
        for s in (0, 10, 20)
    ]
    return pd.DataFrame(rows)


def test_curves_figure_has_a_panel_per_correlation_and_one_legend_entry_per_model():
    fig = curves_figure(_curves(), [0.5, 0.9, 1.0], steps=40)
    assert [a.text for a in fig.layout.annotations] == ["<b>p = 0.5</b>", "<b>p = 0.9</b>", "<b>p = 1</b>"]
    lines = [t for t in fig.data if t.mode == "lines" and t.fill is None]
    assert len(lines) == 4 and sorted(t.name for t in lines if t.showlegend) == ["MMoE", "Shared-Bottom"]
    assert lines[0].name == "Shared-Bottom" and lines[0].xaxis == "x" and lines[2].xaxis == "x3"  # p = 1 panel
    band, line = fig.data[0], fig.data[1]
    n = len(line.y)
    assert np.allclose(np.asarray(band.y[:n]), np.asarray(line.y) + 0.1)  # the band is mean ± 1 sd
    assert np.allclose(np.asarray(band.y[n:][::-1]), np.maximum(np.asarray(line.y) - 0.1, 0))
    assert list(fig.layout.xaxis.range) == [0, 40]  # the whole run, so a partial one shows its progress
    assert list(fig.layout.yaxis.range) == pytest.approx([0, 1.1 * (1 / 11 + 0.1)])  # from step 10 on
    assert curves_figure(_curves().iloc[0:0], [0.5]).layout.annotations[0].text.startswith("No points yet")


def test_trainability_figure_draws_every_seed():
    final = pd.DataFrame(
        {
            "correlation": [0.5] * 6 + [1.0] * 3,
            "lr": 1e-3,
            "model": ["mmoe"] * 3 + ["omoe"] * 3 + ["mmoe"] * 3,
            "test_loss_mean": [0.1, 0.2, np.nan, 0.3, 0.4, 0.5, 0.1, 0.1, 0.2],
        }
    )
    fig = trainability_figure(final, [0.5, 1.0, 0.9])
    assert [len(t.y) for t in fig.data] == [3, 2, 3]  # OMoE first (paper order); the diverged seed is not drawn
    assert [t.xaxis for t in fig.data] == ["x", "x", "x2"]
    note, third = fig.layout.annotations[-1], fig.layout.xaxis3.domain
    assert note.text == "not finished yet" and note.x == pytest.approx((third[0] + third[1]) / 2)
    hist = trainability_figure(final, [0.5, 1.0], kind="histogram")
    assert hist.layout.barmode == "overlay"
    assert [t.type for t in hist.data] == ["histogram"] * 3
    with pytest.raises(ValueError, match="kind='box' is unknown"):
        trainability_figure(final, [0.5], kind="box")


def test_label_correlation_figure_marks_the_studys_runs():
    draws = pd.DataFrame(
        {"p": [0.0, 0.5, 0.0, 0.5], "sine_terms": [0, 0, 10, 10], "draw": 0, "label_correlation": [0.0, 0.5, 0.0, 0.3]}
    )
    fig = label_correlation_figure(draws, pd.DataFrame({"p": [0.5], "label_correlation": [0.31]}))
    assert [t.name for t in fig.data] == [
        "label correlation = p",
        "linear tasks (m = 0)",
        "with 10 sine terms (m = 10)",
        "this study's runs (mean over seeds)",
    ]
