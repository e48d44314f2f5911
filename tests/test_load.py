"""Protects a shared server under real load (issue 7), against `streamlit run app.py` and headless chromium:
eight sessions pressing Start at once each see their run training or waiting with its position, all finish, a
ninth page still loads, memory returns near its start; and a server killed mid-run comes back showing that
run `interrupted` with its curves while finished runs stay intact.

Figures measured on the development machine are in docs/RELIABILITY.md; the long version is `python -m bench.load_test`.
Timing bounds here are generous because CI machines are shared: the documented figures are the measurement."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import browser_kit as load
import pytest

from mmoe_core.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]

SESSIONS = 8
TINY = "?rows=500&eval_rows=100&steps=30&log_every=10&batch_size=64&models=mmoe"
LONG = "?rows=1000&eval_rows=100&steps=500000&log_every=10&batch_size=64&models=mmoe"
# The issue asks < 2 s. Measured with `python -m bench.load_test` on an otherwise idle 2-core machine, by the page's own
# clock (docs/RELIABILITY.md): median 1.40-1.76 s, worst 2.25 s, 24 of 26 loads under 2 s; the server's last
# message came at about 1.0-1.3 s. These bounds only catch a server that stops answering (before Streamlit's
# per-run gc.collect() was switched off its part took 4 s); CI machines are shared, so the bench holds the figure.
NINTH_PAGE_S = 20.0
NINTH_PAGE_SERVER_S = 6.0


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    if not os.path.exists(load.CHROMIUM):
        pytest.fail(f"{load.CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    home = tmp_path_factory.mktemp("mmoe_load_home")
    return load.load_test(SESSIONS, TINY, home=home, finish_timeout_s=600)


def test_eight_sessions_each_train_or_wait_with_a_position_and_all_finish(figures):
    print(figures)
    assert len(figures["shown"]) == SESSIONS
    for line in figures["shown"]:  # the worker may finish a tiny run before its page is read: "finished"
        assert re.fullmatch(r"Waiting in the queue, position \d+|step [\d,]+ of [\d,]+|finished", line), line
    positions = [int(m) for s in figures["shown"] for m in re.findall(r"position (\d+)", s)]
    # pages are read one after another while the queue moves, so two reads may catch the same position
    assert positions and all(1 <= p <= SESSIONS - 1 for p in positions), positions
    assert figures["final_status"] == ["done"]
    assert figures["exceptions_on_pages"] == 0


def test_a_ninth_page_loads_while_they_train(figures):
    assert figures["ninth_page_server_s"] < NINTH_PAGE_SERVER_S, figures
    assert figures["ninth_page_s"] < NINTH_PAGE_S, figures


def test_server_memory_returns_near_its_start(figures):
    # workers are separate processes that exit when their job ends; the server itself must not keep growing
    assert figures["rss_end_mb"] <= figures["rss_start_mb"] * 1.25 + 100, figures


def test_a_killed_server_comes_back_with_the_run_interrupted_and_its_curves(tmp_path):
    from playwright.sync_api import sync_playwright

    from mmoe_core.config import RunConfig
    from mmoe_core.runtime.execute import execute_run

    home = tmp_path / "home"
    store = RunStore(home)
    done = store.create_run(
        RunConfig(rows=500, eval_rows=100, steps=20, log_every=10, models=("mmoe",)), status="running"
    )
    execute_run(store, done)  # a finished run, written in-process
    finished = {done: len(store.metrics(done))}
    proc, base = load.start_server(home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=load.CHROMIUM, args=load.CHROMIUM_ARGS)
            page = browser.new_page()
            load.open_playground(page, base + "/" + LONG)
            page.locator(".st-key-start button").click()
            deadline = time.monotonic() + 120
            while not (ids := [r for r in store.runs()["id"] if r not in finished]):
                assert time.monotonic() < deadline, "Start made no run"
                time.sleep(0.2)
            run_id = ids[0]
            deadline = time.monotonic() + 120
            while len(store.metrics(run_id)) < 20:
                assert time.monotonic() < deadline, "the long run recorded no points"
                time.sleep(0.2)
            os.kill(proc.pid, signal.SIGKILL)  # the server dies without any clean-up
            proc.wait(10)
            recorded = len(store.metrics(run_id))

            proc, base = load.start_server(home)
            page.goto(f"{base}/runs?run={run_id}")
            page.get_by_text("interrupted").first.wait_for(timeout=90_000)
            page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=90_000)
            assert load.exceptions_on(page) == 0
            browser.close()
    finally:
        load.stop_server(proc)
    row = store.run(run_id)
    assert row["status"] == "interrupted" and "recorded curves are kept" in row["error"]
    assert len(store.metrics(run_id)) >= recorded > 0
    for r, n in finished.items():  # the runs that finished before are intact
        assert store.run(r)["status"] == "done" and len(store.metrics(r)) == n and store.weights_path(r).exists()
