"""Protects the trust rules of issue 14 where only a real browser shows them (`streamlit run app.py` + Debian's
chromium, see conftest.py): a link naming a server file shows nothing of that file on any page; a second browser
context cannot stop or delete someone else's run or stop their study; the owner still can after a reload."""

from __future__ import annotations

import os
import re
import time

import pandas as pd
import pytest
from helpers import wait_for

from mmoe_core.access import hash_secret
from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore

VALUE_MARKER = "qv_private_value_5521"  # only inside the private file's cells
HIDDEN_COLUMN = "qv_hidden_column_9034"  # a column of the private file that no link names
PAGES = ("", "runs", "data", "experiments", "learn")


@pytest.fixture
def context(app_server, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 2000})
    yield ctx
    ctx.close()


@pytest.fixture
def other_context(app_server, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 2000})
    yield ctx
    ctx.close()


def body_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


def settle(page, key: str) -> None:
    """Wait for a keyed element (a busy 2-core machine takes ~20 s for a first page), then for the script run."""
    page.locator(f".st-key-{key}").first.wait_for(timeout=120_000)
    time.sleep(1.5)


def none_enabled(page, key: str) -> bool:
    """No copy of a keyed button is enabled (during a live redraw Streamlit can briefly show two copies)."""
    page.locator(f".st-key-{key} button").first.wait_for(timeout=60_000)
    buttons = page.locator(f".st-key-{key} button").all()
    return bool(buttons) and not any(b.is_enabled() for b in buttons)


def wait_enabled(page, key: str, what: str, timeout: float = 120) -> None:
    page.locator(f".st-key-{key} button").first.wait_for(timeout=timeout * 1000)
    # during a live redraw Streamlit can briefly show two copies of a keyed element: the first is the current one
    wait_for(lambda: page.locator(f".st-key-{key} button").first.is_enabled(timeout=5_000), timeout, what)


def test_a_link_naming_a_server_file_shows_nothing_of_it_on_any_page(app_server, context, tmp_path):
    base, _ = app_server
    path = tmp_path / "private.csv"
    pd.DataFrame(
        {"income": [f"{VALUE_MARKER}{i % 3}" for i in range(200)], "churn": [i % 2 for i in range(200)]}
        | {HIDDEN_COLUMN: range(200)}
    ).to_csv(path, index=False)
    page = context.new_page()
    link = f"/?dataset={path}&targets=income,churn&rows=500&eval_rows=100&steps=20&log_every=10&models=mmoe"
    page.goto(base + link)
    page.get_by_text("cannot name a file on the server").first.wait_for(timeout=120_000)
    wait_enabled(page, "start", "Start to be enabled")
    start(page)  # trains on synthetic data: the file is never read
    page.get_by_text("Finished 20 steps").wait_for(timeout=240_000)
    for name in PAGES:
        page.goto(f"{base}/{name}")
        page.locator("h1").first.wait_for(timeout=120_000)
        time.sleep(1.5)
        text = body_text(page)
        assert VALUE_MARKER not in text and HIDDEN_COLUMN not in text, f"/{name} shows the private file"
        assert page.locator(".stException").count() == 0, f"/{name} shows an exception"


def start(page, timeout: float = 240) -> None:
    """Press Start, again only if it is still enabled with no run in the address (a click during a busy server's
    rerun can be lost), until the address names the new run."""
    deadline = time.monotonic() + timeout
    while "run=" not in page.url:
        assert time.monotonic() < deadline, "Start did not start a run"
        button = page.locator(".st-key-start button")
        if button.is_enabled(timeout=10_000):
            button.click()
        time.sleep(10)


def owner_link(page) -> tuple[str, str]:
    url = wait_for(lambda: "key=" in page.url and page.url, 120, "the owner link in the address")
    return re.search(r"run=([0-9a-f]{12})", url).group(1), re.search(r"key=([^&]+)", url).group(1)


