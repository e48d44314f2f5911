"""A p-sweep (RunConfig.sweep) trains every seed at every p in one batched computation. Each replica must be
exactly the single run it stands for, and each seed's data must be the same draw at every p (paired seeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import make_synthetic_tasks
from mmoe_core.data.sources import load_data
from mmoe_core.training import Trainer

SMALL = dict(
    rows=600, eval_rows=100, input_dim=12, steps=12, log_every=6, batch_size=32, models=("shared_bottom", "mmoe")
)


def test_a_sweeps_targets_are_the_single_draws_and_its_inputs_are_shared_across_p():
    ps, seeds = (0.0, 0.5, 1.0), [7, 8]
    sweep = make_synthetic_tasks(n_train=300, n_val=50, n_test=50, n_features=10, correlation=ps, random_state=seeds)
    assert sweep.replicas == 6 and sweep.x_train.shape[0] == 2  # inputs stored once per seed
    assert sweep.x_index.tolist() == [0, 1, 0, 1, 0, 1]
    for j, p in enumerate(ps):
        for s, seed in enumerate(seeds):
            one = make_synthetic_tasks(
                n_train=300, n_val=50, n_test=50, n_features=10, correlation=p, random_state=seed
            )
            r = j * len(seeds) + s
            assert torch.equal(sweep.y_train[r], one.y_train[0]) and torch.equal(sweep.y_test[r], one.y_test[0])
            assert torch.equal(sweep.inputs("val")[r], one.x_val[0])
            assert torch.equal(sweep.task_directions[r], one.task_directions[0])
    # paired: seed 7 has the same first task (w_1 = c·u_1 at every p) whatever p is
    assert torch.equal(sweep.y_train[0, :, 0], sweep.y_train[4, :, 0])


@pytest.mark.parametrize("independent", [True, False])
def test_each_replica_of_a_sweep_is_the_single_run_it_stands_for(independent):
    """Data, initialisation, batch order and PCGrad's draws of replica (p_j, s) all come from seed s: a sweep
    is the single runs at each p, paired by seed, computed at once."""
    config = RunConfig(
        **SMALL, seed=3, seeds=2, data_seed=11, independent_data=independent, sweep=(0.0, 0.9), weighting="pcgrad"
    )  # PCGrad: its random task order is per replica too
    batched = Trainer(config, load_data(config), device="cpu")
    batched.run()
    for r in range(config.replicas):
        j, s = divmod(r, config.seeds)
        single_config = RunConfig(
            **SMALL,
            seed=3 + s,  # replica (p_j, s) is initialised and shuffled from seed + s at every p: paired
            seeds=1,
            data_seed=11 + (s if independent else 0),
            correlation=config.replica_correlation(r),
            weighting="pcgrad",
        )
        assert single_config.correlation == (0.0, 0.9)[j]
        single = Trainer(single_config, load_data(single_config), device="cpu")
        single.run()
        for name in config.models:
            np.testing.assert_array_equal(batched.results[name].test_loss[r], single.results[name].test_loss[0])
        np.testing.assert_array_equal(
            batched.results["mmoe"].routing_specialisation[r], single.results["mmoe"].routing_specialisation[0]
        )


def test_a_sweep_is_checked_and_named_in_urls():
    config = RunConfig(sweep="0, 0.5,1")
    assert config.sweep == (0.0, 0.5, 1.0) and config.replicas == 3
    assert config.to_query()["sweep"] == "0,0.5,1"
    back, warnings = RunConfig.from_query({"sweep": "0,0.5,1"})
    assert back.sweep == (0.0, 0.5, 1.0) and not warnings
    with pytest.raises(ValueError, match="sweep='a' is not a number"):
        RunConfig(sweep="0,a")
    with pytest.raises(ValueError, match="sweep=1.5 is out of range"):
        RunConfig(sweep="0,1.5")
    with pytest.raises(ValueError, match="names a p value twice"):
        RunConfig(sweep="0,0")
    with pytest.raises(ValueError, match="needs the synthetic data"):
        RunConfig(sweep="0,1", dataset="census1")
    with pytest.raises(ValueError, match="allowed 2 to 11"):
        RunConfig(sweep="0.5")
    _, warnings = RunConfig.from_query({"sweep": "0,2"})
    assert warnings and "sweep" in warnings[0]


def test_the_limits_count_every_p_of_a_sweep():
    one, six = RunConfig(seeds=4, steps=100), RunConfig(seeds=4, steps=100, sweep=(0, 0.2, 0.4, 0.6, 0.8, 1))
    assert six.work() == pytest.approx(6 * one.work())


def test_the_playgrounds_sweep_switch_builds_a_sweep_and_draws_it_against_p(mmoe_home):
    from helpers import rerun_until
    from test_app import TINY, app

    from mmoe_core.runs import RunStore

    at = app().run()
    for key, value in TINY.items():
        at.number_input(key=key).set_value(value)
    at.toggle(key="sweep_on").set_value(True).run()
    assert at.slider(key="correlation").disabled  # one p no longer applies
    assert at.number_input(key="seeds").value == 4  # a band needs seeds: one became four, each its own draw
    at.pills(key="sweep_values").set_value([0.0, 1.0]).run()
    assert not at.exception and not [e.value for e in at.error]
    assert any("sweep p = 0, 1" in m.value for m in at.markdown)
    at.button(key="start").click().run()
    run_id = at.session_state["run_id"]
    config = RunConfig.from_json(RunStore(mmoe_home).run(run_id)["config"])
    assert config.sweep == (0.0, 1.0) and config.seeds == 4 and config.independent_data and config.replicas == 8
    assert at.query_params["sweep"] == "0,1"
    rerun_until(at, lambda a: any(s.value.startswith("Finished 60 steps") for s in a.success))
    assert any(m.value.startswith("**The sweep**") and "(final)" in m.value for m in at.markdown)
    assert not any("Results on the test set" in m.value for m in at.markdown)  # no table averaging over p
    table = at.dataframe[-1].value
    assert sorted(table["p"].unique()) == [0.0, 1.0] and len(table) == 6  # 3 models x 2 p
    at.pills(key="sweep_values").set_value([0.5]).run()
    assert "Choose at least two p values to sweep" in [e.value for e in at.error][0]


def test_a_sweeps_report_draws_each_measure_against_p_and_no_curves_averaged_over_p(tmp_path):
    from mmoe_core.report import run_figures, slide_title
    from mmoe_core.runs import RunStore
    from mmoe_core.runtime.execute import execute_run

    store = RunStore(tmp_path)
    config = RunConfig(**SMALL, seeds=2, sweep=(0.0, 1.0))
    run_id = store.create_run(config, status="running")
    execute_run(store, run_id)
    ((name, fig),) = run_figures(store, run_id, ["task 1", "task 2"])
    assert name == "sweep" and slide_title(config, run_id).startswith("p swept 0 to 1")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "<b>Validation loss (mean of the tasks)</b>",
        "<b>Gradient agreement</b>",
        "<b>Gate task difference</b>",
        "<b>Routing specialisation S</b>",
    ]
    lines = [t for t in fig.data if t.fill is None and t.xaxis == "x3"]  # gate task difference against p
    by_model = {t.name: list(t.y) for t in lines}
    assert set(by_model) == {"MMoE"} and all(v > 0 for v in by_model["MMoE"])  # Shared-Bottom has no gate


def test_a_batched_study_gives_every_seed_the_numbers_of_one_run_per_correlation_and_rate(tmp_path):
    """#18 item 2: a study trains its correlations and rates in one batched run per training size; each
    seed's final losses, validation losses and probe measures equal those of one run per (p, rate)."""
    from mmoe_core.runs import RunStore
    from mmoe_core.runtime.execute import execute_run
    from mmoe_core.studies.study import Study, final_losses, study_label, study_runs

    base = RunConfig(**SMALL, seeds=3, independent_data=True, seed=5, data_seed=9)
    store = RunStore(tmp_path)
    finals = {}
    for batched in (True, False):
        study = Study(correlations=(0.0, 0.5, 1.0), lrs=(1e-3, 1e-2), base=base, batched=batched)
        assert len(study.configs()) == (1 if batched else 6)
        study_id = ("b" if batched else "5") * 12
        for config in study.configs():
            run_id = store.create_run(config, status="running", label=study_label(study_id))
            execute_run(store, run_id)
        back = Study.from_configs([RunConfig.from_json(c) for c in study_runs(store, study_id)["config"]])
        assert (back.correlations, back.lrs, back.batched) == (study.correlations, study.lrs, batched)
        table = final_losses(store, study_runs(store, study_id))
        finals[batched] = table.drop(columns=["run_id"]).sort_values(["lr", "correlation", "model", "replica"])
    a, b = finals[True].reset_index(drop=True), finals[False].reset_index(drop=True)
    assert len(a) == 3 * 2 * 2 * 3  # p x rates x models x seeds
    assert a["lr"].value_counts().to_dict() == {1e-3: 18, 1e-2: 18}
    # float32 rounding apart (a batched matmul of 18 replicas may block differently from one of 3)
    pd.testing.assert_frame_equal(a.drop(columns=["grad_agreement"]), b.drop(columns=["grad_agreement"]), rtol=1e-5)
    np.testing.assert_allclose(
        np.array(a["grad_agreement"].tolist()), np.array(b["grad_agreement"].tolist()), atol=1e-5
    )


