"""Protects the rules the pages show: mean ± spread over seeds, latest gate snapshots, the results table and
which model won, the runs list, progress text and the model diagram."""

from __future__ import annotations

import json
import math
import time

import pandas as pd
import pytest

from mmoe_core.config import RunConfig
from mmoe_core.models.zoo import build_spec, matched_bottom_units
from mmoe_core.runtime.jobs import run_state
from mmoe_core.views import (
    MAX_DRAWN_EXPERTS,
    config_summary,
    curve_frame,
    format_duration,
    gate_matrix,
    gate_specialisation,
    gated_models,
    metrics_csv,
    model_dot,
    n_tasks_of,
    point_count,
    progress_text,
    refresh_mode,
    results_table,
    runs_table,
    task_names,
    winner,
    winner_text,
)


def metric_rows(rows):
    return pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])


def test_curve_frame_means_over_finite_seeds_only():
    m = metric_rows(
        [
            ("mmoe", 10, 0, 0, "val", "loss", 1.0),
            ("mmoe", 10, 1, 0, "val", "loss", 3.0),
            ("mmoe", 10, 2, 0, "val", "loss", float("nan")),  # a diverged seed drops out
            ("mmoe", 10, 0, 0, "val", "auc", 0.9),  # another metric: not a loss
            ("omoe", 10, 0, 0, "train", "loss", 2.0),
            ("omoe", 10, 0, 0, "test", "loss", 5.0),  # test split: not a curve
        ]
    )
    c = curve_frame(m).set_index(["model", "split"])
    assert c.loc[("mmoe", "val"), "mean"] == pytest.approx(2.0)
    assert c.loc[("mmoe", "val"), "sd"] == pytest.approx(math.sqrt(2.0))  # sample sd of 1 and 3
    assert c.loc[("mmoe", "val"), "n"] == 2
    assert c.loc[("omoe", "train"), "sd"] == 0.0  # one seed: no spread, not NaN
    assert len(c) == 2
    auc = curve_frame(m, metric="auc")
    assert auc["mean"].tolist() == [0.9]


def test_curve_frame_and_counts_of_an_empty_run():
    empty = metric_rows([])
    assert curve_frame(empty).empty and point_count(empty) == 0
    assert n_tasks_of(empty, RunConfig(n_tasks=3)) == 3
    m = metric_rows([("mmoe", s, 0, t, "val", "loss", 1.0) for s in (0, 50, 100) for t in range(4)])
    assert point_count(m) == 3 and n_tasks_of(m, RunConfig()) == 4  # recorded tasks win over the config


def gate_rows(rows):
    return pd.DataFrame(rows, columns=["model", "step", "task", "expert", "weight"])


def test_gate_matrix_takes_the_latest_snapshot_unless_asked():
    g = gate_rows(
        [
            ("mmoe", 0, 0, 0, 0.5),
            ("mmoe", 0, 0, 1, 0.5),
            ("mmoe", 0, 1, 0, 0.5),
            ("mmoe", 0, 1, 1, 0.5),
            ("mmoe", 50, 0, 0, 0.9),
            ("mmoe", 50, 0, 1, 0.1),
            ("mmoe", 50, 1, 0, 0.2),
            ("mmoe", 50, 1, 1, 0.8),
            ("omoe", 50, 0, 0, 1.0),
        ]
    )
    latest = gate_matrix(g, "mmoe")
    assert latest.to_numpy().tolist() == [[0.9, 0.1], [0.2, 0.8]]
    assert gate_matrix(g, "mmoe", step=0).to_numpy().tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert gate_matrix(g, "shared_bottom").empty
    assert gated_models(g) == ["omoe", "mmoe"]  # the paper's order, not the table's
    assert gate_specialisation(latest) == pytest.approx(0.7)  # TV distance of (.9,.1) and (.2,.8)


def test_gate_specialisation_bounds():
    same = pd.DataFrame([[0.25, 0.75], [0.25, 0.75]])
    disjoint = pd.DataFrame([[1.0, 0.0], [0.0, 1.0]])
    assert gate_specialisation(same) == 0.0
    assert gate_specialisation(disjoint) == 1.0
    assert gate_specialisation(pd.DataFrame([[1.0, 0.0]])) is None  # one task: nothing to compare


