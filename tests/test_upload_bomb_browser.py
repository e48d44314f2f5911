"""Protects the web server's memory from an upload bomb (issue 14, item 3), in real Chromium: a legal-size CSV
(under 50 MB) of 198 text columns x 64 values, whose one-hot inputs would take 4.1 GB, is uploaded on the Data
page and refused with a message naming the limit, while the Streamlit server's own resident memory stays under
1 GB (the table is parsed and checked in a memory-capped child process; the server never holds it).
Before the fix the server parsed and expanded such a table itself (5.7 GB RSS for the issue's variant)."""

from __future__ import annotations

import string
import threading
import time
from pathlib import Path

import browser_kit as load_test  # tests/browser_kit.py: starts and stops a real server
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
ROWS, TEXT_COLUMNS = 80_000, 198  # 48 MB: under MMOE_MAX_UPLOAD_MB (50) and MMOE_MAX_COLUMNS (200)
LIMIT_MB = 1_000


def write_bomb(path: Path) -> None:
    rng = np.random.default_rng(0)
    values = np.array([a + b for a in string.ascii_lowercase[:8] for b in string.ascii_lowercase[:8]])  # 64
    cells = values[rng.integers(0, 64, size=(ROWS, TEXT_COLUMNS))]
    t1, t2 = rng.normal(size=ROWS).round(2), rng.integers(0, 2, size=ROWS)
    with open(path, "w") as fh:
        fh.write(",".join(["t1", "t2"] + [f"c{i}" for i in range(TEXT_COLUMNS)]) + "\n")
        for i in range(ROWS):
            fh.write(f"{t1[i]},{t2[i]}," + ",".join(cells[i]) + "\n")


def own_rss_mb(pid: int) -> float:
    """The server process alone (its children, the parser and the training workers, are not the server)."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


class Peak:
    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, own_rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


@pytest.mark.timeout(2400)
def test_an_upload_bomb_is_refused_with_a_message_and_the_server_stays_under_1_gb(tmp_path, browser):
    bomb = tmp_path / "bomb.csv"
    write_bomb(bomb)
    assert 40e6 < bomb.stat().st_size < 50e6
    home = tmp_path / "home"
    home.mkdir()
    proc, base = load_test.start_server(home)
    context = browser.new_context(viewport={"width": 1400, "height": 2000})
    try:
        page = context.new_page()
        page.goto(base + "/data")
        page.get_by_text("Your own CSV").first.wait_for(timeout=120_000)
        before = own_rss_mb(proc.pid)
        peak = Peak(proc.pid)
        page.get_by_text("Your own CSV").first.click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bomb))
        try:
            page.get_by_text("80,000 rows × 200 columns").wait_for(timeout=900_000)  # parsed in the child
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "upload_bomb_stuck.png"), full_page=True)
            raise AssertionError(f"no table shown; alerts: {page.locator('[role=alert]').all_inner_texts()}") from None
        print(f"server RSS before {before:.0f} MB, after the upload was shown {own_rss_mb(proc.pid):.0f} MB")
        for name in ("t1", "t2"):  # the target multiselect: type the column into its box, take it, see its chip
            box = page.locator(".st-key-csv_targets input")
            box.click()
            box.fill(name)
            page.get_by_role("option", name=name, exact=True).click()
            page.keyboard.press("Escape")
            tag = page.locator(f".st-key-csv_targets [data-tag][aria-label='{name}']").first
            tag.wait_for(timeout=300_000)  # the page reruns with the new target before the next one is typed
        alert = page.locator('[data-testid="stAlertContentError"]').filter(has_text="MMOE_MAX_DATA_BYTES")
        try:
            alert.wait_for(timeout=900_000)
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "upload_bomb_no_refusal.png"), full_page=True)
            raise AssertionError(
                f"no refusal shown; alerts: {page.locator('[role=alert]').all_inner_texts()}"
            ) from None
        text = alert.inner_text()
        time.sleep(2.0)  # anything the refusal left behind would show now
        after = own_rss_mb(proc.pid)
        top = peak.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "upload_bomb_refused.png"), full_page=True)
        print(f"server RSS before {before:.0f} MB, peak {top:.0f} MB, after {after:.0f} MB")
        assert "the inputs would take 4.1 GB (12,672 after one-hot encoding)" in text
        assert page.locator(".stException").count() == 0
        assert top < LIMIT_MB and after < LIMIT_MB, (before, top, after)
    finally:
        context.close()
        load_test.stop_server(proc)