def test_one_run_over_rates_and_correlations_equals_its_single_runs():
    """#18 item 2: the learning rate is a replica axis too (RunConfig.sweep_lr, one Adam with a rate per replica
    block): replica (lr_i, p_j, s) is the single run at lr_i and p_j with seed s."""
    config = RunConfig(
        **SMALL, seed=3, seeds=2, data_seed=11, independent_data=True, sweep=(0.0, 0.9), sweep_lr=(1e-3, 2e-2)
    )
    assert config.replicas == 8 and config.data_replicas == 4
    assert [config.replica_lr(r) for r in range(8)] == [1e-3] * 4 + [2e-2] * 4
    batched = Trainer(config, load_data(config), device="cpu")
    batched.run()
    for r in range(config.replicas):
        s = r % config.seeds
        single_config = RunConfig(
            **SMALL,
            seed=3 + s,
            data_seed=11 + s,
            correlation=config.replica_correlation(r),
            lr=config.replica_lr(r),
        )
        single = Trainer(single_config, load_data(single_config), device="cpu")
        single.run()
        for name in config.models:  # float32 rounding apart: a batched matmul of 8 replicas may block differently
            np.testing.assert_allclose(batched.results[name].test_loss[r], single.results[name].test_loss[0], rtol=1e-5)
    fast, slow = batched.results["mmoe"].test_loss[4:].mean(), batched.results["mmoe"].test_loss[:4].mean()
    assert fast != slow  # the rates differ in effect, not only in name


def test_the_playground_says_it_ignores_a_learning_rate_sweep_in_its_link(mmoe_home):
    from test_app import app

    at = app()
    at.query_params["sweep_lr"] = "1e-3,1e-2"
    at.query_params["sweep"] = "0,1"
    at.run()
    assert not at.exception
    assert any(w.value.startswith("URL parameter sweep_lr ignored") for w in at.warning)
    assert at.toggle(key="sweep_on").value  # the p-sweep it can show is kept
