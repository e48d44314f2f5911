"""The Ray backend: each stored run trains as one Ray task (all its seeds batched inside, as locally) and streams
what it would have written to the RunStore back to the driver, which writes it. Imported only when the ray
backend is chosen (`mmoe_core.runtime.backends`); everything that imports `ray` lives here and in `ray_remote.py`,
the code that runs inside the Ray task.

    driver (CLI or app server)                         Ray worker (any node; never opens the SQLite file)
    RayLauncher.start(run_id) ── config JSON ───────►  mmoe_train_run: execute_run(RemoteStore, run_id)
    RayRun.poll(): write each batch to the RunStore ◄── one batch of store calls per recorded point, streamed
    Stop: StopBoard.stop(run_id) ─────────────────►  RemoteStore.cancel_requested() polls it: test metrics
                                                      and weights are still sent, as on a local Stop

Why replay store calls: `execute_run` stays the one piece of code that decides what a run records and how it
ends, on every backend. The stream has a fixed length (hello, one batch per recorded point, a final batch),
so when a worker or node dies Ray re-runs the task once (`max_retries=1`) and skips the items the driver
already has: the retry trains from scratch, deterministically, and the store sees each point once.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from .. import settings
from ..config import RunConfig
from ..runs import FINISHED, RunStore
from .ray_remote import TASK_NAME, StopBoard, mmoe_train_run

CANCEL_CHECK_S = 0.2  # how often the driver looks for Stop in the RunStore
KILL_AFTER_S = 3.0  # after Stop, a task that has not sent its final state by then is cancelled by force
LOST = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OutOfMemoryError,
)  # what Ray retries, then reports


# ---------------------------------------------------------------------------------------------- connecting
def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address` (ships mmoe_core to its workers), or start a Ray instance on this machine.
    Returns True when this call started Ray (so the caller may shut it down)."""
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        _check_reachable(address)
        package = str(Path(__file__).resolve().parent)
        try:
            ray.init(address=address, runtime_env={"py_modules": [package], "excludes": ["__pycache__"]}, **common)
        except (ConnectionError, ray.exceptions.RayError) as exc:
            cause: BaseException = exc
            while cause.__cause__ is not None:  # the root says why
                cause = cause.__cause__
            why = f"{type(cause).__name__}: {_first_line(cause)[:200]}"
            if "AuthToken" in str(cause) or isinstance(cause, ray.exceptions.AuthenticationError):
                why = "the cluster uses token authentication; set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN)"
            raise ValueError(
                f"could not connect to the Ray cluster at {address!r} ({why}); check `ray status` on "
                "its head node, or give no address to start Ray on this machine"
            ) from None
    else:
        cpus = num_cpus or settings.get("MMOE_RAY_CPUS")
        ray.init(num_cpus=cpus, **common)
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A wrong host:port makes ray.init wait for minutes; one TCP connect says so in seconds."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray:// and other forms: Ray checks them itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ValueError(
            f"could not reach the Ray cluster at {address!r} ({exc.strerror or exc}); start it with "
            "`ray start --head --port PORT` or fix --ray-address / MMOE_RAY_ADDRESS, or give no "
            "address to start Ray on this machine"
        ) from None


# ---------------------------------------------------------------------------------------------- driver side
def apply_calls(store: RunStore, run_id: str, calls: list[tuple[str, tuple, dict]], node: str | None) -> None:
    """Write one streamed batch into the driver's RunStore, under the driver's run id. The worker's pid means
    nothing here (the run's pid stays the driver's, so a restarted app sees who owns it); the node is added to
    the device so the Runs page says where a run trained."""
    where = f" on ray node {node}" if node else " on ray"
    for name, args, kwargs in calls:
        if name == "update_run":
            fields = {k: v for k, v in kwargs.items() if k != "pid"}
            if "device" in fields:
                fields["device"] = f"{fields['device']}{where}"
            if isinstance(fields.get("summary"), dict) and "device" in fields["summary"]:
                fields["summary"] = {**fields["summary"], "device": fields["summary"]["device"] + where}
            if fields:
                store.update_run(run_id, **fields)
        elif name == "weights":
            if args[0] is not None:
                path = store.weights_path(run_id)
                tmp = path.with_suffix(".part")
                tmp.write_bytes(args[0])
                tmp.replace(path)  # a reader never sees half a file
        elif name in ("set_model", "add_points", "finish_run"):
            getattr(store, name)(run_id, *args, **kwargs)
        else:
            raise ValueError(
                f"a Ray task sent an unknown store call {name!r}; driver and workers must run the "
                "same mmoe_core version"
            )


