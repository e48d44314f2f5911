"""Protects the page wiring (streamlit AppTest, no browser): every page renders, the Playground's widgets build
the RunConfig they show, a URL restores them, bad input gets a message instead of a run, a tiny run started
from the page ends with its results table, and the Runs page opens, re-runs and deletes stored runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import rerun_until
from streamlit.testing.v1 import AppTest

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py")
TIMEOUT = 60  # seconds per script run: the first imports torch and starts the job queue
TINY = {"rows": 500, "eval_rows": 100, "steps": 60, "log_every": 20, "batch_size": 64}


def app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def url_config(at: AppTest) -> RunConfig:
    config, warnings = RunConfig.from_query(dict(at.query_params))
    assert warnings == []
    return config


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(mmoe_home, page):
    at = app().run()
    assert not at.exception
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title, f"{page} shows no title"


def test_controls_build_the_config_and_the_url(mmoe_home):
    at = app().run()
    assert at.title[0].value == "MMoE Playground"
    assert not at.button(key="start").disabled and at.button(key="stop").disabled
    # at the defaults the page says how often the effect shows, measured on held-out seeds; not elsewhere
    assert sum("MMoE beats Shared-Bottom on 11 of 16 fresh seeds" in c.value for c in at.caption) == 1
    at.slider(key="correlation").set_value(0.9)
    at.number_input(key="rows").set_value(5_000)
    at.number_input(key="n_experts").set_value(4)
    at.number_input(key="steps").set_value(300)
    at.number_input(key="lr").set_value(0.003)
    at.number_input(key="seeds").set_value(3)
    at.pills(key="models").set_value(["omoe", "mmoe"])
    at.run()
    assert not at.exception and not errors(at)
    expected = RunConfig(
        correlation=0.9, rows=5_000, n_experts=4, steps=300, lr=0.003, seeds=3, models=("omoe", "mmoe")
    )
    assert url_config(at) == expected
    assert at.query_params["correlation"] == "0.9"  # only non-default values make the link
    assert "batch_size" not in at.query_params
    assert any("p = 0.9 · 5,000 rows · OMoE, MMoE · 300 steps, 3 seeds" in m.value for m in at.markdown)
    assert not any("fresh seeds" in c.value for c in at.caption)


def test_shared_bottom_width_follows_the_match_switch(mmoe_home):
    at = app().run()
    assert at.toggle(key="match_bottom").value is True
    assert any("113 units" in c.value for c in at.caption)  # the paper's matched width
    at.toggle(key="match_bottom").set_value(False).run()
    at.number_input(key="bottom_units").set_value(64).run()
    assert url_config(at).bottom_units == 64


def test_cgc_ple_controls_appear_with_those_models(mmoe_home):
    at = app().run()
    assert "shared_experts" not in [w.key for w in at.number_input]  # hidden until CGC or PLE is chosen
    at.pills(key="models").set_value(["mmoe", "ple"]).run()
    at.number_input(key="shared_experts").set_value(3)
    at.number_input(key="levels").set_value(3)
    at.run()
    assert not errors(at)
    config = url_config(at)
    assert (config.models, config.shared_experts, config.levels) == (("mmoe", "ple"), 3, 3)


def test_a_url_restores_every_control(mmoe_home):
    at = app()
    at.query_params.update(
        {
            "correlation": "-0.25",
            "models": "single_task,mmoe",
            "steps": "700",
            "expert_units": "32",
            "bottom_units": "50",
            "seed": "7",
            "lr": "0.0005",
            "device": "cpu",
            "rows": "not-a-number",
        }
    )
    at.run()
    assert not at.exception
    assert at.slider(key="correlation").value == -0.25
    assert at.pills(key="models").value == ["single_task", "mmoe"]
    assert at.number_input(key="steps").value == 700 and at.number_input(key="expert_units").value == 32
    assert at.toggle(key="match_bottom").value is False and at.number_input(key="bottom_units").value == 50
    assert at.number_input(key="seed").value == 7 and at.number_input(key="lr").value == 0.0005
    assert at.selectbox(key="device").value == "cpu"
    assert at.number_input(key="rows").value == RunConfig().rows  # the bad value fell back to its default...
    assert any("rows='not-a-number' ignored" in w.value for w in at.warning)  # ...and said so
    assert url_config(at) == RunConfig(
        correlation=-0.25,
        models=("single_task", "mmoe"),
        steps=700,
        expert_units=32,
        bottom_units=50,
        seed=7,
        lr=0.0005,
        device="cpu",
    )


def test_bad_controls_explain_themselves_and_disable_start(mmoe_home):
    at = app().run()
    at.pills(key="models").set_value([]).run()
    assert errors(at) == ["Choose at least one model to train."]
    assert at.button(key="start").disabled
    at.pills(key="models").set_value(["mmoe"])
    at.number_input(key="steps").set_value(1_000_000)
    at.number_input(key="batch_size").set_value(65_536)
    at.run()
    (message,) = errors(at)
    assert "too much work for this server" in message and "MMOE_MAX_WORK" in message
    steps = RunConfig().steps
    factor = f"the biggest factor is steps=1000000 ({round(1_000_000 / steps)}x its default {steps}): lower it, or batch_size"
    assert factor in message
    assert at.button(key="start").disabled


def test_a_full_queue_says_so_instead_of_starting(mmoe_home):
    from ui import server

    at = app().run()
    server.get_queue().max_queued = 0  # the server's queue, as if 20 runs were waiting
    at.button(key="start").click().run()
    assert not at.exception
    (message,) = errors(at)
    assert message.startswith("the queue is full (0 runs waiting); wait for a run to finish or stop one of yours")
    assert "run_id" not in at.session_state and RunStore(mmoe_home).runs().empty


def wait_until(at: AppTest, done, timeout: float = 120.0) -> None:
    rerun_until(at, done, timeout, every=0.5)


def test_a_tiny_run_from_the_page_ends_with_its_results(mmoe_home):
    at = app().run()
    for key, value in TINY.items():
        at.number_input(key=key).set_value(value)
    at.run()
    at.button(key="start").click().run()
    assert not at.exception
    run_id = at.session_state["run_id"]
    assert at.query_params["run"] == run_id
    assert at.button(key="start").disabled  # one run at a time per session
    wait_until(at, lambda a: any("Results on the test set" in m.value for m in a.markdown))
    table = at.dataframe[-1].value
    assert len(table) == 3 and table["Model"].str.contains("★").sum() == 0  # one seed: no winner named
    assert {"Task 1 test loss", "Task 2 test loss", "Parameters", "Seconds"} <= set(table.columns)
    verdict = [m.value for m in at.markdown if m.value.startswith(":material/balance:")]  # who is ahead, no trophy
    assert len(verdict) == 1 and "run 6 or more seeds to name a winner" in verdict[0].replace("\\", "")
    assert any("Finished 60 steps" in s.value for s in at.success)
    assert not at.button(key="start").disabled and at.button(key="stop").disabled
    row = RunStore(mmoe_home).run(run_id)
    assert row["status"] == "done" and row["owner"].startswith("web:")
    assert RunConfig.from_json(row["config"]) == RunConfig(**TINY)


OWNER_KEY = "owner-secret-of-the-test-run"


def stored_run(home: Path) -> str:
    """A finished tiny run written straight to the store (in-process, no worker), owned by OWNER_KEY."""
    from mmoe_core.access import hash_secret
    from mmoe_core.runtime.execute import execute_run

    store = RunStore(home)
    run_id = store.create_run(RunConfig(**TINY, models=("mmoe",)), status="running", key_hash=hash_secret(OWNER_KEY))
    execute_run(store, run_id)
    return run_id


def test_runs_page_opens_reruns_and_deletes(mmoe_home):
    run_id = stored_run(mmoe_home)
    at = app().run()
    at.switch_page("pages/runs.py").run()
    assert at.dataframe[0].value["Run"].tolist() == [run_id]
    at.selectbox(key="runs_open").set_value(run_id).run()
    assert not at.exception
    assert at.subheader[0].value == f"Run {run_id}"
    assert at.button(key="runs_delete").disabled  # a browser that did not start it: read-only
    at.query_params["key"] = OWNER_KEY  # its owner link
    at.run()
    assert at.dataframe[-1].value["Model"].tolist() == ["MMoE"]  # one model, one seed: nothing to crown
    at.button(key="runs_delete").click().run()
    at.button(key="runs_confirm_delete").click().run()
    assert RunStore(mmoe_home).run(run_id) is None
    assert any("No runs yet" in i.value for i in at.info)


def test_a_run_of_several_seeds_shows_spread_and_failed_seeds_and_a_verdict(mmoe_home):
    from mmoe_core.runtime.execute import execute_run

    store = RunStore(mmoe_home)
    run_id = store.create_run(RunConfig(**TINY, models=("shared_bottom", "mmoe"), seeds=3), status="running")
    execute_run(store, run_id)
    at = app()
    at.switch_page("pages/runs.py").run()
    at.selectbox(key="runs_open").set_value(run_id).run()
    assert not at.exception
    table = at.dataframe[-1].value.set_index("Model")
    assert table.index.tolist() == ["Shared-Bottom", "MMoE"]  # 3 seeds: too few to name a winner
    assert table["Task 1 test loss"].str.fullmatch(r"\d+\.\d{4} ± \d+\.\d{4}").all()
    assert table["Failed seeds"].tolist() == [0, 0]
    verdict = [m.value for m in at.markdown if m.value.startswith(":material/balance:")]
    assert len(verdict) == 1 and "No clear winner over 3 seeds" in verdict[0].replace("\\", "")


def test_run_again_queues_the_same_config_and_opens_the_playground(mmoe_home):
    run_id = stored_run(mmoe_home)
    at = app()
    at.query_params["run"] = run_id  # a shared link to one run
    at.switch_page("pages/runs.py").run()
    assert at.selectbox(key="runs_open").value == run_id
    at.button(key="runs_rerun").click().run()
    assert not at.exception
    new_id = at.session_state["run_id"]
    assert new_id != run_id and RunStore(mmoe_home).config(new_id) == RunStore(mmoe_home).config(run_id)
    assert at.title[0].value == "MMoE Playground"  # switched to watch it
    assert at.pills(key="models").value == ["mmoe"] and at.number_input(key="steps").value == 60


def test_queued_runs_of_ended_sessions_are_found(mmoe_home):
    from ui.server import OWNER_PREFIX, orphaned_owners

    store = RunStore(mmoe_home)
    store.create_run(RunConfig(), owner=OWNER_PREFIX + "gone")
    store.create_run(RunConfig(), owner=OWNER_PREFIX + "here")
    store.create_run(RunConfig(), owner="")  # the CLI: nobody's session
    store.create_run(RunConfig(), owner=OWNER_PREFIX + "finished", status="done")  # not waiting
    assert orphaned_owners(store, {"here"}) == {OWNER_PREFIX + "gone"}
    assert orphaned_owners(store, {"here", "gone"}) == set()
