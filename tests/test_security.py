"""Protects the trust rules of issue 14 (AppTest and library level): a link or page never names a server file,
an upload id works only for the session that uploaded it, a failed run on private data keeps its message from
other viewers, only the owner (or the admin) stops or deletes a run or study — also after a reload, through
the owner link — the optional password gate, and a Runs page that opens any of 10,000 runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mmoe_core.access import AttemptLimiter, check_guess, hash_secret
from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.source_names import browser_refusal, dataset_kind

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
MARKER = "zq_secret_7731"  # appears in the private file's column names and values, nowhere else
SECRET = "the-owner-secret"


def app(page: str | None = None, query: dict | None = None) -> AppTest:
    """A new browser session opening `page` (default: the Playground) with the address's `query`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if page:  # the frame first, then the page with the link's parameters (as a browser opening /runs?run=…)
        at.run()
        at.query_params.clear()
    at.query_params.update(query or {})
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def page_text(at: AppTest) -> str:
    """Every string an AppTest page shows (markdown, captions, alerts, labels, tables)."""
    parts = []
    for kind in ("markdown", "caption", "warning", "error", "info", "success", "title", "subheader", "text"):
        parts += [str(e.value) for e in at.get(kind)]
    parts += [str(getattr(e, "label", "")) for e in at.get("button") + at.get("selectbox") + at.get("metric")]
    parts += [e.value.to_csv() for e in at.dataframe]
    return "\n".join(parts)


def private_csv(tmp_path: Path) -> Path:
    path = tmp_path / "private.csv"
    df = pd.DataFrame({f"{MARKER}_a": [f"{MARKER}{i % 3}" for i in range(200)], "b": range(200), "c": range(200)})
    df.to_csv(path, index=False)
    return path


def live_run(home: Path, key: str | None = SECRET, label: str = "", config: RunConfig | None = None) -> str:
    """A run that stays `running` with no worker: its pid is this test process, so recovery leaves it alone."""
    store = RunStore(home)
    run_id = store.create_run(
        config or RunConfig(rows=500, eval_rows=100, steps=100_000, models=("mmoe",)),
        status="running",
        label=label,
        key_hash=hash_secret(key) if key else "",
    )
    store.update_run(run_id, pid=os.getpid())
    return run_id


# ---------------------------------------------------------------------------------------------- data sources
def test_names_a_browser_may_use_and_the_path_it_may_not():
    assert [dataset_kind(n) for n in ("census1", "sample:customers.csv", "upload:" + "a" * 16, "/x/y.csv")] == [
        "builtin",
        "sample",
        "upload",
        "path",
    ]
    assert browser_refusal("sample:customers.csv") is None
    assert "cannot name a file on the server" in browser_refusal("/etc/private.csv")
    for bad in ("sample:../../etc/x.csv", "sample:a/b.csv", "upload:../../x", "upload:ABCDEF"):
        with pytest.raises(ValueError, match="is not a"):
            RunConfig(dataset=bad)


def test_a_server_path_in_the_url_is_refused_and_nothing_of_the_file_shows_on_any_page(mmoe_home, tmp_path):
    path = private_csv(tmp_path)
    query = {"dataset": str(path), "targets": f"{MARKER}_a,b", "rows": "500", "eval_rows": "100", "steps": "20"}
    config, warnings = RunConfig.from_query(query)
    assert config.dataset == "synthetic" and "cannot name a file on the server" in warnings[0]
    at = app(query=query)
    assert any("URL parameter dataset" in w.value and "cannot name a file" in w.value for w in at.warning)
    at.button(key="start").click().run()
    run_id = at.session_state["run_id"]
    assert RunStore(mmoe_home).config(run_id).dataset == "synthetic"  # the run never names the file
    for page in ("pages/playground.py", "pages/runs.py", "pages/data.py", "pages/experiments.py"):
        at.switch_page(page).run()
        assert MARKER not in page_text(at).replace(f"{MARKER}_a,b", ""), page  # only the link's own text


def upload_in_new_session() -> tuple[AppTest, str]:
    at = app("pages/data.py")
    at.radio(key="data_choice").set_value("csv").run()
    data = (ROOT / "sample_data" / "customers.csv").read_bytes()
    at.file_uploader(key="csv_upload").set_value(("mine.csv", data, "text/csv")).run()
    at.multiselect(key="csv_targets").set_value(["monthly_spend", "churned"]).run()
    at.button(key="use_csv").click().run()
    source = at.session_state["data_source"]["dataset"]
    assert dataset_kind(source) == "upload"
    return at, source


