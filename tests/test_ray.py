"""Protects the Ray backend on a local 2-CPU Ray instance: a sweep on Ray gives the same per-seed results as
local runs and streams its points into the same RunStore; Stop reaches the remote tasks (running and waiting);
a task whose worker is SIGKILLed is retried and still completes, a task lost twice ends `failed` with Ray's
message; the JobQueue hands Playground runs to Ray; the backend switch names its choices."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest
import ray  # the `dev` extra installs it (tests/run.sh): these tests run, never skip

from mmoe_core import cli
from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.runtime.backends import resolve_backend, run_on_ray
from mmoe_core.runtime.execute import execute_run
from mmoe_core.runtime.jobs import JobQueue
from mmoe_core.runtime.ray_backend import TASK_NAME, RayLauncher, _check_reachable

TINY = {"rows": 500, "eval_rows": 100, "batch_size": 64, "log_every": 20, "models": ("shared_bottom", "mmoe")}
LONG = RunConfig(rows=500, eval_rows=100, steps=500_000, log_every=10, models=("mmoe",))


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


def wait_for(predicate, timeout=60.0, every=0.05, poll=()):
    """Poll the RayRuns (as the JobQueue's dispatcher does) until predicate() is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in poll:
            run.poll()
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def training_pids() -> set[int]:
    """Processes of this machine's Ray workers that are training a run right now (their title says so)."""
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read().startswith(f"ray::{TASK_NAME}".encode()):
                    pids.add(int(pid))
        except OSError:
            continue
    return pids


def test_sweep_on_ray_matches_local_per_seed_and_streams_into_the_store(store):
    import torch

    configs = [
        RunConfig(correlation=p, seeds=3, steps=60, seed=4, data_seed=4, independent_data=True, **TINY)
        for p in (0.5, 1.0)
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the Ray task trains with 1 thread (1 CPU per task): same reductions, same bits
    try:
        local = []
        for config in configs:
            run_id = store.create_run(config, status="running")
            execute_run(store, run_id)
            local.append(run_id)
    finally:
        torch.set_num_threads(threads)
    seen = []
    remote = [
        run_id
        for run_id, _ in run_on_ray(
            store, configs, label="study:0123456789ab", on_progress=lambda done, total: seen.append((done, total))
        )
    ]
    assert seen[-1] == (120, 120) and seen[0][0] < 120  # progress moved from below the total to the total
    for a, b in zip(local, remote, strict=True):
        ra, rb = store.run(a), store.run(b)
        assert rb["status"] == "done" and rb["label"] == "study:0123456789ab"
        assert "on ray node" in rb["device"] and rb["pid"] == os.getpid()  # the driver owns the run
        ma, mb = store.metrics(a), store.metrics(b)
        assert len(ma) == len(mb) and set(mb["split"]) == set(ma["split"]) >= {"train", "val", "test"}
        test_a = ma[ma.split == "test"].sort_values(["model", "replica", "task"])["value"].to_numpy()
        test_b = mb[mb.split == "test"].sort_values(["model", "replica", "task"])["value"].to_numpy()
        assert len(test_b) == 2 * 3 * 2  # models x seeds x tasks
        np.testing.assert_allclose(test_b, test_a, rtol=1e-6)
        assert len(store.gates(b)) == len(store.gates(a)) > 0
        assert store.weights_path(b).stat().st_size == store.weights_path(a).stat().st_size
        assert rb["summary"]["models"].keys() == ra["summary"]["models"].keys()


def test_stop_reaches_running_and_waiting_tasks(store):
    launcher = RayLauncher(store)
    ids = [store.create_run(LONG, status="running") for _ in range(3)]  # 2 slots: the third waits for one
    runs = [launcher.start(run_id) for run_id in ids]
    try:
        wait_for(lambda: all(store.run(i)["step"] >= 20 for i in ids[:2]), poll=runs)
        assert len(training_pids()) == 2 and runs[2].pid is None
        store.request_cancel(ids[2])  # first the one waiting for a slot: it leaves Ray's queue at once
        wait_for(lambda: runs[2].returncode is not None, timeout=5, poll=runs[2:])
        assert (store.run(ids[2])["status"], store.run(ids[2])["error"]) == ("cancelled", "stopped before it started")
        for run_id in ids[:2]:
            store.request_cancel(run_id)
        t0 = time.monotonic()
        wait_for(lambda: all(r.returncode is not None for r in runs), timeout=20, poll=runs)
        assert time.monotonic() - t0 < 2 * 3.0  # graceful within the grace, or forced at its end
        for run_id in ids[:2]:
            assert store.run(run_id)["status"] == "cancelled"
            m = store.metrics(run_id)
            assert m[m.split == "val"].step.max() >= 20  # every recorded point is kept
        wait_for(lambda: not training_pids(), timeout=10)  # no worker still trains a stopped run
    finally:
        launcher.close()


def test_killed_worker_is_retried_and_the_run_completes_with_the_same_result(store):
    config = RunConfig(correlation=0.8, seeds=2, steps=200, seed=1, data_seed=1, **TINY)
    launcher = RayLauncher(store)
    run_id = store.create_run(config, status="running")
    run = launcher.start(run_id)
    try:
        wait_for(lambda: store.run(run_id)["step"] >= 40, poll=[run])
        first = run.remote_pid
        assert first in training_pids()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: run.returncode is not None, timeout=90, poll=[run])
    finally:
        launcher.close()
    assert store.run(run_id)["status"] == "done"
    val = store.metrics(run_id).query("split == 'val'")
    assert not val.duplicated(["model", "step", "replica", "task"]).any()  # the retry's repeats were skipped
    assert sorted(val.step.unique()) == list(range(0, 201, 20))
    again = store.create_run(config, status="running")
    execute_run(store, again)  # an uninterrupted local run: the retry trained the same model from scratch
    a = store.metrics(run_id).query("split == 'test'")["value"].to_numpy()
    b = store.metrics(again).query("split == 'test'")["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)  # local ran with this process's threads: reductions may differ


def test_task_lost_twice_is_failed_with_rays_message_and_keeps_points(store):
    launcher = RayLauncher(store)
    run_id = store.create_run(LONG, status="running")
    run = launcher.start(run_id)
    try:
        killed: set[int] = set()
        for _ in range(2):  # the first attempt, then its one retry
            pid = wait_for(lambda: (training_pids() - killed) and store.run(run_id)["step"] >= 10, poll=[run])
            pid = next(iter(training_pids() - killed))
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        wait_for(lambda: run.returncode is not None, timeout=60, poll=[run])
    finally:
        launcher.close()
    row = store.run(run_id)
    assert row["status"] == "failed"
    assert "was lost, and again when retried" in row["error"] and "died" in row["error"].lower()
    assert set(store.models(run_id)["status"]) == {"failed"}
    assert len(store.metrics(run_id)) > 0


def test_job_queue_hands_runs_to_ray_with_positions_and_stop(store):
    queue = JobQueue(store, backend="ray", max_queued=5)
    try:
        assert queue.max_concurrent == 2 and queue._idle is None  # the cluster's slots; no local warm worker
        first, second = queue.submit(LONG), queue.submit(LONG)
        short = queue.submit(RunConfig(steps=40, **{**TINY, "models": ("mmoe",)}))
        wait_for(lambda: queue.state(first).step >= 10 and queue.state(second).step >= 10, timeout=180)
        assert queue.state(short).label == "queued, position 1"
        assert queue.worker_pid(first) in training_pids()
        queue.cancel(first)
        wait_for(lambda: queue.state(first).finished, timeout=10)
        assert queue.state(first).status == "cancelled" and len(store.metrics(first)) > 0
        wait_for(lambda: queue.state(short).status == "done", timeout=60)
        queue.cancel(second)
        wait_for(lambda: queue.state(second).finished, timeout=10)
    finally:
        queue.shutdown()


def test_each_task_asks_for_a_gpu_when_the_cluster_has_them(store, monkeypatch):
    launcher = RayLauncher(store)
    try:
        monkeypatch.delenv("MMOE_MAX_JOBS", raising=False)
        assert (launcher.slots(), launcher.task_options()) == (2, {"num_cpus": 1})  # 2 CPUs, 1 per task
        launcher.gpus = 4  # as on a cluster with 4 GPUs
        assert launcher.task_options("auto") == {"num_gpus": 1, "num_cpus": 1} and launcher.slots() == 4
        assert launcher.task_options("cpu") == {"num_cpus": 1}  # a CPU run does not hold a GPU
        monkeypatch.setenv("MMOE_MAX_JOBS", "7")
        assert launcher.slots() == 7
    finally:
        launcher.close()


def test_cli_sweep_on_ray_writes_the_same_json_contract(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    code = cli.main(
        [
            "sweep",
            "--correlations",
            "0.5,1.0",
            "--models",
            "omoe,mmoe",
            "--seeds",
            "2",
            "--steps",
            "30",
            "--rows",
            "400",
            "--eval-rows",
            "100",
            "--batch-size",
            "64",
            "--seed",
            "5",
            "--json",
            str(out),
            "--home",
            str(tmp_path / "home"),
            "--quiet",
            "--backend",
            "ray",
        ]
    )
    assert code == 0, capsys.readouterr().err
    import json

    data = json.loads(out.read_text())
    keys = {(r["correlation"], r["model"], r["seed"]) for r in data["results"]}
    assert keys == {(p, m, s) for p in (0.5, 1.0) for m in ("omoe", "mmoe") for s in (5, 6)}
    assert ray.is_initialized()  # the CLI joined this process's Ray instead of starting (and stopping) its own


def test_backend_switch_names_choices_and_the_install_fix(monkeypatch):
    monkeypatch.delenv("MMOE_BACKEND", raising=False)
    assert resolve_backend() == "local" and resolve_backend("ray") == "ray"
    monkeypatch.setenv("MMOE_BACKEND", "Ray")
    assert resolve_backend() == "ray"
    with pytest.raises(ValueError, match=r"backend='spark' is unknown; choose one of local, ray"):
        resolve_backend("spark")
    with pytest.raises(ValueError, match=r"could not reach the Ray cluster at '127.0.0.1:1' \(Connection refused\)"):
        _check_reachable("127.0.0.1:1")  # a wrong address fails in seconds, not after Ray's minutes of retries
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(ValueError, match=r"needs the optional package `ray`.*pip install ray==2\.60\.0"):
        resolve_backend("ray")
    assert resolve_backend("local") == "local"  # the default path never needs Ray
