"""Protects background training: runs wait in order with a position, Stop ends a worker within 2 s and keeps
its points, a SIGKILLed worker marks its run failed and the queue goes on, a restarted server marks orphaned
runs interrupted, and a session's waiting runs leave the queue when it ends."""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers import wait_for

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.runtime.jobs import JobQueue, QueueFull, run_state

LONG = RunConfig(rows=1000, eval_rows=100, steps=500_000, log_every=10, models=("mmoe",))
SHORT = RunConfig(rows=500, eval_rows=100, steps=40, log_every=20, batch_size=64, models=("mmoe",))


@pytest.fixture
def queue(tmp_path):
    q = JobQueue(RunStore(tmp_path), max_concurrent=1, max_queued=3)
    yield q
    q.shutdown()


def test_runs_wait_in_order_then_all_finish(queue):
    first = queue.submit(LONG)
    second, third = queue.submit(SHORT), queue.submit(SHORT)
    wait_for(lambda: queue.state(first).status == "running")
    assert [queue.state(r).queue_position for r in (second, third)] == [1, 2]
    assert queue.state(third).label == "queued, position 2"
    queue.cancel(first)
    wait_for(lambda: queue.state(third).finished, timeout=120)
    assert [queue.state(r).status for r in (first, second, third)] == ["cancelled", "done", "done"]


def test_queue_full_is_a_clear_error(queue):
    queue.submit(LONG)
    wait_for(lambda: queue.active())
    for _ in range(3):
        queue.submit(SHORT)
    with pytest.raises(QueueFull, match=r"queue is full \(3 runs waiting\)"):
        queue.submit(SHORT)


def test_stop_ends_the_worker_within_two_seconds_and_keeps_points(queue):
    run_id = queue.submit(LONG)
    wait_for(lambda: len(queue.store.metrics(run_id)) > 30)
    pid = queue.worker_pid(run_id)
    recorded = len(queue.store.metrics(run_id))
    t0 = time.monotonic()
    queue.cancel(run_id)
    wait_for(lambda: queue.state(run_id).finished, timeout=5)
    wait_for(lambda: not _alive(pid), timeout=5)
    assert time.monotonic() - t0 < 2.0
    assert queue.state(run_id).status == "cancelled"
    assert len(queue.store.metrics(run_id)) >= recorded


def test_workers_train_at_a_lower_cpu_priority_than_the_server(queue):
    """Pages are interactive, training is batch work: a worker must not compete with the server as an equal."""
    run_id = queue.submit(LONG)
    wait_for(lambda: len(queue.store.metrics(run_id)) > 0)
    with open(f"/proc/{queue.worker_pid(run_id)}/stat") as fh:
        worker_nice = int(fh.read().rsplit(")", 1)[1].split()[16])
    assert worker_nice == min(19, os.nice(0) + 10)
    queue.cancel(run_id)


def test_no_warm_worker_imports_torch_beside_a_lone_run_until_a_job_waits(queue):
    from mmoe_core.runtime.jobs import RESPAWN_DELAY_S

    run_id = queue.submit(LONG)
    wait_for(lambda: len(queue.store.metrics(run_id)) > 0)
    time.sleep(RESPAWN_DELAY_S + 1.0)
    assert queue.warm_pid() is None  # the only slot is busy and nobody waits: the import would only slow it
    queue.submit(SHORT)
    wait_for(lambda: queue.warm_pid() is not None, timeout=RESPAWN_DELAY_S + 10)  # now a job waits for it
    queue.cancel(run_id)


def test_killed_worker_fails_its_run_and_the_queue_goes_on(queue):
    doomed = queue.submit(LONG)
    after = queue.submit(SHORT)
    wait_for(lambda: len(queue.store.metrics(doomed)) > 10)
    os.kill(queue.worker_pid(doomed), signal.SIGKILL)
    wait_for(lambda: queue.state(doomed).finished, timeout=10)
    state = queue.state(doomed)
    assert state.status == "failed" and "SIGKILL" in state.error and "recorded curves are kept" in state.error
    assert len(queue.store.metrics(doomed)) > 10
    wait_for(lambda: queue.state(after).finished, timeout=120)
    assert queue.state(after).status == "done"


def test_restart_marks_orphaned_runs_interrupted(tmp_path):
    store = RunStore(tmp_path)
    running = store.create_run(SHORT)
    store.claim(running)
    store.update_run(running, pid=2**22 + 12345)  # a pid that no longer exists
    waiting = store.create_run(SHORT)
    done = store.create_run(SHORT)
    store.claim(done)
    store.finish_run(done, "done")
    q = JobQueue(store, warm=False)
    try:
        assert store.run(running)["status"] == "interrupted"
        assert "Re-run it from the Runs page" in store.run(running)["error"]
        assert store.run(waiting)["status"] == "interrupted"
        assert store.run(done)["status"] == "done"
    finally:
        q.shutdown()


def test_drop_owner_removes_only_that_sessions_waiting_runs(queue):
    blocker = queue.submit(LONG, owner="a")
    wait_for(lambda: queue.state(blocker).status == "running")
    mine, theirs = queue.submit(SHORT, owner="a"), queue.submit(SHORT, owner="b")
    assert queue.drop_owner("a") == 1
    assert queue.state(mine).status == "cancelled" and queue.state(theirs).status == "queued"
    assert queue.state(blocker).status == "running"  # a run already training is not dropped
    queue.cancel(blocker)


def test_run_state_is_a_pure_reading_of_the_row():
    now = time.time()
    row = {"status": "running", "step": 250, "total_steps": 1000, "rows_per_s": 5e4, "started": now - 10, "error": None}
    state = run_state(row)
    assert state.fraction == 0.25 and not state.finished and 25 < state.eta_s < 35
    assert run_state({**row, "status": "done"}).fraction == 1.0
    assert run_state(None).status == "failed" and "no longer exists" in run_state(None).error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child still answers kill 0; check its state
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
