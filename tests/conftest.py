"""Shared fixtures: a private run store per test, and a real `streamlit run app.py` server for browser tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import browser_kit  # tests/browser_kit.py: the one place that starts and stops a real server
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mmoe_home(tmp_path, monkeypatch):
    """MMOE_HOME in a temp dir; afterwards stop the job queues (and warm workers) that the test's app made."""
    home = tmp_path / "mmoe_home"
    monkeypatch.setenv("MMOE_HOME", str(home))
    yield home
    if "ui.server" in sys.modules:
        sys.modules["ui.server"].shutdown_queues()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """`streamlit run app.py` on a free port with its own MMOE_HOME; yields (base url, home)."""
    home = tmp_path_factory.mktemp("mmoe_server_home")
    proc, url = browser_kit.start_server(home)
    try:
        yield url, home
    finally:
        browser_kit.stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (`playwright install` cannot download here)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(browser_kit.CHROMIUM):
        pytest.fail(f"{browser_kit.CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser_kit.CHROMIUM, args=browser_kit.CHROMIUM_ARGS)
        yield b
        b.close()
