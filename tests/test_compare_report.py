"""Protects comparing runs (which ids a `?compare=` link may name, which settings differ, the labels and the
overlay figure) and the one-file run report (self-contained, titled with p and id, user text escaped)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from mmoe_core.config import RunConfig
from mmoe_core.report import figure_json, run_report, slide_config, slide_title
from mmoe_core.run_compare import (
    MAX_COMPARED,
    compare_curves,
    compare_results,
    differing_fields,
    parse_compare_ids,
    run_labels,
)
from mmoe_core.runs import RunStore
from mmoe_core.views import curve_frame

TINY = {"rows": 400, "eval_rows": 100, "steps": 40, "log_every": 20, "batch_size": 64}
IDS = [f"{i:012x}" for i in range(1, 12)]


def test_compare_ids_are_checked_deduplicated_and_capped():
    text = f"{IDS[0]}, {IDS[1]},{IDS[0]},../../etc/passwd,{'A' * 12},ffffffffffff"
    ids, warnings = parse_compare_ids(text, known=IDS)
    assert ids == [IDS[0], IDS[1]]
    assert len(warnings) == 3
    assert "'../../etc/passwd' is not a run id" in warnings[0] and "'AAAAAAAAAAAA' is not a run id" in warnings[1]
    assert warnings[2] == "run ffffffffffff is not on this server; left out"
    ids, warnings = parse_compare_ids(",".join(IDS), known=IDS)
    assert ids == IDS[:MAX_COMPARED] and len(warnings) == len(IDS) - MAX_COMPARED
    assert "at most 8 runs" in warnings[0]
    ids, warnings = parse_compare_ids("x" * 5000)  # a long value is named shortly
    assert ids == [] and len(warnings[0]) < 80
    assert parse_compare_ids("") == ([], [])


def test_differing_fields_in_declaration_order():
    a, b = RunConfig(correlation=0.2), RunConfig(correlation=0.9, lr=0.01)
    assert differing_fields([a, b]) == ["correlation", "lr"]
    assert differing_fields([a, a.with_(models=("mmoe",)), a]) == ["models"]
    assert differing_fields([a, a]) == [] and differing_fields([a]) == []


def test_run_labels_name_what_differs_and_fall_back_to_ids():
    configs = {IDS[0]: RunConfig(correlation=0.2, lr=0.003), IDS[1]: RunConfig(correlation=0.9, lr=0.003)}
    assert run_labels(configs) == {IDS[0]: "p = 0.2", IDS[1]: "p = 0.9"}
    configs[IDS[2]] = RunConfig(correlation=0.9, lr=0.01)
    assert run_labels(configs) == {
        IDS[0]: "p = 0.2 · lr = 0.003",
        IDS[1]: "p = 0.9 · lr = 0.003",
        IDS[2]: "p = 0.9 · lr = 0.01",
    }
    same = {IDS[0]: RunConfig(), IDS[1]: RunConfig()}  # re-runs of one config
    assert run_labels(same) == {IDS[0]: f"run {IDS[0][:6]}", IDS[1]: f"run {IDS[1][:6]}"}
    devices = {IDS[0]: RunConfig(device="cpu", n_experts=4), IDS[1]: RunConfig(n_experts=4), IDS[2]: RunConfig()}
    labels = run_labels(devices)  # the device is not a label; equal labels get the id
    assert labels[IDS[0]] == f"experts = 4 ({IDS[0][:6]})" and labels[IDS[2]] == "experts = 8"


def _curves(shift: float) -> pd.DataFrame:
    rows = [
        (model, step, 0, task, split, "loss", 1.0 / (step + 1) + shift + 0.1 * task)
        for model in ("shared_bottom", "mmoe")
        for step in (0, 10, 20)
        for task in (0, 1)
        for split in ("train", "val")
    ]
    metrics = pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])
    return curve_frame(metrics, splits=("val",))


def test_compare_curves_a_colour_per_run_a_dash_per_model_validation_only():
    curves = {IDS[0]: _curves(0.0), IDS[1]: _curves(0.5)}
    labels = {IDS[0]: "p = 0.2", IDS[1]: "p = 0.9"}
    fig = compare_curves(curves, labels, ["Task 1", "Task 2"], log_y=False)
    assert len(fig.data) == 2 * 2 * 2  # runs x models x tasks
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["p = 0.2 · Shared-Bottom", "p = 0.2 · MMoE", "p = 0.9 · Shared-Bottom", "p = 0.9 · MMoE"]
    colours = {t.name: t.line.color for t in fig.data}
    assert colours["p = 0.2 · MMoE"] == colours["p = 0.2 · Shared-Bottom"] != colours["p = 0.9 · MMoE"]
    dashes = {t.name: t.line.dash for t in fig.data}
    assert dashes["p = 0.2 · Shared-Bottom"] == "solid" and dashes["p = 0.2 · MMoE"] == "dash"
    second = next(t for t in fig.data if t.name == "p = 0.9 · MMoE" and t.yaxis == "y2")
    assert list(second.y) == pytest.approx([1.0 + 0.6, 1 / 11 + 0.6, 1 / 21 + 0.6])
    only = compare_curves(curves, labels, ["Task 1", "Task 2"], models=["mmoe"])
    assert {t.name.split(" · ")[1] for t in only.data} == {"MMoE"} and only.layout.yaxis.type == "log"
    assert "No validation points" in compare_curves({}, {}, ["T"]).layout.annotations[0].text


def test_compare_results_one_row_per_run_and_model_unfinished_left_out():
    summary = {
        "models": {
            "mmoe": {"test_loss": [0.1, 0.2], "test_loss_mean": 0.15, "status": "done"},
            "shared_bottom": {"test_loss": [0.3, 0.4], "test_loss_mean": 0.35, "status": "done"},
        }
    }
    table = compare_results({IDS[0]: summary, IDS[1]: None}, {IDS[0]: "p = 0.2"}, ["A", "B"])
    assert table[["Run", "Model"]].values.tolist() == [["p = 0.2", "Shared-Bottom"], ["p = 0.2", "MMoE"]]
    assert table["A test loss"].tolist() == [0.3, 0.1] and table["Mean test loss"].tolist() == [0.35, 0.15]


@pytest.fixture
def stored(tmp_path):
    from mmoe_core.runtime.execute import execute_run

    store = RunStore(tmp_path / "home")
    run_id = store.create_run(RunConfig(**TINY, correlation=0.3, models=("omoe", "mmoe")), status="running")
    execute_run(store, run_id)
    return store, run_id


def test_report_is_one_offline_file_with_figures_config_and_results(stored):
    store, run_id = stored
    text = run_report(store, run_id)
    body = text.split("</head>", 1)[1]  # after the inlined plotly.js
    assert not re.search(r"(src|href)=[\"']?https?:", body)  # nothing fetched: it opens offline
    assert "<script src" not in text and "<link" not in text
    assert body.count("Plotly.newPlot(") == 4  # loss, 2 heatmaps, MMoE evolution
    assert len(text) > 3_000_000  # plotly.js itself is inside
    assert f"<title>MMoE Playground · p = 0.3 · run {run_id}</title>" in text
    assert "<td>correlation</td>" in text and "<td>0.3</td>" in text  # the config table
    assert "Results on the test set" in text and "MMoE" in text
    payloads = re.findall(r";\}\)\((\{.*?\})\);</script>", body)
    assert len(payloads) == 4
    loss = json.loads(payloads[0])
    assert loss["layout"]["title"]["text"] == f"p = 0.3 · run {run_id}"


def test_report_escapes_user_text(stored):
    store, run_id = stored
    row = store.run(run_id)
    hostile = "</script><img src=x onerror=alert(1)>"
    store.update_run(run_id, summary={**row["summary"], "task_names": [hostile, "b&b"]})
    text = run_report(store, run_id).split("</head>", 1)[1]  # after the inlined plotly.js
    assert hostile not in text and "<img" not in text
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in text  # the results table, escaped
    assert "\\u0026lt;/script\\u0026gt;" in text  # in the figures: escaped for plotly, then for the JSON


def test_figure_json_cannot_close_its_script():
    import plotly.graph_objects as go

    fig = go.Figure(layout={"title": {"text": "</script><b>x</b>"}})
    out = figure_json(fig)
    assert "<" not in out and ">" not in out and json.loads(out)["layout"]["title"]["text"] == "</script><b>x</b>"


def test_slide_downloads_are_720p_and_named_after_p_and_id():
    config = RunConfig(correlation=0.25)
    opts = slide_config(config, "abcdef123456", "loss")["toImageButtonOptions"]
    assert (opts["width"], opts["height"]) == (1280, 720) and opts["filename"] == "mmoe_abcdef123456_p0.25_loss"
    assert slide_title(config, "abcdef123456") == "p = 0.25 · run abcdef123456"
    assert slide_title(RunConfig(dataset="census1"), "abcdef123456") == "census1 · run abcdef123456"
