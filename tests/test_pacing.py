"""Protects Pause, Resume and Step (issue #17 item 3, mmoe_core/runtime/pacing.py): a paused run makes no
progress, Step trains to the next recorded point and pauses there, a paused-then-resumed run ends with exactly
the weights of an uninterrupted one, and a run paused past MMOE_MAX_PAUSE_S is stopped with its curves kept."""

from __future__ import annotations

import threading
import time

import torch
from safetensors.torch import load_file

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.runtime.execute import execute_run

CONFIG = RunConfig(rows=1_000, eval_rows=100, steps=1_500, log_every=25, batch_size=64, seeds=2)


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not met in {timeout} s")


def start(store: RunStore, config: RunConfig = CONFIG) -> tuple[str, threading.Thread]:
    run_id = store.create_run(config, status="running")
    thread = threading.Thread(target=execute_run, args=(store, run_id), daemon=True)
    thread.start()
    return run_id, thread


def last_recorded_step(store: RunStore, run_id: str) -> int:
    metrics = store.metrics(run_id)
    return int(metrics["step"].max()) if len(metrics) else -1


def test_pause_holds_step_advances_one_interval_and_resume_ends_with_the_uninterrupted_weights(tmp_path):
    plain = RunStore(tmp_path / "plain")
    reference = plain.create_run(CONFIG, status="running")
    execute_run(plain, reference)

    store = RunStore(tmp_path / "paced")
    run_id, thread = start(store)
    wait_for(lambda: last_recorded_step(store, run_id) >= 100, what="training to start")
    store.set_pace(run_id, "pause")
    wait_for(lambda: store.run(run_id)["paused_since"] is not None, what="the worker to pause")
    held = last_recorded_step(store, run_id)
    time.sleep(1.0)
    assert last_recorded_step(store, run_id) == held and store.run(run_id)["status"] == "running"  # no progress

    store.set_pace(run_id, "step")
    wait_for(lambda: store.pace(run_id) == "pause" and store.run(run_id)["paused_since"], what="Step to pause again")
    stepped = last_recorded_step(store, run_id)
    assert held < stepped and stepped % CONFIG.log_every == 0 and stepped - held <= 2 * CONFIG.log_every
    time.sleep(0.5)
    assert last_recorded_step(store, run_id) == stepped  # paused at the recorded point it stepped to

    store.set_pace(run_id, "")
    thread.join(timeout=300)
    row = store.run(run_id)
    assert row["status"] == "done" and row["paused_since"] is None
    ours, theirs = load_file(store.weights_path(run_id)), load_file(plain.weights_path(reference))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_run_paused_too_long_is_stopped_and_keeps_its_curves(tmp_path, monkeypatch):
    monkeypatch.setenv("MMOE_MAX_PAUSE_S", "0.5")
    store = RunStore(tmp_path)
    run_id, thread = start(store, CONFIG.with_(steps=100_000))
    wait_for(lambda: last_recorded_step(store, run_id) >= 50, what="training to start")
    store.set_pace(run_id, "pause")
    thread.join(timeout=120)
    row = store.run(run_id)
    assert row["status"] == "cancelled"
    assert "paused (MMOE_MAX_PAUSE_S)" in row["error"] and "its curves are kept" in row["error"]
    assert last_recorded_step(store, run_id) >= 50
    assert (store.metrics(run_id)["split"] == "test").any()  # evaluated where it stopped, as Stop does


def test_stop_ends_a_paused_run(tmp_path):
    store = RunStore(tmp_path)
    run_id, thread = start(store, CONFIG.with_(steps=100_000))
    wait_for(lambda: last_recorded_step(store, run_id) >= 25, what="training to start")
    store.set_pace(run_id, "pause")
    wait_for(lambda: store.run(run_id)["paused_since"] is not None, what="the worker to pause")
    t0 = time.monotonic()
    store.request_cancel(run_id)
    thread.join(timeout=60)
    assert time.monotonic() - t0 < 5 and store.run(run_id)["status"] == "cancelled"
