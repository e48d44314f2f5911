"""What runs inside a Ray task, on any node: the stop board the driver writes to, the RunStore stand-in that
records `execute_run`'s calls instead of writing them, and the generator task that streams them back. The
driver side (launching, replaying the calls into the real RunStore, stop and failure handling) is
`ray_backend.py`; the diagram there shows both.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from ..config import RunConfig

REMOTE_STOP_POLL_S = 0.5  # how often a remote task asks the stop board (one tiny actor call)
MAX_RETRIES = 1  # a task lost with its worker or node is re-run once
TASK_NAME = "mmoe_train_run"  # the worker's process title while training: ray::mmoe_train_run


@ray.remote(num_cpus=0)
class StopBoard:
    """Which runs the driver has asked to stop: the one message that travels driver -> task mid-run."""

    def __init__(self) -> None:
        self._stopped: set[str] = set()

    def stop(self, run_id: str) -> None:
        self._stopped.add(run_id)

    def stopped(self, run_id: str) -> bool:
        return run_id in self._stopped


class RemoteStore:
    """The RunStore methods `execute_run` calls, recorded instead of written. A batch of calls leaves the
    worker with each recorded point (`add_points`) and once at the end, so the stream's length depends only
    on the config. Weights go to a temporary file here and travel as bytes in the final batch. `home` is the
    driver's run-store folder: uploads resolve there (the same path on every node, docs/SCALING.md)."""

    def __init__(self, run_id: str, config: RunConfig, board: Any, sink: Callable[[dict], None], home: str):
        self._run_id, self._config, self._board, self._sink = run_id, config, board, sink
        self.home = Path(home)
        self._calls: list[tuple[str, tuple, dict]] = []
        self._dir = Path(tempfile.mkdtemp(prefix="mmoe_ray_"))
        self._next_poll = 0.0
        self.stop = threading.Event()  # set locally when the task itself is being torn down

    # reads
    def config(self, run_id: str) -> RunConfig:
        return self._config

    def cancel_requested(self, run_id: str) -> bool:
        if self.stop.is_set():
            return True
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + REMOTE_STOP_POLL_S
            if ray.get(self._board.stopped.remote(run_id)):
                self.stop.set()
        return self.stop.is_set()

    def weights_path(self, run_id: str) -> Path:
        path = self._dir / "weights.safetensors"
        self._calls.append(("weights", (str(path),), {}))
        return path

    # writes: recorded in order, without the run id (the driver writes under its own)
    def update_run(self, run_id: str, **fields: Any) -> None:
        self._calls.append(("update_run", (), fields))

    def set_model(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("set_model", args, kwargs))

    def finish_run(self, run_id: str, *args: Any, **kwargs: Any) -> bool:
        self._calls.append(("finish_run", args, kwargs))
        return True

    def add_points(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("add_points", args, kwargs))
        self._sink({"calls": self._take()})

    def final_batch(self) -> dict:
        calls = self._take()
        for i, (name, args, _) in enumerate(calls):
            if name == "weights":
                path = Path(args[0])
                calls[i] = ("weights", (path.read_bytes() if path.exists() else None,), {})
        shutil.rmtree(self._dir, ignore_errors=True)
        return {"calls": calls, "final": True}

    def _take(self) -> list[tuple[str, tuple, dict]]:
        calls, self._calls = self._calls, []
        return calls


@ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)
def mmoe_train_run(run_id: str, config_json: str, board: Any, threads: int, home: str):
    """A Ray generator task: hello (pid and node), one batch per recorded point, a final batch.
    `execute_run` trains in a thread so its store calls can be yielded as they happen."""
    import torch

    from .execute import execute_run

    torch.set_num_threads(max(1, threads))
    yield {"hello": {"pid": os.getpid(), "node": ray.util.get_node_ip_address()}}
    out: queue.Queue = queue.Queue()
    store = RemoteStore(run_id, RunConfig.from_json(config_json), board, out.put, home)

    def train() -> None:
        try:
            execute_run(store, run_id)  # never raises for a training error: it records `failed` itself
        except BaseException as exc:  # noqa: BLE001 - a bug here must still end the run with its message
            store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}", only_if=("running",))
        finally:
            out.put(store.final_batch())
            out.put(None)

    thread = threading.Thread(target=train, name="mmoe-train", daemon=True)
    thread.start()
    try:
        while (item := _get(out)) is not None:
            yield item
    finally:  # cancelled or torn down: the training thread stops at its next cancel check
        store.stop.set()
        thread.join(timeout=30)


def _get(out: queue.Queue) -> dict | None:
    while True:  # a timeout keeps the main thread responsive to Ray's cancel (KeyboardInterrupt)
        try:
            return out.get(timeout=0.5)
        except queue.Empty:
            continue
