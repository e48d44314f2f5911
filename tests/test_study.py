"""Protects the paper's synthetic studies: Study validation and presets, aggregation of a study's stored runs
(curves, final losses, summary, paired gaps, progress), the claim checks, the sweep CLI's JSON, the figures,
and - on real training at a small budget - the model ordering the paper reports at p = 0.5."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mmoe_core.cli import main as cli_main
from mmoe_core.config import RunConfig
from mmoe_core.models.zoo import matched_bottom_units
from mmoe_core.runs import RunStore
from mmoe_core.studies.study import (
    PRESETS,
    Study,
    curves,
    final_losses,
    gap_table,
    label_correlations,
    list_studies,
    load_study,
    stop_study,
    study_label,
    study_progress,
    study_runs,
    submit_study,
    summary_table,
    sweep_results,
)

TINY = dict(rows=300, eval_rows=60, steps=20, log_every=10, batch_size=32, seeds=2)


@pytest.fixture(autouse=True)
def one_thread():
    """In-process training here is tiny; on a busy 2-core machine two intra-op threads ran it ~20x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- Study
@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(correlations=()), "correlations is empty; choose at least one value"),
        (dict(correlations=(0.5, 0.5)), "correlations=0.5,0.5 repeats a value; list each once"),
        (dict(correlations=(0.5, 1.5)), "correlations=1.5 is out of range; allowed -1 to 1"),
        (dict(lrs=(0.0,)), "lrs=0.0 is out of range; allowed 1e-06 to 10"),
    ],
)
def test_study_rejects_bad_values_with_a_message(changes, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        Study(**changes)


def test_a_batched_study_runs_every_correlation_and_rate_in_one_config_and_reads_back():
    study = Study(correlations=(0.9, 0.5), lrs=(1e-2, 1e-3), base=RunConfig(**TINY, independent_data=True))
    configs = study.configs()
    assert [(c.sweep, c.sweep_lr, c.replicas) for c in configs] == [((0.9, 0.5), (1e-2, 1e-3), 8)]
    back = Study.from_configs(configs)
    assert back.correlations == (0.9, 0.5) and back.lrs == (1e-3, 1e-2) and back.batched
    assert back.base.sweep == () and [(c.sweep, set(c.sweep_lr)) for c in back.configs()] == [
        ((0.9, 0.5), {1e-2, 1e-3})
    ]


def test_study_runs_one_config_per_correlation_and_lr_and_reads_back():
    base = RunConfig(**TINY, independent_data=True)
    study = Study(correlations=(0.9, 0.5), lrs=(1e-2, 1e-3), base=base, batched=False)
    configs = study.configs()
    assert [(c.correlation, c.lr) for c in configs] == [(0.9, 1e-2), (0.9, 1e-3), (0.5, 1e-2), (0.5, 1e-3)]
    assert all(c.seeds == 2 and c.independent_data for c in configs)
    back = Study.from_configs(configs)
    assert back.correlations == (0.9, 0.5) and back.lrs == (1e-3, 1e-2) and back.base.rows == 300


def test_presets_are_the_papers_setting():
    default, paper = PRESETS["default"], PRESETS["paper"]
    for study in (default, paper):
        b = study.base
        assert (b.input_dim, b.n_experts, b.expert_units, b.tower_units) == (100, 8, 16, 8)
        assert matched_bottom_units(b) == 113 and b.bottom_units == 0
        assert study.correlations == (0.5, 0.9, 1.0) and b.independent_data
        assert b.models == ("shared_bottom", "omoe", "mmoe")
    assert default.base.seeds == 32 and paper.base.seeds == 200
    assert paper.base.with_(seeds=32) == default.base  # only the seed count differs


# ---------------------------------------------------------------- aggregation on a hand-made store
def _fill(
    store: RunStore,
    study_id: str,
    p: float,
    losses: dict[str, np.ndarray],
    status: str = "done",
    steps: tuple[int, ...] = (0, 10),
    seed: int = 3,
) -> str:
    """One stored run with val loss at `steps` (value scaled by step) and test loss = losses[model] (r, k)."""
    config = RunConfig(
        **{**TINY, "seeds": next(iter(losses.values())).shape[0]},
        correlation=p,
        seed=seed,
        data_seed=7,
        independent_data=True,
        models=tuple(losses),
    )
    run_id = store.create_run(config, label=study_label(study_id), status="running")
    rows = []
    for model, loss in losses.items():
        for r in range(loss.shape[0]):
            for k in range(loss.shape[1]):
                rows += [(model, s, r, k, "val", "loss", float(loss[r, k]) * (1 + 10 / (s + 1))) for s in steps]
                if status == "done":
                    rows.append((model, steps[-1], r, k, "test", "loss", float(loss[r, k])))
    store.add_points(run_id, rows, [], step=steps[-1])
    if status == "done":
        store.finish_run(run_id, "done")
    return run_id


@pytest.fixture
def filled(tmp_path):
    rng = np.random.default_rng(0)
    store = RunStore(tmp_path)
    a = {m: rng.uniform(0.1, 1.0, size=(5, 2)) for m in ("shared_bottom", "omoe", "mmoe")}
    a["omoe"][2, 1] = math.nan  # one OMoE seed diverged
    b = {m: rng.uniform(0.1, 1.0, size=(5, 2)) for m in ("shared_bottom", "omoe", "mmoe")}
    _fill(store, "a" * 12, 0.5, a)
    _fill(store, "a" * 12, 1.0, b, status="running")
    _fill(store, "b" * 12, 0.9, b)  # another study: must not leak in
    return store, a, b


def test_final_losses_and_summary_match_numpy(filled):
    store, a, _ = filled
    runs = study_runs(store, "a" * 12)
    assert runs["correlation"].tolist() == [0.5, 1.0]
    final = final_losses(store, runs)
    assert set(final["correlation"]) == {0.5}  # the running run has no final losses yet
    mm = final[final["model"] == "mmoe"].sort_values("replica")
    assert mm["seed"].tolist() == [3, 4, 5, 6, 7] and mm["data_seed"].tolist() == [7, 8, 9, 10, 11]
    np.testing.assert_allclose(mm["test_loss_mean"], a["mmoe"].mean(axis=1), rtol=1e-6)
    table = summary_table(final).set_index("model")
    assert table.index.tolist() == ["shared_bottom", "omoe", "mmoe"]  # the paper's order
    om = a["omoe"].mean(axis=1)
    finite = om[np.isfinite(om)]
    assert table.loc["omoe", "seeds"] == 4 and table.loc["omoe", "diverged"] == 1
    assert table.loc["omoe", "mean"] == pytest.approx(finite.mean())
    assert table.loc["omoe", "sd"] == pytest.approx(finite.std(ddof=1))
    assert table.loc["shared_bottom", "max"] == pytest.approx(a["shared_bottom"].mean(axis=1).max())


def test_gaps_are_paired_by_seed_and_count_failed_seeds(filled):
    store, a, _ = filled
    gaps = gap_table(final_losses(store, study_runs(store, "a" * 12))).set_index("gap")
    d = a["mmoe"].mean(axis=1) - a["omoe"].mean(axis=1)
    failed = ~np.isfinite(d)
    assert failed.sum() == 1
    d = np.where(failed, -np.inf, d)  # the diverged OMoE seed is a loss for OMoE, never dropped
    row = gaps.loc["MMoE − OMoE"]
    assert row["pairs"] == 5 and row["failed_b"] == 1 and row["failed_a"] == 0
    assert row["median"] == pytest.approx(np.median(d))
    assert row["wins"] == int((d < 0).sum()) and row["win_rate"] == pytest.approx((d < 0).mean())
    assert row["verdict"] == "too close to call"  # 5 seeds: no 95% interval excludes zero
    assert gaps.loc["MMoE − OMoE", "wins"] == int((d < 0).sum())
    d2 = a["mmoe"].mean(axis=1) - a["shared_bottom"].mean(axis=1)
    assert gaps.loc["MMoE − Shared-Bottom", "median"] == pytest.approx(np.median(d2))


def test_curves_use_partial_runs_and_skip_diverged_seeds(filled):
    from mmoe_core.studies.study import run_results

    store, _, b = filled
    runs = study_runs(store, "a" * 12)
    per_seed = pd.concat([run_results(store, r)[0] for r in runs.to_dict("records")])
    c = curves(per_seed).set_index(["correlation", "model", "step"])
    assert set(c.index.get_level_values(0)) == {0.5, 1.0}  # the running run draws too
    expect = b["mmoe"].mean(axis=1) * (1 + 10 / 11)
    assert c.loc[(1.0, "mmoe", 10), "mean"] == pytest.approx(expect.mean())
    assert c.loc[(1.0, "mmoe", 10), "sd"] == pytest.approx(expect.std(ddof=1))
    assert c.loc[(0.5, "omoe", 10), "n"] == 4


def test_progress_counts_finished_runs_whole():
    runs = pd.DataFrame(
        {
            "status": ["done", "running", "queued"],
            "step": [40, 10, 0],
            "total_steps": [100, 100, 100],
            "started": [0.0, 50.0, None],
        }
    )
    prog = study_progress(runs, now=100.0)
    assert (prog.step, prog.total_steps, prog.runs_finished, prog.status) == (110, 300, 1, "running")
    assert prog.fraction == pytest.approx(110 / 300) and not prog.finished
    assert prog.eta_s == pytest.approx(100.0 / 110 * 190)
    runs["status"] = ["done", "cancelled", "cancelled"]
    prog = study_progress(runs, now=100.0)
    assert prog.finished and prog.status == "cancelled" and prog.eta_s is None


def test_list_and_load_studies(filled):
    store, _, _ = filled
    studies = list_studies(store).set_index("study_id")
    assert set(studies.index) == {"a" * 12, "b" * 12}
    assert studies.loc["a" * 12, "status"] == "running" and studies.loc["b" * 12, "status"] == "done"
    assert load_study(store, "a" * 12).correlations == (0.5, 1.0)
    with pytest.raises(ValueError, match="study cccccccccccc has no runs"):
        load_study(store, "c" * 12)


class FakeQueue:
    """The two JobQueue methods a study uses, over a real RunStore, with no worker processes."""

    def __init__(self, store: RunStore, max_queued: int):
        self.store, self.max_queued, self.cancelled = store, max_queued, []

    def submit(self, config, owner="", label="", key_hash="", **who):
        return self.store.create_run(config, owner=owner, label=label, key_hash=key_hash, **who)

    def cancel(self, run_id):
        self.cancelled.append(run_id)
        self.store.finish_run(run_id, "cancelled", only_if=("queued",))


def test_submit_is_all_or_nothing_and_stop_cancels_unfinished(tmp_path):
    store = RunStore(tmp_path)
    study = Study(correlations=(0.5, 0.9, 1.0), lrs=(1e-3, 1e-2), base=RunConfig(**TINY), batched=False)
    with pytest.raises(ValueError, match="needs 6 runs but the queue has room for 5"):
        submit_study(FakeQueue(store, max_queued=5), study)
    assert store.runs().empty
    queue = FakeQueue(store, max_queued=20)
    sid = submit_study(queue, study, owner="me")
    runs = study_runs(store, sid)
    assert len(runs) == 6 and set(runs["owner"]) == {"me"}
    store.finish_run(runs["id"][0], "done")
    assert stop_study(queue, store, sid) == 5 and runs["id"][0] not in queue.cancelled


# ---------------------------------------------------------------- claims
@pytest.mark.timeout(900)
def test_mmoe_leads_both_baselines_at_the_teaching_default():
    """The ordering the Playground's defaults are chosen to show, by the rule pre-registered in
    docs/REPRODUCTION.md (rung A of its ladder): at RunConfig's defaults (p = 0.5, 100,000 rows, 1,500 steps),
    16 seeds each with its own data, MMoE's median paired gap is below zero against Shared-Bottom and against
    OMoE. It held on both 16-seed blocks measured at this setting (the regime map's, master seed 7,000,000, and
    the held-out one, 7,200,000); the block pinned here is the held-out one, not a chosen best."""
    from mmoe_core.data import load_data
    from mmoe_core.studies.stats import paired_gap
    from mmoe_core.studies.teaching import HELD_OUT_SEED
    from mmoe_core.training import Trainer

    plain = RunConfig()
    config = plain.with_(
        seeds=16, independent_data=True, seed=HELD_OUT_SEED, data_seed=HELD_OUT_SEED, log_every=plain.steps
    )
    results = Trainer(config, load_data(config)).run()
    loss = {name: r.test_loss.mean(axis=1) for name, r in results.items()}  # (seeds,) over both tasks
    for other in ("shared_bottom", "omoe"):
        gap = paired_gap(loss["mmoe"], loss[other])
        assert gap.median < 0, f"MMoE − {other}: {gap.text()}"


# ---------------------------------------------------------------- CLI
def test_sweep_cli_runs_a_study_the_page_can_open(tmp_path, capsys):
    out = tmp_path / "s.json"
    code = cli_main(
        [
            "sweep",
            "--correlations",
            "0.5,1.0",
            "--lrs",
            "1e-3,1e-2",
            "--models",
            "omoe,mmoe",
            "--seeds",
            "2",
            "--steps",
            "20",
            "--rows",
            "300",
            "--eval-rows",
            "60",
            "--batch-size",
            "32",
            "--home",
            str(tmp_path),
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert data["config"]["correlations"] == [0.5, 1.0] and data["config"]["lrs"] == [1e-3, 1e-2]
    keys = {(r["correlation"], r["lr"], r["model"], r["seed"]) for r in data["results"]}
    assert keys == {(p, lr, m, s) for p in (0.5, 1.0) for lr in (1e-3, 1e-2) for m in ("omoe", "mmoe") for s in (0, 1)}
    assert all(
        len(r["test_loss"]) == 2 and r["test_loss_mean"] == pytest.approx(np.mean(r["test_loss"]))
        for r in data["results"]
    )
    assert data["results"][0]["data_seed"] != data["results"][1]["data_seed"]  # independent data by default
    # a script picks the rate on validation data: every row has its lr, val loss and status beside the test loss
    assert all(r["status"] in ("done", "diverged") and "val_loss_mean" in r for r in data["results"])
    assert all(r["val_loss_mean"] > 0 for r in data["results"] if r["status"] == "done")
    store = RunStore(tmp_path)
    assert list_studies(store)["study_id"].tolist() == [data["study_id"]]
    assert len(sweep_results(final_losses(store, study_runs(store, data["study_id"])))) == 16
    assert "MMoE − OMoE" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lrs", "0.1,x"], "error: --lrs '0.1,x' must be comma-separated numbers"),
        (["--lrs", "20"], "error: --lrs 20.0 is out of range; allowed 1e-06 to 10"),
        (["--correlations", "0.5,2"], "error: --correlations 2.0 is out of range; allowed -1 to 1"),
        (["--correlations", ","], "error: --correlations is empty"),
    ],
)
def test_sweep_cli_bad_lists_exit_with_one_line(tmp_path, capsys, args, message):
    assert cli_main(["sweep", *args, "--home", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)


def test_sweep_cli_unknown_preset_names_the_presets(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["sweep", "--preset", "papr", "--home", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'papr'" in err and all(repr(name) in err for name in PRESETS)


# ---------------------------------------------------------------- label correlation (paper Fig. 2)
def test_label_correlation_equals_p_for_linear_tasks_and_falls_with_sine_terms():
    base = RunConfig(sine_terms=10, noise_std=0.1)
    df = label_correlations(base, [0.0, 0.5, 0.9], draws=8, rows=2_000)
    mean = df.groupby(["sine_terms", "p"])["label_correlation"].mean()
    for p in (0.0, 0.5, 0.9):
        assert mean[(0, p)] == pytest.approx(p, abs=0.05)
    assert mean[(10, 0.5)] < mean[(0, 0.5)] - 0.05  # the sine terms decorrelate the labels (Fig. 2)
    assert df.groupby(["sine_terms", "p"]).size().eq(8).all()


# ---------------------------------------------------------------- figures
def test_best_lr_is_chosen_per_model_on_the_last_validation_point():
    from mmoe_core.studies.study import BEST_LR, at_best_lr, best_lrs

    rows = []
    for lr, (mm, om) in {1e-3: (0.1, 0.5), 1e-2: (0.3, 0.2)}.items():
        for step, scale in ((0, 9.0), (10, 1.0)):  # step 0 would pick the other way round
            for r in range(3):
                rows += [
                    {
                        "correlation": 0.5,
                        "lr": lr,
                        "model": "mmoe",
                        "step": step,
                        "replica": r,
                        "loss": mm * (scale if lr == 1e-3 else 1.0),
                    },
                    {"correlation": 0.5, "lr": lr, "model": "omoe", "step": step, "replica": r, "loss": om},
                ]
    per_seed = pd.DataFrame(rows)
    best = best_lrs(per_seed).set_index("model")["lr"]
    assert best.to_dict() == {"mmoe": 1e-3, "omoe": 1e-2}
    picked = at_best_lr(per_seed, best_lrs(per_seed))
    assert set(picked["lr"]) == {BEST_LR} and len(picked) == len(per_seed) // 2
    assert picked[picked["model"] == "omoe"]["loss"].eq(0.2).all()


def test_best_lr_counts_diverged_seeds_instead_of_skipping_them():
    """A rate where 3 of 4 seeds diverged must not beat a rate where none did (pandas' mean skipped the NaNs
    and chose the diverged rate for its one lucky seed)."""
    from mmoe_core.studies.study import best_lrs

    losses = {1e-2: [0.1, math.nan, math.nan, math.nan], 1e-3: [0.2, 0.21, 0.19, 0.2]}
    per_seed = pd.DataFrame(
        [
            {"correlation": 0.5, "lr": lr, "model": "mmoe", "step": 100, "replica": r, "loss": v}
            for lr, vals in losses.items()
            for r, v in enumerate(vals)
        ]
    )
    best = best_lrs(per_seed).iloc[0]
    assert best["lr"] == 1e-3 and best["failed"] == 0 and best["val_median"] == pytest.approx(0.2)
    # one failure of four at a rate that is clearly better on the other three still wins: the median sees it
    losses = {1e-2: [0.1, 0.1, 0.1, math.nan], 1e-3: [0.2, 0.21, 0.19, 0.2]}
    per_seed["loss"] = [v for vals in losses.values() for v in vals]
    best = best_lrs(per_seed).iloc[0]
    assert best["lr"] == 1e-2 and best["failed"] == 1 and best["seeds"] == 4


def test_final_rows_keep_diverged_seeds_with_status_and_validation_loss(filled):
    store, a, _ = filled
    final = final_losses(store, study_runs(store, "a" * 12))
    om = final[final["model"] == "omoe"].set_index("replica")
    assert om.loc[2, "status"] == "diverged" and math.isnan(om.loc[2, "test_loss_mean"])
    assert (om.drop(index=2)["status"] == "done").all()
    mm = final[final["model"] == "mmoe"].sort_values("replica")
    np.testing.assert_allclose(mm["val_loss_mean"], a["mmoe"].mean(axis=1) * (1 + 10 / 11), rtol=1e-6)
    rows = sweep_results(final)
    diverged = [r for r in rows if r["model"] == "omoe" and r["seed"] == 5]
    assert diverged == [
        {**diverged[0], "status": "diverged", "test_loss_mean": None, "val_loss_mean": None, "lr": 1e-3}
    ]
    assert all({"lr", "val_loss_mean", "test_loss_mean", "status"} <= set(r) for r in rows)
