"""Protects the Experiments page wiring (streamlit AppTest, no browser): it opens standalone with the paper's
default study, presets fill the controls, bad input gets a message instead of a study, a tiny study started
from the page runs to its summary table and claim checks, Stop ends every run of a study, and a ?study= link
reopens a stored study (or warns when it does not exist)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mmoe_core.config import RunConfig
from mmoe_core.runs import FINISHED, RunStore
from mmoe_core.studies.study import Study, study_label, study_runs

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "experiments.py")
TIMEOUT = 60  # seconds per script run: the first imports torch and starts the job queue
TINY = {
    "exp_seeds": 2,
    "exp_steps": 40,
    "exp_rows": 300,
    "exp_eval_rows": 60,
    "exp_batch_size": 32,
    "exp_log_every": 10,
    "exp_correlations": [0.5, 1.0],
}


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def wait_until(at: AppTest, done, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        if done():
            return
        time.sleep(0.5)
    raise AssertionError(f"not done after {timeout:.0f} s; errors: {errors(at)}")


def test_opens_with_the_papers_default_study(mmoe_home):
    at = page().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Experiments"
    assert at.multiselect(key="exp_correlations").value == [0.5, 0.9, 1.0]
    assert at.number_input(key="exp_seeds").value == 32 and at.number_input(key="exp_n_experts").value == 8
    assert at.checkbox(key="exp_fixed_data").value is False  # each seed its own data: the paper's protocol
    assert not at.button(key="exp_start").disabled
    assert any("No study yet" in i.value for i in at.info)


def test_the_paper_preset_sets_200_seeds(mmoe_home):
    at = page().run()
    at.selectbox(key="exp_preset").set_value("paper").run()
    assert at.number_input(key="exp_seeds").value == 200
    at.selectbox(key="exp_preset").set_value("quick").run()
    assert at.number_input(key="exp_seeds").value == 8


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("exp_correlations", [], "Choose at least one task correlation p."),
        ("exp_lrs", [], "Choose at least one learning rate."),
        ("exp_models", [], "Choose at least one model."),
    ],
)
def test_bad_input_gets_a_message_and_no_start(mmoe_home, key, value, message):
    at = page().run()
    at.session_state[key] = value
    at.run()
    assert errors(at) == [message]
    assert at.button(key="exp_start").disabled


def test_a_too_large_study_is_refused_with_the_limit(mmoe_home):
    at = page().run()
    at.session_state["exp_seeds"] = 200
    at.session_state["exp_steps"] = 1_000_000
    at.run()
    assert len(errors(at)) == 1 and "too much work for this server" in errors(at)[0]
    assert at.button(key="exp_start").disabled


@pytest.mark.timeout(300)
def test_a_tiny_study_runs_to_its_table(mmoe_home):
    at = page().run()
    for key, value in {**TINY, "exp_correlations": [0.5]}.items():
        at.session_state[key] = value
    at.run()
    at.button(key="exp_start").click().run()
    assert not at.exception and not errors(at)
    store = RunStore(mmoe_home)
    study_id = at.session_state["exp_open"]
    runs = study_runs(store, study_id)
    assert runs["correlation"].tolist() == [0.5] and set(runs["label"]) == {study_label(study_id)}
    assert at.query_params["study"] == study_id  # a shareable link to this study
    wait_until(at, lambda: any("Done" in s.value for s in at.success))
    frames = [d.value for d in at.dataframe]
    summary = next(f for f in frames if "diverged" in f)
    assert len(summary) == 3 and set(summary["seeds"]) == {2}  # one row per model, both seeds finite
    claims = [m.value for m in at.markdown if "-badge[" in m.value]
    assert len(claims) == 1 and claims[0].count("-badge[") == 3
    assert "not enough data" not in claims[0].splitlines()[0]  # p = 0.5 is done: the ordering claim has a verdict
    assert len(at.get("plotly_chart")) == 3  # Figs. 4, 5 and 2


@pytest.mark.timeout(300)
def test_stop_ends_every_run_of_the_study(mmoe_home):
    at = page().run()
    for key, value in {**TINY, "exp_steps": 100_000, "exp_log_every": 50, "exp_correlations": [0.5, 0.9, 1.0]}.items():
        at.session_state[key] = value
    at.run()
    at.button(key="exp_start").click().run()
    study_id = at.session_state["exp_open"]
    store = RunStore(mmoe_home)
    wait_until(at, lambda: (study_runs(store, study_id)["status"] == "running").any())
    at.button(key="exp_stop").click().run()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not study_runs(store, study_id)["status"].isin(FINISHED).all():
        time.sleep(0.2)
    statuses = study_runs(store, study_id)["status"].tolist()
    assert statuses == ["cancelled"]  # the three correlations train as one batched run
    wait_until(at, lambda: any("Cancelled" in w.value for w in at.warning), timeout=30)


def _stored_study(store: RunStore, study_id: str, lrs: tuple[float, ...]) -> None:
    """A finished study written straight into the store (no training): val and test loss per seed."""
    base = RunConfig(seeds=3, steps=10, rows=200, eval_rows=50)
    study = Study(correlations=(0.5,), lrs=lrs, base=base, batched=False)  # one run per rate, as studies were
    for config in study.configs():
        run_id = store.create_run(config, label=study_label(study_id), status="running")
        rows = []
        for i, model in enumerate(config.models):
            loss = (1.0, 2.0, 3.0)[i] if config.lr == lrs[0] else (2.0, 1.0, 1.0)[i]  # OMoE, MMoE like lr 2
            rows += [(model, s, r, k, "val", "loss", loss) for s in (0, 10) for r in range(3) for k in range(2)]
            rows += [(model, 10, r, k, "test", "loss", loss + 0.01 * r) for r in range(3) for k in range(2)]
        store.add_points(run_id, rows, [], step=10)
        store.finish_run(run_id, "done")


def test_two_learning_rates_offer_each_models_best(mmoe_home):
    _stored_study(RunStore(mmoe_home), "cd" * 6, lrs=(1e-3, 1e-2))
    at = page()
    at.query_params["study"] = "cd" * 6
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.radio(key="exp_lr_shown").value == 0.0  # each model's best, as the paper tuned per model
    assert any(
        "Chosen on validation: p = 0.5: Shared-Bottom 0.001, OMoE 0.01, MMoE 0.01" in c.value for c in at.caption
    )
    summary = next(d.value for d in at.dataframe if "diverged" in d.value)
    assert summary["lr"].tolist().count("each model's best") == 3 and len(summary) == 9


def test_a_link_reopens_a_stored_study_or_warns(mmoe_home):
    store = RunStore(mmoe_home)
    study = Study(correlations=(0.9,), base=RunConfig(seeds=2, steps=10, rows=200, eval_rows=50))
    run_id = store.create_run(study.configs()[0], label=study_label("ab" * 6))
    store.finish_run(run_id, "cancelled")
    at = page()
    at.query_params["study"] = "ab" * 6
    at.run()
    assert not at.exception and at.session_state["exp_open"] == "ab" * 6
    assert any("Study `abababababab`" in c.value for c in at.caption)
    at = page()
    at.query_params["study"] = "nope"
    at.run()
    assert any("URL parameter study='nope' ignored" in w.value for w in at.warning)


def test_a_study_link_shows_that_study_in_the_sidebar(mmoe_home):
    store = RunStore(mmoe_home)
    study = Study(correlations=(0.2, 0.9), lrs=(3e-3,), base=RunConfig(steps=40, seeds=3, models=("omoe", "mmoe")))
    for config in study.configs():
        store.create_run(config, label=study_label("ef" * 6))
    at = page()
    at.query_params["study"] = "ef" * 6
    at.run()
    assert not at.exception
    assert at.multiselect(key="exp_correlations").value == [0.2, 0.9]  # not the default preset's
    assert at.multiselect(key="exp_lrs").value == [3e-3] and at.number_input(key="exp_seeds").value == 3
    assert at.pills(key="exp_models").value == ["omoe", "mmoe"]
    assert at.selectbox(key="exp_open").value == "ef" * 6