def test_another_session_cannot_use_an_upload_id(mmoe_home):
    owner, upload = upload_in_new_session()
    owner.switch_page("pages/playground.py").run()
    assert not owner.button(key="start").disabled  # the uploader may train on it
    query = {"dataset": upload, "targets": "monthly_spend,churned", "steps": "20"}
    other = app(query=query)  # a second browser with the first one's link
    assert any("another browser session's upload" in w.value for w in other.warning)
    config, error = _config_of(other)
    assert config.dataset == "synthetic"
    other.session_state["data_source"] = {"dataset": upload, "targets": ("monthly_spend", "churned"), "n_tasks": 2}
    other.run()  # even with the id in its state (e.g. opened from a stored run) it may not train on it
    assert other.button(key="start").disabled and any(
        "another browser session's upload" in e.value for e in other.error
    )


def _config_of(at: AppTest) -> tuple[RunConfig, list[str]]:
    return RunConfig.from_query(dict(at.query_params))


def test_a_failed_run_on_private_data_shows_its_message_to_its_owner_only(mmoe_home):
    store = RunStore(mmoe_home)
    config = RunConfig(dataset="upload:" + "b" * 16, targets=("x", "y"), steps=20)
    run_id = store.create_run(config, status="running", key_hash=hash_secret(SECRET))
    store.finish_run(run_id, "failed", error=f"column 'x' is not in the table; its columns are {MARKER}_a, b")
    viewer = app("pages/runs.py", query={"run": run_id})
    assert MARKER not in page_text(viewer) and any("only its owner sees" in e.value for e in viewer.error)
    owner = app("pages/runs.py", query={"run": run_id, "key": SECRET})
    assert any(MARKER in e.value for e in owner.error)


# ---------------------------------------------------------------------------------------------- who may change a run
def test_a_view_link_cannot_stop_or_delete_and_the_owner_link_can_after_a_reload(mmoe_home):
    at = app()  # starts the queue (its recovery runs once, before the live run exists)
    run_id = live_run(mmoe_home)
    store = RunStore(mmoe_home)
    viewer = app("pages/runs.py", query={"run": run_id})
    assert viewer.button(key="runs_stop").disabled and viewer.button(key="runs_delete").disabled
    assert any("Read-only" in c.value for c in viewer.caption)
    assert not store.cancel_requested(run_id)
    playground = app(query={"run": run_id})
    assert playground.button(key="stop").disabled and any("Read-only" in c.value for c in playground.caption)
    assert playground.button(key="pace").disabled and playground.button(key="step_once").disabled  # no Pause/Step
    store.set_pace(run_id, "pause")  # even while it is paused, Resume is the owner's alone
    playground.run()
    assert playground.button(key="pace").label == "Resume" and playground.button(key="pace").disabled
    store.set_pace(run_id, "")
    wrong = app("pages/runs.py", query={"run": run_id, "key": "guess"})
    assert wrong.button(key="runs_stop").disabled and any("not this run's owner key" in w.value for w in wrong.warning)

    owner = app("pages/runs.py", query={"run": run_id, "key": SECRET})  # a new session: a reload or a restart
    assert not owner.button(key="runs_stop").disabled
    owner.button(key="runs_stop").click().run()
    assert store.cancel_requested(run_id)
    store.finish_run(run_id, "cancelled")
    owner.run()
    owner.button(key="runs_delete").click().run()
    owner.button(key="runs_confirm_delete").click().run()
    assert store.run(run_id) is None
    del at


def test_the_browser_that_starts_a_run_owns_it_and_its_address_is_the_owner_link(mmoe_home):
    at = app(query={"rows": "500", "eval_rows": "100", "steps": "100000", "models": "mmoe"})
    at.button(key="start").click().run()
    run_id = at.session_state["run_id"]
    assert not at.button(key="stop").disabled
    key = at.query_params["key"][0] if isinstance(at.query_params["key"], list) else at.query_params["key"]
    assert RunStore(mmoe_home).key_hash(run_id) == hash_secret(key)  # only the hash is stored
    reloaded = app(query={"run": run_id, "key": key})
    assert not reloaded.button(key="stop").disabled
    reloaded.button(key="stop").click().run()
    assert RunStore(mmoe_home).cancel_requested(run_id) or RunStore(mmoe_home).run(run_id)["status"] == "cancelled"
    viewer = app(query={"run": run_id})
    assert viewer.button(key="stop").disabled


