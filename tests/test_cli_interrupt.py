"""Protects the CLI under interruption and bad paths (issue 14, item 6): Ctrl-C or SIGTERM ends a run within
seconds as `cancelled` with its curves, writes the JSON with each model cancelled, prints one line and exits
130/143; --json and --home are checked before any training; --no-store leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import wait_for

from mmoe_core.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
LONG = ["--steps", "200000", "--rows", "2000", "--eval-rows", "200", "--log-every", "10", "--quiet"]


def cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mmoe_core", "train", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def step_of(home: Path) -> int:
    try:
        with sqlite3.connect(home / "runs.sqlite", timeout=1) as db:
            row = db.execute("SELECT MAX(step) FROM runs").fetchone()
    except sqlite3.Error:
        return 0
    return (row and row[0]) or 0


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "term"])
def test_a_signal_stores_the_run_as_cancelled_with_its_curves_and_json(tmp_path, sig, code):
    home, out = tmp_path / "home", tmp_path / "out.json"
    proc = cli(*LONG, "--home", str(home), "--json", str(out))
    try:
        wait_for(lambda: step_of(home) >= 20, 300, "the run to record points")
        sent = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    assert took < 120  # 15 s measured at load 19 on 2 cores, 49 s at load 30: test metrics, weights, summary
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cancelled by {sig.name}: run ") and "Traceback" not in err
    result = json.loads(out.read_text())
    assert result["status"] == "cancelled"
    assert {m["status"] for m in result["models"].values()} == {"cancelled"}
    store = RunStore(home)
    run = store.run(result["run_id"])
    assert run["status"] == "cancelled" and 20 <= run["step"] < 200_000
    assert len(store.metrics(result["run_id"])) > 0 and store.weights_path(result["run_id"]).exists()


def test_a_json_path_in_a_missing_folder_is_refused_before_training(tmp_path):
    home = tmp_path / "home"
    proc = cli(*LONG, "--home", str(home), "--json", str(tmp_path / "nope" / "out.json"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert (
        err.strip()
        == f"error: --json '{tmp_path / 'nope' / 'out.json'}': the folder '{tmp_path / 'nope'}' does not exist; create it or choose another"
    )
    assert step_of(home) == 0 and not (home / "runs.sqlite").exists()  # nothing trained, nothing stored


@pytest.mark.parametrize("kind", ["file", "json-is-a-folder"])
def test_a_bad_home_or_json_target_is_one_line(tmp_path, kind):
    if kind == "file":
        (tmp_path / "home").write_text("x")
        args, expect = ["--home", str(tmp_path / "home")], "is a file, not a folder"
    else:
        args, expect = ["--home", str(tmp_path / "h"), "--json", str(tmp_path)], "is a folder; give a file name"
    proc = cli(*LONG, *args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1 and expect in err, err


def test_no_store_leaves_nothing_behind(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = cli(
        "--steps", "20", "--rows", "300", "--eval-rows", "60", "--quiet", "--no-store", env={"TMPDIR": str(scratch)}
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "mmoe" in out.lower() or "model" in out
    assert [p.name for p in scratch.iterdir() if p.name.startswith("mmoe_cli_")] == []  # (torch keeps its own)