SUMMARY = {
    "task_names": ["income", "married"],
    "task_kinds": ["binary", "binary"],
    "models": {
        "shared_bottom": {
            "params": 100,
            "paper_params": 90,
            "status": "done",
            "message": "",
            "seconds": 1.5,
            "test_loss": [0.4, 0.6],
            "test_loss_mean": 0.5,
            "test_auc": [0.8, 0.7],
            "test_auc_mean": 0.75,
        },
        "omoe": {
            "params": 120,
            "paper_params": 90,
            "status": "diverged",
            "message": "loss became NaN",
            "seconds": 1.0,
            "test_loss": [None, None],
            "test_loss_mean": None,
        },
        "mmoe": {
            "params": 130,
            "paper_params": 90,
            "status": "done",
            "message": "",
            "seconds": 2.0,
            "test_loss": [0.3, 0.5],
            "test_loss_mean": 0.4,
            "test_auc": [0.85, 0.75],
            "test_auc_mean": 0.8,
        },
    },
}


def test_one_seed_names_no_winner_but_says_who_is_ahead_on_each_tasks_own_metric():
    assert winner(SUMMARY) is None  # one seed: a 4% gap is luck as often as not
    assert winner({"models": {}}) is None and winner(None) is None
    text = winner_text(SUMMARY, ["Income", "Married"])
    assert text.startswith("Ahead on one seed: on Income, MMoE AUC 0.8500 vs Shared-Bottom 0.8000")
    assert "on Married, MMoE AUC 0.7500 vs Shared-Bottom 0.7000" in text
    assert "run 6 or more seeds to name a winner" in text


def _entry(losses, aucs=None, status="done"):
    """A model's summary entry over seeds: losses (r, k) with None for a failed seed."""
    per_seed = []
    for r, row in enumerate(losses):
        seed = {"seed_index": r, "test_loss": row, "test_loss_mean": None if None in row else sum(row) / len(row)}
        if aucs is not None:
            seed["test_auc"] = aucs[r]
        per_seed.append(seed)
    finite = [row for row in losses if None not in row]
    entry = {
        "params": 1,
        "paper_params": 1,
        "status": status,
        "message": "",
        "seconds": 1.0,
        "test_loss": [sum(c) / len(c) for c in zip(*finite)],
        "test_loss_mean": sum(map(sum, finite)) / (len(finite) * len(finite[0])),
        "per_seed": per_seed,
    }
    if aucs is not None:
        entry["test_auc"] = [None if None in c else sum(c) / len(c) for c in zip(*aucs)]
    return entry


def test_winner_needs_every_seed_pair_to_agree_and_failed_seeds_count():
    mm = _entry([[0.10 + 0.001 * r, 0.20] for r in range(8)])
    sb = _entry([[0.15 + 0.001 * r, 0.25] for r in range(8)])
    summary = {"task_kinds": ["regression", "regression"], "models": {"shared_bottom": sb, "mmoe": mm}}
    assert winner(summary) == "mmoe"
    text = winner_text(summary, ["Task 1", "Task 2"])
    assert text.startswith("MMoE wins on every task, on paired seeds: on Task 1, MMoE MSE 0.1035 vs Shared-Bottom")
    assert "ahead on 8 of 8 seeds: a clear lead" in text
    t = results_table(summary, ["Task 1", "Task 2"]).set_index("Model")
    assert t.loc["MMoE ★", "Task 1 test loss"] == "0.1035 ± 0.0024"  # mean ± sd over 8 seeds
    assert t.loc["MMoE ★", "Failed seeds"] == 0 and "Mean test loss" in t.columns  # two MSEs: a fair mean
    # MMoE diverges on 2 of the 8 seeds: those count as losses, so the lead is no longer clear
    mm2 = _entry([[0.10, 0.20]] * 6 + [[None, None]] * 2)
    close = {"task_kinds": ["regression", "regression"], "models": {"shared_bottom": sb, "mmoe": mm2}}
    assert winner(close) is None
    text = winner_text(close, ["Task 1", "Task 2"])
    assert text.startswith("No clear winner over 8 seeds: on Task 1, MMoE MSE 0.1 vs Shared-Bottom")
    assert "ahead on 6 of 8 seeds, 2 for MMoE: too close to call" in text
    assert results_table(close, ["Task 1", "Task 2"]).set_index("Model").loc["MMoE", "Failed seeds"] == 2


