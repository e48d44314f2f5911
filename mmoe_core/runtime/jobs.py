"""JobQueue: background training in spawned worker processes, a bounded number at once, the rest in order.

Why processes: training never competes with the web server for the GIL, a stuck or crashed job can be
killed without taking the app down, and CUDA is safe under `spawn`. Each job gets a fresh process that
exits when the job ends, so memory returns to the system; one *warm* process (torch already imported)
waits ahead of time so the first point appears about a second after Start.

The RunStore is the queue: a run is `queued` until a dispatcher thread claims it. Final states have one
writer each: the worker on every normal path (done, cancelled, failed, interrupted); the dispatcher only
when the worker died (failed) or ignored Stop (cancelled), through a conditional update.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from .. import settings, store_faults
from ..config import RunConfig
from ..runs import FINISHED, RunStore
from .backends import launcher, resolve_backend

RESPAWN_DELAY_S = 3.0  # the next warm worker's torch import waits until a started job has drawn its first point
STOP_GRACE_S = 1.5  # after Stop, a worker that has not ended by then is killed


class QueueFull(ValueError):
    pass


@dataclass(frozen=True)
class RunState:
    """What a page shows about a run: a pure function of its stored row and queue position."""

    status: str
    step: int
    total_steps: int
    fraction: float
    rows_per_s: float | None
    eta_s: float | None
    queue_position: int | None
    error: str | None
    finished: bool
    paused: bool = False  # running, held by Pause (mmoe_core/runtime/pacing.py)

    @property
    def label(self) -> str:
        if self.status == "queued":
            return f"queued, position {self.queue_position}" if self.queue_position else "queued"
        if self.paused:
            return f"paused at step {self.step:,} of {self.total_steps:,}"
        if self.status == "running":
            return f"running, step {self.step:,} of {self.total_steps:,}"
        return self.status


def run_state(row: dict[str, Any] | None, queue_position: int | None = None) -> RunState:
    """Pure: stored run row -> RunState. A missing row reads as failed with a clear message."""
    if row is None:
        return RunState("failed", 0, 0, 0.0, None, None, None, "this run no longer exists", True)
    total = int(row.get("total_steps") or 0)
    step = int(row.get("step") or 0)
    status = row["status"]
    fraction = 1.0 if status == "done" else (min(step / total, 1.0) if total else 0.0)
    rate = row.get("rows_per_s")
    eta = None
    paused = status == "running" and row.get("paused_since") is not None
    if status == "running" and step and row.get("started") and not paused:
        elapsed = time.time() - row["started"]
        eta = max(elapsed / step * (total - step), 0.0) if step < total else 0.0
    finished = status in FINISHED
    return RunState(status, step, total, fraction, rate, eta, queue_position, row.get("error"), finished, paused)


def _default_max_concurrent() -> int:
    if settings.get("MMOE_MAX_JOBS"):
        return max(1, settings.get("MMOE_MAX_JOBS"))
    return 1  # a CPU server trains fastest one job at a time; raise it with MMOE_MAX_JOBS for GPUs


class JobQueue:
    def __init__(
        self,
        store: RunStore,
        max_concurrent: int | None = None,
        max_queued: int | None = None,
        warm: bool = True,
        poll_s: float = 0.05,
        threads: int | None = None,
        backend: str | None = None,
        ray_address: str | None = None,
    ):
        self.store = store
        self.backend = resolve_backend(backend)  # "local" unless the argument or $MMOE_BACKEND says "ray"
        self._ray = launcher(store, ray_address) if self.backend == "ray" else None  # runs become Ray tasks
        warm = warm and self._ray is None  # Ray keeps its own workers; no local process waits
        self.threads = threads  # torch threads per worker; None: the CPUs shared among max_concurrent jobs
        self.max_concurrent = max_concurrent or (self._ray.slots() if self._ray else _default_max_concurrent())
        self.max_queued = settings.get("MMOE_MAX_QUEUED") if max_queued is None else max_queued
        self.max_per_owner = max(1, settings.get("MMOE_MAX_QUEUED_PER_SESSION"))
        self.max_per_address = max(0, settings.get("MMOE_MAX_QUEUED_PER_ADDRESS"))
        self.warm = warm
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._active: dict[str, subprocess.Popen] = {}
        self._kill_at: dict[str, float] = {}
        self._idle: subprocess.Popen | None = None
        self._respawn_at = 0.0
        self._stopped = threading.Event()
        self.recover()
        if warm:
            self._idle = self._spawn()
        self._thread = threading.Thread(target=self._loop, name="mmoe-dispatcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public
    def submit(
        self,
        config: RunConfig,
        owner: str = "",
        label: str = "",
        key_hash: str = "",
        browser: str = "",
        address: str = "",
    ) -> str:
        """Queue a run; `key_hash` is the hash of its owner secret (ui.access) when a browser starts it. The
        queue holds at most max_queued runs; one browser (`browser`: all its tabs; else the session `owner`)
        at most max_per_owner submissions queued or running, and one network `address` at most
        max_per_address, so neither many tabs nor many scripted sessions can shut everyone else out. A study's
        runs share a label and count as one submission; the CLI and tests (no owner) are not counted."""
        if len(self.store.queued()) >= self.max_queued:
            raise QueueFull(
                f"the queue is full ({self.max_queued} runs waiting); wait for a run to finish or stop one of yours"
            )
        if owner:
            self._check_quota("browser" if browser else "owner", browser or owner, label, self.max_per_owner)
            if address and self.max_per_address > 0:
                self._check_quota("address", address, label, self.max_per_address)
        run_id = self.store.create_run(
            config, owner=owner, label=label, key_hash=key_hash, browser=browser, address=address
        )  # the dispatcher polls every poll_s
        return run_id

    def _check_quota(self, who: str, value: str, label: str, limit: int) -> None:
        groups = {lab or run_id for run_id, lab in self.store.active_of(who, value)}
        if len(groups) < limit or (label and label in groups):
            return
        if who == "address":
            raise QueueFull(
                f"your network address already has {len(groups)} runs queued or running, this server's limit per "
                f"address (MMOE_MAX_QUEUED_PER_ADDRESS = {limit}); wait for one to finish or stop one of yours"
            )
        raise QueueFull(
            f"you already have {len(groups)} runs queued or running, this server's limit per browser, all its "
            f"tabs together (MMOE_MAX_QUEUED_PER_SESSION = {limit}); wait for one to finish or stop one of yours"
        )

    def cancel(self, run_id: str) -> None:
        """Queued: cancelled at once. Running: the worker sees the flag within ~0.2 s; killed after a grace."""
        if self.store.finish_run(run_id, "cancelled", error="stopped before it started", only_if=("queued",)):
            return
        self.store.request_cancel(run_id)
        with self._lock:
            if run_id in self._active:
                self._kill_at.setdefault(run_id, time.monotonic() + STOP_GRACE_S)

    def drop_owner(self, owner: str) -> int:
        """A session went away: its waiting runs will never be watched, so they leave the queue."""
        dropped = 0
        for run_id in self.store.queued():
            row = self.store.run(run_id)
            if row and row.get("owner") == owner:
                dropped += self.store.finish_run(
                    run_id, "cancelled", error="its browser session ended", only_if=("queued",)
                )
        return dropped

    def state(self, run_id: str) -> RunState:
        row = self.store.run(run_id)
        pos = self.store.queue_position(run_id) if row and row["status"] == "queued" else None
        return run_state(row, pos)

    def active(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def worker_pid(self, run_id: str) -> int | None:
        with self._lock:
            proc = self._active.get(run_id)
        return proc.pid if proc else None

    def warm_pid(self) -> int | None:
        """The idle worker that has torch imported and waits for the next job, if there is one."""
        with self._lock:
            return self._idle.pid if self._idle is not None and self._idle.poll() is None else None

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop dispatching; running workers see their parent is gone and mark their runs interrupted."""
        self._stopped.set()
        self._thread.join(timeout)
        with self._lock:
            if self._idle:
                self._idle.kill()
                self._idle = None
            for proc in self._active.values():
                proc.terminate()
        if self._ray is not None:
            self._ray.close()

    # ------------------------------------------------------------------ recovery
    def recover(self) -> int:
        """Runs a dead server left behind become `interrupted`; their recorded points stay."""
        n = 0
        for row in self.store.with_status("running", "queued"):
            if row["status"] == "running" and row["pid"] and _alive(row["pid"]):
                continue  # a CLI run or another server's worker is still at it
            message = (
                (
                    "the server stopped while this run was training; its recorded curves are kept. "
                    "Re-run it from the Runs page"
                )
                if row["status"] == "running"
                else ("the server restarted before this run started; re-run it from the Runs page")
            )
            n += self.store.finish_run(row["id"], "interrupted", error=message, only_if=(row["status"],))
        return n

    # ------------------------------------------------------------------ dispatcher
    def _spawn(self) -> subprocess.Popen:
        """A fresh interpreter (like multiprocessing's spawn, without re-importing the server's __main__)."""
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.max_concurrent)
        cmd = [
            sys.executable,
            "-m",
            "mmoe_core.runtime.worker",
            "--home",
            str(self.store.home),
            "--threads",
            str(threads),
        ]
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, text=True, cwd=_package_root())

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self._tick()
            except Exception as exc:  # the dispatcher must outlive any one bad run
                print(f"mmoe dispatcher: {type(exc).__name__}: {exc}", flush=True)
            self._stopped.wait(self.poll_s)

    def _tick(self) -> None:
        with self._lock:
            self._reap()
            self._enforce_stops()
            while len(self._active) < self.max_concurrent:
                ids = self.store.queued()
                if not ids or not self._start(ids[0]):
                    break
            if self._idle is not None and self._idle.poll() is not None:
                self._idle = None  # a warm worker that died waiting is replaced
            if self.warm and self._idle is None and time.monotonic() >= self._respawn_at and self._needs_warm():
                self._idle = self._spawn()

    def _needs_warm(self) -> bool:
        """A warm worker is worth its torch import (2-3 CPU-seconds) only when a job could start on it: a slot
        is free, or a job waits for one. Importing beside a lone run on 2 cores cost that run a third of its
        speed (bench/bench_live.py: live 57-62% of the CLI's rows/s, 95% without the import)."""
        return len(self._active) < self.max_concurrent or bool(self.store.queued())

    def _start(self, run_id: str) -> bool:
        if not self.store.claim(run_id):
            return False
        if self._ray is not None:  # a RayRun is polled, killed and reaped like a worker's Popen
            try:
                self._active[run_id] = self._ray.start(run_id)
            except Exception as exc:  # noqa: BLE001 - e.g. the cluster went away: say so on the run
                self.store.finish_run(
                    run_id, "failed", error=f"could not start on Ray: {type(exc).__name__}: {exc}", only_if=("running",)
                )
            return True
        proc = self._idle if self._idle and self._idle.poll() is None else self._spawn()
        self._idle = None
        self._respawn_at = time.monotonic() + RESPAWN_DELAY_S  # let the job's first point win the CPU
        self.store.update_run(run_id, pid=proc.pid)
        try:
            proc.stdin.write(run_id + "\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the reaper reports the dead worker as a failed run
        self._active[run_id] = proc
        return True

    def _reap(self) -> None:
        for run_id, proc in list(self._active.items()):
            code = proc.poll()
            if code is None:
                continue
            killed_for_stop = run_id in self._kill_at
            if killed_for_stop:
                self.store.finish_run(run_id, "cancelled", error="stopped by the user", only_if=("running", "queued"))
            elif code == store_faults.DISK_FULL_EXIT:
                self.store.finish_run(run_id, "failed", error=store_faults.DISK_FULL, only_if=("running", "queued"))
            else:
                how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
                self.store.finish_run(
                    run_id,
                    "failed",
                    only_if=("running", "queued"),
                    error=f"the worker process ended unexpectedly ({how}); recorded curves are kept. "
                    "If it ran out of memory, lower rows, seeds or batch size",
                )
            # only now: a store that could not take the final state (a full disk) is asked again next tick
            del self._active[run_id]
            self._kill_at.pop(run_id, None)

    def _enforce_stops(self) -> None:
        now = time.monotonic()
        for run_id, proc in self._active.items():
            if run_id not in self._kill_at and self.store.cancel_requested(run_id):
                self._kill_at[run_id] = now + STOP_GRACE_S  # Stop pressed in another server or the CLI
            if self._kill_at.get(run_id, float("inf")) <= now and proc.poll() is None:
                proc.kill()


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
