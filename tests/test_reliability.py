"""Protects the app on a shared server (issue 7) through its doors: bad input from the URL, the widgets, the CLI
and uploads gets one clear message and loses nothing stored; Stop, a killed worker and a diverging model end
their runs with the right status on the page; a session's queued runs leave when Streamlit releases it; the
limits are configurable; and the safety rules (no pickle, XSRF on, no user text as HTML, valid run ids) hold.

Server-level load and restart checks are in test_load.py; library-level queue checks in test_jobs.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from helpers import rerun_until
from helpers import wait_for as _wait_for
from streamlit.testing.v1 import AppTest

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore, check_run_id

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 90  # seconds per script run: the first imports torch and starts the job queue on a busy machine
TINY = RunConfig(rows=500, eval_rows=100, steps=40, log_every=20, batch_size=64, models=("shared_bottom", "mmoe"))
LONG = {"rows": 1000, "eval_rows": 100, "steps": 500_000, "log_every": 10, "batch_size": 64}


def app(page: str | None = None, query: dict | None = None) -> AppTest:
    """The app as a browser opens it: at `page` (the Playground when None) with `query` in its URL."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if page:
        at.switch_page(page)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def stored_run(home: Path, config: RunConfig = TINY) -> str:
    """A finished run written straight to the store (in-process, no worker)."""
    from mmoe_core.runtime.execute import execute_run

    store = RunStore(home)
    run_id = store.create_run(config, status="running")
    execute_run(store, run_id)
    return run_id


def wait_for(predicate, timeout: float = 90.0, every: float = 0.1):
    return _wait_for(predicate, timeout, every=every)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_url_parameters_each_get_one_warning_and_nothing_stored_is_lost(mmoe_home):
    kept = stored_run(mmoe_home)
    before = RunStore(mmoe_home).metrics(kept)
    bad = {
        "correlation": "2",
        "n_experts": "0",
        "steps": "-1",
        "lr": "nan",
        "models": "mmoe,foo",
        "rows": "999999999",
        "run": "../../etc/passwd",
    }
    at = app(query=bad)
    warnings = [w.value for w in at.warning]
    for key in ("correlation", "n_experts", "steps", "lr", "models", "rows", "run"):
        assert sum(w.startswith(f"URL parameter {key}=") for w in warnings) == 1, (key, warnings)
    assert any("is out of range; allowed -1 to 1" in w for w in warnings)
    assert any("lr=nan must be a finite number" in w for w in warnings)
    assert any("'foo' is unknown; choose from single_task" in w for w in warnings)
    assert any("there is no such run on this server" in w for w in warnings)
    assert not any("Traceback" in w for w in warnings)
    # every control shows a valid value, so Start trains something sane
    assert at.number_input(key="n_experts").value == 8 and at.number_input(key="steps").value == RunConfig().steps
    assert at.slider(key="correlation").value == 0.5 and not at.button(key="start").disabled
    assert RunStore(mmoe_home).metrics(kept).equals(before)
    assert RunStore(mmoe_home).run(kept)["status"] == "done"