def test_tasks_of_different_kinds_are_compared_by_their_own_metric_never_a_mean_of_losses():
    """A CSV run with a regression and a binary task: OMoE has the lowest mean of MSE and log-loss, MMoE the
    best AUC and an equal MSE. The old banner averaged the two losses and crowned OMoE."""
    om = _entry([[0.50, 0.20]] * 8, aucs=[[None, 0.70]] * 8)
    mm = _entry([[0.50, 0.30]] * 8, aucs=[[None, 0.80]] * 8)
    summary = {"task_kinds": ["regression", "binary"], "models": {"omoe": om, "mmoe": mm}}
    assert winner(summary) is None  # tied on the regression task: no model wins every task
    text = winner_text(summary, ["Price", "Bought"])
    assert "on Bought, MMoE AUC 0.8000 vs OMoE 0.7000" in text and "OMoE wins" not in text
    t = results_table(summary, ["Price", "Bought"])
    assert "Mean test loss" not in t.columns and "Bought test AUC" in t.columns and "Price test AUC" not in t.columns


def test_results_table_of_regression_tasks_has_no_auc_and_falls_back_to_the_models_table():
    summary = {
        "models": {
            "mmoe": {"params": 1, "paper_params": 1, "status": "done", "test_loss": [0.1, 0.2], "test_loss_mean": 0.15}
        }
    }
    t = results_table(summary, ["Task 1", "Task 2"])
    assert not [c for c in t.columns if "AUC" in c]
    models = pd.DataFrame(
        [{"model": "omoe", "status": "failed", "message": "boom", "params": 5, "paper_params": 4, "seconds": None}]
    )
    fallback = results_table(None, ["Task 1"], models)
    assert fallback.to_dict("records")[0]["Status"] == "failed: boom"


def test_task_names_fall_back_when_missing_or_mismatched():
    assert task_names(None, 2) == ["Task 1", "Task 2"]
    assert task_names({"summary": {"task_names": ["a", "b"]}}, 3) == ["Task 1", "Task 2", "Task 3"]
    assert task_names({"summary": {"task_names": ["task 1", "never married"]}}, 2) == ["Task 1", "Never married"]


def test_runs_table_reads_each_stored_run():
    now = time.time()
    runs = pd.DataFrame(
        [
            {
                "id": "aaaaaaaaaaaa",
                "kind": "train",
                "status": "done",
                "created": now,
                "label_correlation": 0.41,
                "rows_per_s": 1234.0,
                "summary": json.dumps(SUMMARY),
                "config": RunConfig(correlation=0.9).to_json(),
                "label": "",
            },
            {
                "id": "bbbbbbbbbbbb",
                "kind": "train",
                "status": "running",
                "created": now - 60,
                "label_correlation": None,
                "rows_per_s": None,
                "summary": None,
                "config": '{"not_a_field": 1}',
                "label": "sweep",
            },
            {
                "id": "cccccccccccc",
                "kind": "train",
                "status": "running",
                "pace": "pause",  # held by its owner's Pause: the list says so (#17 item 3)
                "created": now - 120,
                "label_correlation": None,
                "rows_per_s": None,
                "summary": None,
                "config": RunConfig(sweep=(0, 1), seeds=2).to_json(),
                "label": "",
            },
        ]
    )
    t = runs_table(runs)
    assert t["Run"].tolist() == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
    assert t["Status"].tolist() == ["done", "running", "paused"]
    assert t["Configuration"][2].startswith("sweep p = 0, 1 · 100,000 rows")
    first, second, _ = t.to_dict("records")
    assert first["Winner"] == ""  # one seed: no winner named
    assert first["Configuration"].startswith("p = 0.9 · 100,000 rows")
    assert second["Configuration"] == "(config from another version)" and second["Source"] == "sweep"


def test_config_summary_names_data_models_and_seeds():
    assert config_summary(RunConfig()) == "p = 0.5 · 100,000 rows · Shared-Bottom, OMoE, MMoE · 1,500 steps"
    s = config_summary(RunConfig(dataset="census1", seeds=4, models=("mmoe",)))
    assert s == "census1 · MMoE · 1,500 steps, 4 seeds"  # no "20,000 rows": that is a synthetic-data setting
    csv = RunConfig(dataset="/srv/uploads/abc/churn.csv", targets=("a", "b"), rows=20_000)
    assert config_summary(csv, {"train_rows": 320}).startswith("churn.csv · 320 training rows · ")