def test_only_the_studys_owner_link_stops_the_study(mmoe_home):
    app()
    study = "abcdef012345"
    ids = [live_run(mmoe_home, label=f"study:{study}", config=RunConfig(correlation=p)) for p in (0.5, 0.9)]
    store = RunStore(mmoe_home)
    viewer = app("pages/experiments.py", query={"study": study})
    assert viewer.button(key="exp_stop").disabled
    assert not any(store.cancel_requested(r) for r in ids)
    owner = app("pages/experiments.py", query={"study": study, "key": SECRET})
    assert not owner.button(key="exp_stop").disabled
    owner.button(key="exp_stop").click().run()
    assert all(store.cancel_requested(r) for r in ids)


def test_the_admin_token_may_stop_any_run(mmoe_home, monkeypatch):
    monkeypatch.setenv("MMOE_ADMIN_TOKEN", "admin-token-1")
    app()
    run_id = live_run(mmoe_home, key=None)  # a command-line run: no browser owns it
    at = app("pages/runs.py", query={"run": run_id})
    assert at.button(key="runs_stop").disabled
    at.text_input(key="admin_token").set_value("wrong").run()
    at.button(key="admin_unlock").click().run()
    assert at.button(key="runs_stop").disabled and any("not right" in e.value for e in at.error)
    at.text_input(key="admin_token").set_value("admin-token-1").run()
    at.button(key="admin_unlock").click().run()
    assert not at.button(key="runs_stop").disabled
    at.button(key="runs_stop").click().run()
    assert RunStore(mmoe_home).cancel_requested(run_id)


# ---------------------------------------------------------------------------------------------- password
def test_the_password_gate_shows_nothing_until_the_password_is_typed(mmoe_home, monkeypatch):
    monkeypatch.setenv("MMOE_PASSWORD", "open sesame")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and [t.value for t in at.title] == ["MMoE Playground"]
    assert [b.label for b in at.button] == ["Open"] and not at.get("slider") and "Server queue" not in page_text(at)
    at.text_input(key="app_password").set_value("wrong")
    _submit(at)
    assert not at.get("slider") and any("not right" in e.value for e in at.error)
    at.text_input(key="app_password").set_value("open sesame")
    _submit(at)
    assert not at.exception and at.slider(key="correlation").value == 0.5 and "Server queue" in page_text(at)


def _submit(at: AppTest) -> None:
    next(b for b in at.button if b.label == "Open").click().run()


def test_guesses_are_limited_per_server_and_compared_in_constant_time():
    limiter = AttemptLimiter(limit=3, window_s=60)
    assert [check_guess(g, "pw", limiter)[0] for g in ("a", "b", "c")] == [False, False, False]
    ok, message = check_guess("pw", "pw", limiter)  # even the right one waits once the limit is reached
    assert not ok and "Too many wrong attempts" in message
    assert not limiter.blocked(now=time.monotonic() + 61)
    assert check_guess("pw", "pw", AttemptLimiter())[0] and not check_guess("", None, AttemptLimiter())[0]


# ---------------------------------------------------------------------------------------------- runs page at scale
def test_the_runs_page_pages_through_10000_runs_and_opens_the_oldest(mmoe_home):
    store = RunStore(mmoe_home)
    fill_store(store, 10_000)
    oldest = store.runs(limit=1, offset=9_999)["id"][0]
    at = app("pages/runs.py")
    assert len(at.dataframe[0].value) == 100 and any("of 10,000 matching" in c.value for c in at.caption)
    at.number_input(key="runs_page").set_value(100).run()
    assert at.dataframe[0].value["Run"].iloc[-1] == oldest
    at = app("pages/runs.py", query={"run": oldest})  # a link to a run far beyond the first page
    assert at.subheader[0].value == f"Run {oldest}"
    at.text_input(key="runs_search").set_value(oldest).run()
    assert at.dataframe[0].value["Run"].tolist() == [oldest]


def fill_store(store: RunStore, n: int) -> None:
    """n finished runs in one transaction (bench/runs_page.py times the page over such a store)."""
    config = RunConfig(steps=10, models=("mmoe",)).to_json()
    now = time.time()
    with store._tx() as db:
        db.executemany(
            "INSERT INTO runs (id, kind, config, status, created, total_steps, owner, label, key_hash) "
            "VALUES (?, 'train', ?, 'done', ?, 10, '', '', '')",
            [(f"{(i * 2654435761) % 16**12:012x}", config, now - n + i) for i in range(n)],  # distinct ids
        )