class RayRun:
    """One run on Ray, shaped like the `subprocess.Popen` the JobQueue keeps for a local worker: `poll()`
    (here it also writes what has arrived), `kill()`, `terminate()`, `pid` (the Ray worker's, on its node)."""

    def __init__(self, launcher: RayLauncher, run_id: str, stream: Any):
        self.run_id, self._launcher, self._stream = run_id, launcher, stream
        self.store = launcher.store
        self.remote_pid: int | None = None  # the Ray worker's pid (on its node), from the hello item
        self.node: str | None = None
        self.returncode: int | None = None
        self._stop_at: float | None = None
        self._next_check = 0.0

    @property
    def pid(self) -> int | None:
        """The process training this run (None until it starts); the store keeps the driver's pid instead."""
        return self.remote_pid

    def poll(self) -> int | None:
        """Write every item that has arrived; look for Stop. None while the task runs, 0 once it has ended."""
        if self.returncode is None:
            self._drain()
        if self.returncode is None:
            self._check_stop()
        return self.returncode

    def kill(self) -> None:
        """Stop by force (after the grace): cancel the task, keep its points, end the run `cancelled`."""
        self._end_by_force("cancelled", "stopped by the user; recorded curves are kept")

    def terminate(self) -> None:
        """The server is going away: the task is cancelled and the run ends `interrupted`, as a local one does."""
        self._end_by_force(
            "interrupted",
            "the server stopped while this run was training; its recorded curves "
            "are kept. Re-run it from the Runs page",
        )

    # ---------------------------------------------------------------- internals
    def _drain(self, max_items: int = 64) -> None:
        """Write what has arrived; at most max_items per call, so one chatty run cannot hold up the others."""
        for _ in range(max_items):
            if self.returncode is not None:
                return
            ready, _ = ray.wait([self._stream], num_returns=1, timeout=0)
            if not ready:
                return
            try:
                ref = next(self._stream)
            except StopIteration:
                self._ended()
                return
            try:
                item = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                self._finish("cancelled", "stopped by the user; recorded curves are kept", code=-9)
                return
            except ray.exceptions.RayError as exc:
                self._lost(exc)
                return
            if "hello" in item:
                self.remote_pid, self.node = item["hello"]["pid"], item["hello"]["node"]
                continue
            apply_calls(self.store, self.run_id, item["calls"], self.node)
            if item.get("final"):
                self._ended()

    def _check_stop(self) -> None:
        now = time.monotonic()
        if self._stop_at is None and now >= self._next_check:
            self._next_check = now + CANCEL_CHECK_S
            if self.store.cancel_requested(self.run_id):
                self._stop_at = now
                if self.remote_pid is None:  # still waiting for a slot: nothing to finish gracefully
                    self._end_by_force("cancelled", "stopped before it started")
                    return
                self._launcher.board.stop.remote(self.run_id)
        if self._stop_at is not None and now - self._stop_at > KILL_AFTER_S:
            self.kill()

    def _end_by_force(self, status: str, message: str) -> None:
        if self.returncode is not None:
            return
        self._drain(max_items=10_000)  # the final batch may already be here
        if self.returncode is None:
            ray.cancel(self._stream, force=True)
            self._finish(status, message, code=-9)

    def _lost(self, exc: Exception) -> None:
        """The task raised outside execute_run, or was lost with its worker or node after its one retry."""
        cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
        if cause is not None:
            message = f"the Ray task failed: {type(cause).__name__}: {_last_line(cause)}"
        elif isinstance(exc, LOST):
            message = (
                f"the Ray task was lost, and again when retried: {type(exc).__name__}: "
                f"{_first_line(exc)}; recorded curves are kept"
            )
        else:  # e.g. RuntimeEnvSetupError: the cluster could not install mmoe_core's code for the task
            message = f"Ray could not run this task: {type(exc).__name__}: {_first_line(exc)}"
        self._finish("failed", message, code=1)

    def _ended(self) -> None:
        """The stream ended: the final batch carried the run's final state (written only if still running)."""
        self._finish("failed", "the Ray task ended without a final state", code=0)

    def _finish(self, status: str, message: str, code: int) -> None:
        if self.store.finish_run(self.run_id, status, error=message, only_if=("running", "queued")):
            models = self.store.models(self.run_id)
            for name in models.loc[models["status"] == "running", "model"]:
                self.store.set_model(self.run_id, name, status, message)
        self.returncode = code


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class RayLauncher:
    """Driver side: connects once, sends stored runs to Ray as tasks, and hands back a `RayRun` per run.
    Resources per task: one GPU when the cluster has any (the CUDA device a run's `device=auto` picks),
    otherwise `MMOE_RAY_CPUS_PER_TASK` CPUs (default 1: one thread per task and one task per core trains as fast
    as fewer tasks with more threads on an idle machine, and keeps its pace on a busy one; docs/SCALING.md)."""

    def __init__(
        self, store: RunStore, address: str | None = None, num_cpus: int | None = None, cpus_per_task: int | None = None
    ):
        self.store = store
        self._owns_ray = connect(address, num_cpus)
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus = int(resources.get("CPU", 1))
        self.cpus_per_task = max(1, cpus_per_task or settings.get("MMOE_RAY_CPUS_PER_TASK"))
        self.board = StopBoard.remote()

    def task_options(self, device: str = "auto") -> dict[str, Any]:
        """A GPU for `auto`/`cuda` runs when the cluster has one; CPUs otherwise (a `cuda` run on a GPU-less
        cluster then fails with the trainer's clear message instead of waiting forever for a GPU)."""
        if self.gpus and device != "cpu":
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_cpus": self.cpus_per_task}

    def slots(self) -> int:
        """How many runs to keep on the cluster at once (the JobQueue keeps the rest queued, with positions):
        $MMOE_MAX_JOBS, else one per GPU, else one per `cpus_per_task` CPUs."""
        if settings.get("MMOE_MAX_JOBS"):
            return max(1, settings.get("MMOE_MAX_JOBS"))
        return max(1, self.gpus if self.gpus else self.cpus // self.cpus_per_task)

    def start(self, run_id: str) -> RayRun:
        """Send a stored run (already `running`, e.g. claimed by a JobQueue) to Ray."""
        row = self.store.run(run_id)
        if row is None:
            raise ValueError(f"run {run_id} does not exist in {self.store.path}")
        self.store.update_run(run_id, pid=os.getpid())
        options = self.task_options(RunConfig.from_json(row["config"]).device)
        threads = 1 if "num_gpus" in options else self.cpus_per_task
        stream = mmoe_train_run.options(name=TASK_NAME, **options).remote(
            run_id, row["config"], self.board, threads, str(self.store.home)
        )
        return RayRun(self, run_id, stream)

    def run_all(
        self,
        configs: list[RunConfig],
        label: str = "",
        on_progress: Callable[[int, int], None] = lambda done, total: None,
        on_start: Callable[[list[RayRun]], None] = lambda runs: None,
    ) -> list[tuple[str, dict]]:
        """Store and start every config at once; write their streams until all have ended. Ctrl-C stops them
        all (each keeps its points). Raises ValueError naming each failed run."""
        ids = [self.store.create_run(c, label=label, status="running") for c in configs]
        runs = [self.start(run_id) for run_id in ids]
        on_start(runs)
        total = sum(c.steps for c in configs)
        try:
            self._wait(runs, on_progress, total)
        except KeyboardInterrupt:
            for run in runs:
                self.store.request_cancel(run.run_id)
            self._wait(runs, on_progress, total)
        out, failed = [], []
        for run_id in ids:
            row = self.store.run(run_id) or {}
            if row.get("status") not in ("done", "cancelled"):
                failed.append(f"run {run_id} {row.get('status', 'missing')}: {row.get('error')}")
            out.append((run_id, row.get("summary") or {}))
        if failed:
            raise ValueError("; ".join(failed))
        return out

    def _wait(self, runs: list[RayRun], on_progress: Callable[[int, int], None], total: int) -> None:
        next_progress = 0.0
        while True:
            live = [r for r in runs if r.poll() is None]
            now = time.monotonic()
            if now >= next_progress or not live:
                next_progress = now + 0.5
                on_progress(self._steps_done(runs), total)
            if not live:
                return
            ray.wait([r._stream for r in live], num_returns=1, timeout=0.1)

    def _steps_done(self, runs: list[RayRun]) -> int:
        done = 0
        for run in runs:
            row = self.store.run(run.run_id) or {}
            done += int(row.get("total_steps") or 0) if row.get("status") in FINISHED else int(row.get("step") or 0)
        return done

    def close(self) -> None:
        """Forget the stop board; shut Ray down only if this launcher started it."""
        try:
            ray.kill(self.board)
        except Exception:  # noqa: BLE001 - the cluster may already be gone
            pass
        if self._owns_ray:
            ray.shutdown()