@pytest.mark.parametrize(
    "seconds, text",
    [(None, "–"), (0.4, "0 s"), (59, "59 s"), (61, "1 min 01 s"), (3725, "1 h 02 min"), (float("nan"), "–")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_progress_text_for_each_state():
    queued = run_state({"status": "queued", "step": 0, "total_steps": 100}, queue_position=3)
    assert progress_text(queued) == "Waiting in the queue, position 3"
    running = run_state(
        {"status": "running", "step": 50, "total_steps": 100, "rows_per_s": 12_800.0, "started": time.time() - 10}
    )
    text = progress_text(running)
    assert text.startswith("step 50 of 100 · 12,800 rows/s · ") and text.endswith(" s left")
    assert int(text.split("·")[-1].split()[0]) in (9, 10, 11)  # 10 s for 50 steps, 50 to go
    done = run_state({"status": "done", "step": 100, "total_steps": 100, "rows_per_s": 5.0})
    assert progress_text(done) == "step 100 of 100 · 5 rows/s · done"


def test_refresh_mode_polls_fast_until_the_first_point_and_slowly_in_the_queue():
    def state(status, position=None):
        return run_state({"status": status, "step": 0, "total_steps": 100}, queue_position=position)

    # next in line with a free slot: a worker claims it within ~0.1 s, so the page looks as for a first point
    assert refresh_mode(state("queued", 1), free_slot=True, has_points=False) == "first_point"
    assert refresh_mode(state("queued", 1), free_slot=False, has_points=False) == "queued"
    assert refresh_mode(state("queued", 2), free_slot=True, has_points=False) == "queued"
    assert refresh_mode(state("running"), free_slot=False, has_points=False) == "first_point"
    assert refresh_mode(state("running"), free_slot=False, has_points=True) == "live"
    for ended in ("done", "cancelled", "failed", "interrupted"):
        assert refresh_mode(state(ended), free_slot=True, has_points=True) is None
    assert refresh_mode(None, free_slot=True, has_points=False) is None


def test_metrics_csv_has_labels_and_task_names():
    m = metric_rows([("mmoe", 0, 0, 1, "val", "loss", 0.25)])
    lines = metrics_csv(m, ["A", "B"]).decode().splitlines()
    assert lines[0] == "model,model_label,step,replica,task,split,metric,value,task_name"
    assert lines[1] == "mmoe,MMoE,0,0,1,val,loss,0.25,B"


def test_model_dot_wires_each_architecture():
    cfg = RunConfig(n_experts=3)
    mmoe = model_dot(build_spec("mmoe", cfg), ["income", "married"])
    assert mmoe.count("softmax(W x) over 3") == 2  # a gate per task
    assert all(f"e{i} -> m{g};" in mmoe for i in range(3) for g in range(2))
    assert "m0 -> t0;" in mmoe and "m1 -> t1;" in mmoe and "Tower (income)" in mmoe
    omoe = model_dot(build_spec("omoe", cfg))
    assert omoe.count("softmax(") == 1 and "m0 -> t0;" in omoe and "m0 -> t1;" in omoe
    sb = model_dot(build_spec("shared_bottom", cfg))
    width = matched_bottom_units(cfg)  # the Shared-Bottom as wide as MMoE's parameter count allows
    assert "softmax" not in sb and f"Shared bottom\\n100→{width}, ReLU" in sb and "e0 -> t1;" in sb
    st = model_dot(build_spec("single_task", cfg))
    assert "e0 -> t0;" in st and "e1 -> t1;" in st and "e0 -> t1;" not in st


def test_model_dot_collapses_many_experts():
    dot = model_dot(build_spec("mmoe", RunConfig(n_experts=40)))
    assert f"… {40 - MAX_DRAWN_EXPERTS} more" in dot
    assert f"Expert {MAX_DRAWN_EXPERTS + 1}\\n" not in dot and f"Expert {MAX_DRAWN_EXPERTS}\\n" in dot


def test_model_dot_draws_cgc_masks_and_ple_levels():
    cfg = RunConfig(models=("cgc", "ple"), shared_experts=2, task_experts=1, levels=3)
    cgc = model_dot(build_spec("cgc", cfg), ["A", "B"])
    assert "Shared expert 1" in cgc and "Expert of A" in cgc and "Expert of B" in cgc
    assert cgc.count("softmax(W x) over 3") == 2  # 2 shared + its own 1
    assert "e2 -> m0;" in cgc and "e2 -> m1;" not in cgc  # A's expert feeds only A's mix
    assert "e3 -> m1;" in cgc and "e3 -> m0;" not in cgc
    assert "repeats in" not in cgc
    assert "repeats in 3 levels" in model_dot(build_spec("ple", cfg))