def test_a_second_browser_cannot_stop_or_delete_a_run_and_the_owner_can_after_a_reload(
    app_server, context, other_context
):
    base, home = app_server
    owner = context.new_page()
    owner.goto(base + "/?rows=1000&eval_rows=200&steps=100000&log_every=50&models=mmoe")
    wait_enabled(owner, "start", "Start to be enabled")
    start(owner)
    run_id, key = owner_link(owner)
    assert RunStore(home).key_hash(run_id) == hash_secret(key)

    viewer = other_context.new_page()
    viewer.goto(f"{base}/?run={run_id}")
    settle(viewer, "stop")
    assert none_enabled(viewer, "stop")
    viewer.get_by_text("Read-only: only the browser that started this run").first.wait_for(timeout=10_000)
    viewer.goto(f"{base}/runs?run={run_id}")
    settle(viewer, "runs_stop")
    assert none_enabled(viewer, "runs_stop")
    assert none_enabled(viewer, "runs_delete")
    assert not RunStore(home).cancel_requested(run_id)

    owner.reload()  # a new session: only the key in the address says who owns the run
    wait_enabled(owner, "stop", "Stop to be enabled after the reload")
    owner.locator(".st-key-stop button").click()
    owner.get_by_text("Stopped at step").wait_for(timeout=30_000)
    owner.goto(f"{base}/runs?run={run_id}&key={key}")
    wait_enabled(owner, "runs_delete", "Delete for the owner")
    viewer.goto(f"{base}/runs?run={run_id}")
    settle(viewer, "runs_delete")
    assert none_enabled(viewer, "runs_delete")  # still not for the other browser
    owner.locator(".st-key-runs_delete button").first.click()
    owner.locator(".st-key-runs_confirm_delete button").click()
    wait_for(lambda: RunStore(home).run(run_id) is None, 30, "the owner's delete")
    assert owner.locator(".stException").count() == 0 and viewer.locator(".stException").count() == 0


def test_a_second_browser_cannot_stop_a_study_and_the_owner_can_after_a_reload(app_server, context, other_context):
    base, home = app_server
    store, study, secret = RunStore(home), "5eed5eed5eed", "study-owner-secret"
    ids = []
    for p in (0.5, 0.9):  # a study as the server stored it, left running (no worker: its pid is this test)
        run_id = store.create_run(
            RunConfig(correlation=p, steps=100_000),
            status="running",
            label=f"study:{study}",
            key_hash=hash_secret(secret),
        )
        store.update_run(run_id, pid=os.getpid())
        ids.append(run_id)
    try:
        viewer = other_context.new_page()
        viewer.goto(f"{base}/experiments?study={study}")
        settle(viewer, "exp_stop")
        assert none_enabled(viewer, "exp_stop")
        viewer.get_by_text("Read-only: only the browser that started this study").first.wait_for(timeout=10_000)
        owner = context.new_page()
        owner.goto(f"{base}/experiments?study={study}&key={secret}")
        wait_enabled(owner, "exp_stop", "Stop study for the owner")
        owner.reload()
        wait_enabled(owner, "exp_stop", "Stop study after a reload")
        assert not any(store.cancel_requested(r) for r in ids)
        owner.locator(".st-key-exp_stop button").click()
        wait_for(lambda: all(store.cancel_requested(r) for r in ids), 30, "every run of the study asked to stop")
    finally:
        for run_id in ids:
            store.finish_run(run_id, "cancelled")


def test_the_tabs_of_one_browser_share_its_queue_quota(app_server, context, other_context):
    from ui.server import XSRF_COOKIE, browser_id

    base, home = app_server
    first = context.new_page()
    first.goto(base + "/")
    settle(first, "start")
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    browser = browser_id(cookies.get(XSRF_COOKIE))
    assert browser, "Streamlit set no XSRF cookie"
    store, ids = RunStore(home), []
    for i in range(3):  # three runs this browser started from other tabs, held as running (no worker: our pid)
        run_id = store.create_run(RunConfig(steps=100_000), status="running", owner=f"web:tab{i}", browser=browser)
        store.update_run(run_id, pid=os.getpid())
        ids.append(run_id)
    try:
        tab = context.new_page()  # a fourth tab: a new Streamlit session, the same browser
        tab.goto(base + "/?rows=1000&eval_rows=200&steps=20&log_every=10&models=mmoe")
        wait_enabled(tab, "start", "Start to be enabled in the fourth tab")
        tab.locator(".st-key-start button").click()
        tab.get_by_text("all its tabs together").first.wait_for(timeout=60_000)
        assert "run=" not in tab.url
        other = other_context.new_page()  # another browser still gets in
        other.goto(base + "/?rows=1000&eval_rows=200&steps=20&log_every=10&models=mmoe")
        wait_enabled(other, "start", "Start to be enabled in the other browser")
        start(other)
        assert "all its tabs together" not in body_text(other)
    finally:
        for run_id in ids:
            store.finish_run(run_id, "cancelled")