def test_absurd_sizes_together_are_refused_from_the_url_and_the_widgets(mmoe_home):
    at = app(query={"rows": "2000000", "input_dim": "2000"})
    assert any(
        w.value.startswith("URL configuration ignored: rows x input_dim x seeds needs 16.0 GB") for w in at.warning
    )
    at.number_input(key="rows").set_value(2_000_000)
    at.number_input(key="input_dim").set_value(2_000)
    at.run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert "over this server's limit of 4.0 GB; lower rows, input_dim or seeds" in message
    assert at.button(key="start").disabled


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--lr", "nan"], {}, "error: --lr nan must be a finite number"),
        (["--rows", "2000000", "--input-dim", "2000"], {}, "rows x input_dim x seeds needs 16.0 GB of inputs"),
        (["--steps", "1000"], {"MMOE_MAX_WORK": "1e6"}, "too much work for this server"),
    ],
    ids=["lr-nan", "absurd-memory", "work-limit-from-env"],
)
def test_cli_refuses_bad_and_absurd_flags_with_one_line(tmp_path, args, env, message):
    proc = subprocess.run(
        [sys.executable, "-m", "mmoe_core", "train", *args, "--quiet", "--home", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert RunStore(tmp_path).runs().empty  # nothing was queued or stored


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="data_choice").set_value("csv").run()
    at.file_uploader(key="csv_upload").set_value((name, data, "text/csv")).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_an_oversized_upload_is_refused_with_its_limit_and_stores_nothing(mmoe_home, monkeypatch):
    monkeypatch.setenv("MMOE_MAX_UPLOAD_MB", "0.001")  # 1 kB: the limit of a tiny classroom server
    at = upload(app("pages/data.py"), "big.csv", b"a,b,c\n" + b"1.5,2.5,3.5\n" * 500)
    (message,) = [e.value for e in at.error]
    assert "MMOE_MAX_UPLOAD_MB" in message, message
    assert not (mmoe_home / "uploads").exists() or not list((mmoe_home / "uploads").iterdir())


def test_a_hostile_file_name_is_shown_as_text_and_never_reaches_the_file_system(mmoe_home):
    name = "../../<img src=x onerror=alert(1)>.csv"
    at = upload(app("pages/data.py"), name, (ROOT / "sample_data" / "customers.csv").read_bytes())
    shown = [m for m in at.markdown if "onerror" in m.value]
    assert shown, "the file name is shown"
    assert not any(m.proto.allow_html for m in shown)  # markdown escapes it: no <img> element is made
    (stored,) = (mmoe_home / "uploads").iterdir()
    assert re.fullmatch(r"[0-9a-f]{16}\.csv", stored.name)


# ---------------------------------------------------------------------------------------------- stop, crash
def start_from_page(at: AppTest, values: dict) -> str:
    for key, value in values.items():
        at.number_input(key=key).set_value(value)
    at.pills(key="models").set_value(["mmoe"])
    at.run()
    at.button(key="start").click().run()
    assert not at.exception
    return at.session_state["run_id"]


def test_stop_on_the_page_ends_the_worker_fast_and_keeps_the_curves(mmoe_home):
    from ui import server

    at = app()
    run_id = start_from_page(at, LONG)
    store = RunStore(mmoe_home)
    wait_for(lambda: len(store.metrics(run_id)) > 20)
    at.run()
    pid = server.get_queue().worker_pid(run_id)
    assert pid and not at.button(key="stop").disabled
    recorded = len(store.metrics(run_id))
    t0 = time.monotonic()
    at.button(key="stop").click().run()
    page_s = time.monotonic() - t0  # the Stop callback ran somewhere inside this script run
    wait_for(lambda: not alive(pid), timeout=10, every=0.02)
    ended_s = time.monotonic() - t0
    assert ended_s < 2.0 + page_s, (ended_s, page_s)
    rerun_until(at, lambda a: any("Stopped at step" in i.value for i in a.info), timeout=30)
    assert store.run(run_id)["status"] == "cancelled"
    assert len(store.metrics(run_id)) >= recorded  # every recorded point is kept
    assert not at.button(key="start").disabled


def test_a_killed_worker_shows_failed_the_next_job_runs_and_the_app_keeps_serving(mmoe_home):
    from ui import server

    at = app()
    run_id = start_from_page(at, LONG)
    queue = server.get_queue()
    store = queue.store
    wait_for(lambda: len(store.metrics(run_id)) > 10)
    waiting = queue.submit(TINY.with_(models=("mmoe",)), owner="web:another-session")
    os.kill(queue.worker_pid(run_id), signal.SIGKILL)
    rerun_until(at, lambda a: any(e.value.startswith("The run failed:") for e in a.error), timeout=30)
    (message,) = [e.value for e in at.error]
    assert "the worker process ended unexpectedly (signal SIGKILL); recorded curves are kept" in message
    assert len(store.metrics(run_id)) > 10 and not at.button(key="start").disabled
    wait_for(lambda: queue.state(waiting).finished, timeout=120)
    assert queue.state(waiting).status == "done"
    at.switch_page("pages/runs.py").run()  # the app still serves every page
    assert not at.exception and at.dataframe[0].value["Run"].tolist()[:2] == [waiting, run_id]


def test_a_diverged_model_is_shown_with_its_step_and_a_hint_while_the_other_finishes(mmoe_home, monkeypatch):
    from mmoe_core.runtime import execute

    class BlowsUpMMoE(execute.Trainer):  # Adam within lr <= 10 does not blow up: force MMoE's weights to inf
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.models["mmoe"].tower_w[-1].data.mul_(1e30)  # the loss overflows to inf

    monkeypatch.setattr(execute, "Trainer", BlowsUpMMoE)
    run_id = stored_run(mmoe_home)
    at = app("pages/runs.py", query={"run": run_id})
    table = next(d.value for d in at.dataframe if "Model" in d.value.columns).set_index("Model")  # the models table
    mmoe = table.loc[next(m for m in table.index if m.startswith("MMoE")), "Status"]
    assert re.match(r"diverged: loss became NaN/inf by step \d+ \(lr = 0\.001\); lower the learning rate", mmoe)
    assert table.loc[next(m for m in table.index if m.startswith("Shared-Bottom")), "Status"] == "done"
    assert RunStore(mmoe_home).run(run_id)["status"] == "done"  # the run itself finished


# ---------------------------------------------------------------------------------------------- limits
def test_a_sessions_queued_runs_leave_when_streamlit_releases_the_session(mmoe_home, monkeypatch):
    from streamlit.runtime.caching import clear_session_resource_cache

    from ui import server

    monkeypatch.setenv("MMOE_SESSION_GRACE_S", "0")
    at = app()
    queue = server.get_queue()
    blocker = queue.submit(RunConfig(**LONG, models=("mmoe",)), owner="cli")
    wait_for(lambda: queue.state(blocker).status == "running")
    mine = start_from_page(at, {"rows": 500, "steps": 50})
    assert queue.state(mine).status == "queued"
    texts = [p.proto.text for p in at.get("progress")]
    assert "Waiting in the queue, position 1" in texts, texts
    owner = at.session_state["_owner"]
    clear_session_resource_cache(owner[len(server.OWNER_PREFIX) :])  # what Streamlit does on disconnect
    wait_for(lambda: queue.state(mine).finished, timeout=10)
    assert queue.state(mine).status == "cancelled" and "browser session ended" in queue.state(mine).error
    assert queue.state(blocker).status == "running"  # another owner's training run is untouched
    queue.cancel(blocker)


def test_server_limits_are_read_from_the_environment(tmp_path):
    code = (
        "from mmoe_core import settings; from mmoe_core.runtime import jobs; from mmoe_core.data import csv_read;"
        "g = settings.get; print(g('MMOE_MAX_WORK'), g('MMOE_MAX_DATA_BYTES'), g('MMOE_MAX_QUEUED'),"
        " jobs._default_max_concurrent(), csv_read.max_upload_bytes())"
    )
    env = {
        **os.environ,
        "MMOE_MAX_WORK": "123",
        "MMOE_MAX_DATA_BYTES": "456",
        "MMOE_MAX_QUEUED": "7",
        "MMOE_MAX_JOBS": "3",
        "MMOE_MAX_UPLOAD_MB": "2",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["123.0", "456.0", "7", "3", "2000000"]


# ---------------------------------------------------------------------------------------------- safety
SOURCES = sorted(
    [ROOT / "app.py", *(ROOT / "ui").glob("*.py"), *(ROOT / "pages").glob("*.py"), *(ROOT / "mmoe_core").rglob("*.py")]
)
# Where HTML is allowed on purpose, and why it is safe: fixed CSS (app, learn, lesson, present); the claim badges
# and their details, built from model names and numbers the app computes itself (study_tables).
HTML_ALLOWED = {"app.py": 1, "pages/learn.py": 1, "pages/lesson.py": 1, "pages/present.py": 1, "ui/study_tables.py": 1}


def test_nothing_unpickles_and_torch_load_is_weights_only():
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", text, re.MULTILINE), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)


def test_html_is_rendered_only_where_reviewed():
    found = {}
    for path in SOURCES:
        n = len(re.findall(r"unsafe_allow_html\s*=\s*True|\bst\.html\(|components\.html\(", path.read_text()))
        if n:
            found[path.relative_to(ROOT).as_posix()] = n
    assert found == HTML_ALLOWED, "review the new HTML for user text, then update HTML_ALLOWED"


def test_xsrf_protection_is_on():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["enableXsrfProtection"] is True


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0123456789AB", "0123456789a", "0123456789ab/..", ""])
def test_run_ids_that_could_reach_a_path_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="is not valid; expected 12 lowercase hex characters"):
        check_run_id(bad)
    with pytest.raises(ValueError, match="is not valid"):
        RunStore(tmp_path).weights_path(bad)


def test_a_tight_work_limit_refuses_jobs_but_every_page_still_opens(mmoe_home, monkeypatch):
    monkeypatch.setenv("MMOE_MAX_WORK", "1e9")  # as MMOE_MAX_WORK=1e9: below the study presets and defaults
    at = app()
    assert not at.button(key="start").disabled  # the defaults stay allowed: pages build them to show controls
    at.number_input(key="steps").set_value(3_000).run()
    assert any("too much work for this server" in e.value and "> 1e+09" in e.value for e in at.error)
    assert at.button(key="start").disabled
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("too much work for this server" in e.value for e in at.error)


def test_a_bad_setting_names_the_variable(monkeypatch):
    from mmoe_core import settings

    monkeypatch.setenv("MMOE_MAX_QUEUED", "lots")
    with pytest.raises(ValueError, match=r"MMOE_MAX_QUEUED='lots' is not a whole number"):
        settings.get("MMOE_MAX_QUEUED")
    monkeypatch.setenv("MMOE_MAX_QUEUED", "")
    default = settings.SETTINGS["MMOE_MAX_QUEUED"].default
    assert isinstance(default, int) and settings.get("MMOE_MAX_QUEUED") == default  # empty means unset
    monkeypatch.setenv("MMOE_MAX_QUEUED", str(default + 5))
    assert settings.get("MMOE_MAX_QUEUED") == default + 5
