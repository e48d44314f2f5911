"""Protects the run store under faults (issue 14, item 4): a file where the folder should be, a read-only folder,
a damaged database and a full disk each give one message with the fix (no server path in what a page shows),
a damaged database is moved aside and replaced, and a run on a full disk ends `failed` with "disk full"."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.runtime.execute import execute_run
from mmoe_core.store_faults import DISK_FULL, StoreError

ROOT = Path(__file__).resolve().parents[1]
TINY = RunConfig(rows=300, eval_rows=60, steps=40, log_every=5, batch_size=32, models=("mmoe",))


@contextlib.contextmanager
def read_only(folder: Path):
    """chmod for a normal user; root ignores modes, so there the folder is made immutable (chattr +i)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o555)
    immutable = False
    if os.access(folder, os.W_OK) or os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        immutable = True
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        os.chmod(folder, 0o755)


def test_a_file_where_the_folder_should_be_says_so_without_the_path(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder")
    with pytest.raises(StoreError) as err:
        RunStore(home)
    assert str(err.value).startswith("the run store folder (MMOE_HOME) is a file, not a folder; set MMOE_HOME")
    assert str(tmp_path) not in str(err.value) and str(home) in err.value.detail  # the path is for the log only


def test_a_missing_folder_is_created_with_its_parents(tmp_path):
    store = RunStore(tmp_path / "a" / "b" / "home")
    assert store.runs().empty and (tmp_path / "a" / "b" / "home" / "weights").is_dir()


def test_a_read_only_folder_says_how_to_fix_it(tmp_path):
    with read_only(tmp_path / "home") as home:
        with pytest.raises(StoreError, match=r"^the run store folder \(MMOE_HOME\) is read-only; give the server"):
            RunStore(home)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_moved_aside_and_replaced(tmp_path, damage):
    home = tmp_path / "home"
    store = RunStore(home)
    for _ in range(300):
        store.create_run(TINY, label="x" * 200)
    del store
    with sqlite3.connect(home / "runs.sqlite") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = (home / "runs.sqlite").read_bytes()
    (home / "runs.sqlite").write_bytes(b"garbage!" * 4096 if damage == "garbage" else data[: len(data) // 2])
    store = RunStore(home)
    assert store.runs().empty and store.create_run(TINY)  # a fresh store that works
    moved = sorted(p.name for p in home.glob("runs.sqlite.corrupt-*") if not p.name.endswith(("-wal", "-shm")))
    assert len(moved) == 1 and (home / moved[0]).read_bytes()[:8] == (b"garbage!" if damage == "garbage" else data[:8])
    assert store.notice and moved[0] in store.notice and "moved aside" in store.notice
    assert str(home) not in store.notice


def test_a_locked_database_is_never_taken_for_a_damaged_one(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(TINY)
    blocker = sqlite3.connect(tmp_path / "runs.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            with store._connect() as db:
                db.execute("PRAGMA busy_timeout=50")
                db.execute("BEGIN IMMEDIATE")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert RunStore(tmp_path).run(run_id) is not None and not list(tmp_path.glob("*.corrupt-*"))


class FullDiskStore(RunStore):
    """SQLite's own 'database or disk is full' once the file reaches `pages` pages (PRAGMA max_page_count)."""

    pages = 0

    @contextlib.contextmanager
    def _connect(self):
        with super()._connect() as db:
            if self.pages:
                db.execute(f"PRAGMA max_page_count = {self.pages}")
            yield db


def test_a_run_on_a_full_disk_ends_failed_saying_disk_full(tmp_path):
    store = FullDiskStore(tmp_path)
    run_id = store.create_run(TINY.with_(steps=400, log_every=1), status="running")
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        used = db.execute("PRAGMA page_count").fetchone()[0]
    store.pages = used + 3  # room for a few points, then the disk is full
    summary = execute_run(store, run_id)
    row = store.run(run_id)
    assert summary == {"error": DISK_FULL}
    assert row["status"] == "failed" and row["error"] == DISK_FULL and "disk full" in row["error"]
    assert len(store.metrics(run_id)) > 0  # the points recorded before are kept


def test_writing_to_a_full_disk_from_a_page_is_a_store_error_with_the_fix(tmp_path):
    store = FullDiskStore(tmp_path)
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        store.pages = db.execute("PRAGMA page_count").fetchone()[0]
    with pytest.raises(StoreError, match="^disk full: the server's disk has no space left"):
        for _ in range(200):
            store.create_run(TINY, label="y" * 1000)


def test_streamlit_shows_no_error_details_to_browsers():
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'showErrorDetails = "none"' in text


@pytest.mark.parametrize("fault", ["file", "damaged"])
def test_the_app_says_what_is_wrong_with_the_store_instead_of_a_traceback(tmp_path, monkeypatch, fault):
    import sys

    from streamlit.testing.v1 import AppTest

    home = tmp_path / "home"
    if fault == "file":
        home.write_text("not a folder")
    else:
        home.mkdir()
        (home / "runs.sqlite").write_bytes(b"garbage!" * 4096)
    monkeypatch.setenv("MMOE_HOME", str(home))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    try:
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
        shown = shown.replace("\\", "")  # user-facing text is markdown-escaped (hygiene.plain)
        if fault == "file":
            assert "is a file, not a folder" in shown
        else:
            assert "moved aside as runs.sqlite.corrupt-" in shown
        assert str(tmp_path) not in shown
    finally:
        if "ui.server" in sys.modules:
            sys.modules["ui.server"].shutdown_queues()
