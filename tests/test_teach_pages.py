"""Protects the teaching pages' wiring (AppTest, no browser): Compare opens a `?compare=` link and names what
differs, each Lesson step loads its settings into the Playground, Present shows one run, and the Playground
polish of issue 17 (reset to defaults, synthetic data after a data source, the link's run= only while the
controls describe that run, captions that name the real seed and row count)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import recorded_run
from streamlit.testing.v1 import AppTest

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
TINY = {"rows": 400, "eval_rows": 100, "steps": 40, "log_every": 20, "batch_size": 64}


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def stored_run(home: Path, **over) -> str:
    from mmoe_core.runtime.execute import execute_run

    store = RunStore(home)
    run_id = store.create_run(RunConfig(**{**TINY, "models": ("mmoe",), **over}), status="running")
    execute_run(store, run_id)
    return run_id


def test_compare_link_overlays_the_runs_and_names_what_differs(mmoe_home):
    a, b = recorded_run(mmoe_home, 0.3, correlation=0.2), recorded_run(mmoe_home, 0.5, correlation=0.9)
    at = app()
    at.query_params["compare"] = f"{a},{b},nothere,{a}"
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.multiselect(key="cmp_runs").value == [a, b]
    assert [w.value for w in at.warning] == [
        "URL parameter compare: 'nothere' is not a run id (12 lowercase hex characters); left out."
    ]
    assert any(m.value == "**Settings that differ:** `correlation`" for m in at.markdown)
    results = at.dataframe[-1].value
    assert results["Run"].tolist() == ["p = 0.2", "p = 0.9"] and results["Model"].tolist() == ["MMoE", "MMoE"]
    assert results["Mean test loss"].tolist() == pytest.approx([0.31, 0.51])  # MMoE only, as the pills show
    at.multiselect(key="cmp_runs").set_value([b]).run()
    assert at.query_params["compare"] in (b, [b])
    assert any("Pick at least two runs" in c.value for c in at.caption)


def test_compare_leaves_out_a_sweep_and_says_where_its_chart_is(mmoe_home):
    a, b = recorded_run(mmoe_home, 0.3, correlation=0.2), recorded_run(mmoe_home, 0.5, correlation=0.9)
    s = recorded_run(mmoe_home, 0.4, sweep=(0.0, 1.0))  # its replicas are two p: no curve averaged over them
    at = app()
    at.query_params["compare"] = f"{a},{s},{b}"
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(w.value.startswith(f"Left out: {s} (a p-sweep") for w in at.warning)
    assert at.dataframe[-1].value["Run"].tolist() == ["p = 0.2", "p = 0.9"]


def test_lesson_steps_have_distinct_settings_and_say_what_to_look_for():
    from mmoe_core.lesson import STEPS

    assert [s.title for s in STEPS][:2] == ["Identical tasks (p = 1)", "Unrelated tasks (p = 0)"]
    assert [c.correlation for _, c in STEPS[0].configs + STEPS[1].configs] == [1.0, 0.0]
    (sweep,) = [c for _, c in STEPS[2].configs]  # the sweep: one press, every p
    assert sweep.sweep == (0.0, 0.25, 0.5, 0.75, 0.9, 1.0) and sweep.seeds == 4 and sweep.independent_data
    assert STEPS[4].configs[0][1].seeds == 8  # trainability: a band over seeds
    for step in STEPS:
        sentences = [t for t in step.text.split(". ") if t]
        assert 2 <= len(sentences) <= 4, step.title


@pytest.mark.parametrize("step", range(5))
def test_each_lesson_step_loads_its_settings_into_the_playground(mmoe_home, step):
    from mmoe_core.lesson import STEPS

    for j, (label, config) in enumerate(STEPS[step].configs):
        at = app()
        at.session_state["lesson_step"] = step
        at.switch_page("pages/lesson.py").run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.header[0].value.startswith(f"{step + 1}. ")
        button = at.button(key=f"lesson_load_{step}_{j}")
        assert button.label == label
        button.click().run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.title[0].value == "MMoE Playground"
        shown, warnings = RunConfig.from_query(dict(at.query_params))
        assert warnings == [] and shown == config, (step, j)
        assert at.slider(key="correlation").value == config.correlation
        assert at.toggle(key="sweep_on").value == bool(config.sweep)


def test_present_shows_one_run_large_and_rejects_a_bad_link(mmoe_home):
    run_id = recorded_run(mmoe_home, 0.2, correlation=0.4)
    at = app()
    at.query_params["run"] = run_id
    at.switch_page("pages/present.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(m.value == f"## p = 0.4 · run {run_id}" for m in at.markdown)
    # one seed: the verdict says so, and no trophy (views.winner_text, mmoe_core.compare)
    assert any(m.value.startswith(":material/balance: **Ahead on one seed") for m in at.markdown)
    bad = app()
    bad.query_params["run"] = "0" * 12
    bad.switch_page("pages/present.py").run()
    assert not bad.exception
    assert "run='000000000000' ignored" in bad.warning[0].value


def test_reset_to_defaults_and_synthetic_after_census(mmoe_home):
    at = app().run()
    at.number_input(key="steps").set_value(700)
    at.slider(key="correlation").set_value(0.1)
    at.run()
    at.button(key="reset_defaults").click().run()
    default = RunConfig()
    assert default.steps != 700 and default.correlation != 0.1  # so the reset below is seen
    assert at.number_input(key="steps").value == default.steps
    assert at.slider(key="correlation").value == default.correlation
    at.session_state["data_source"] = {"dataset": "census1", "label": "Census"}
    for key, value in {"steps": 900, "batch_size": 512, "lr": 0.01}.items():
        at.session_state[key] = value
    at.run()
    at.button[[b.label for b in at.button].index("Use synthetic data instead")].click().run()
    assert "data_source" not in at.session_state
    assert (at.number_input(key="steps").value, at.number_input(key="batch_size").value) == (
        default.steps,
        default.batch_size,
    )
    assert at.number_input(key="lr").value == default.lr


def test_the_link_names_the_run_only_while_the_controls_describe_it(mmoe_home):
    run_id = stored_run(mmoe_home, seed=0)
    at = app()
    at.query_params["run"] = run_id
    at.query_params.update({k: str(v) for k, v in TINY.items()})
    at.query_params["models"] = "mmoe"
    at.run()
    assert not at.exception
    assert at.query_params["run"] in (run_id, [run_id])
    assert any("seed 0. Each row sums to 1" in m.value for m in at.markdown)  # the replica the gates come from
    at.slider(key="correlation").set_value(0.8).run()
    assert "run" not in at.query_params and at.query_params["correlation"] in ("0.8", ["0.8"])
    at.slider(key="correlation").set_value(0.5).run()  # back to the run's settings: the link names it again
    assert at.query_params["run"] in (run_id, [run_id])
