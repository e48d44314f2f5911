"""Small helpers shared by the test modules (polling instead of fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore

RECORDED = {"rows": 400, "eval_rows": 100, "steps": 40, "log_every": 20, "batch_size": 64}


def wait_for(
    predicate: Callable[[], Any], timeout: float = 60.0, what: str = "the condition", every: float = 0.05
) -> Any:
    """Poll until predicate() is truthy and return its value; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def rerun_until(at: Any, done: Callable[[Any], Any], timeout: float = 120.0, every: float = 0.3) -> None:
    """Rerun an AppTest page (as its live fragment would) until `done(at)`; no run may show an exception."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "timed out waiting for the page"
        time.sleep(every)
        at.run()
        assert not at.exception, [e.message for e in at.exception]


def recorded_run(home: Path, loss: float, **over: Any) -> str:
    """A finished run written straight into the store (points, gates, summary): no training, so page tests
    stay fast."""
    store = RunStore(home)
    config = RunConfig(**{**RECORDED, "models": ("shared_bottom", "mmoe"), **over})
    run_id = store.create_run(config, status="running")
    for step in (0, 20, 40):
        metrics = [
            (m, step, 0, t, split, "loss", loss + 1 / (step + 1) + 0.01 * i)
            for i, m in enumerate(config.models)
            for t in (0, 1)
            for split in ("train", "val")
        ]
        gates = [("mmoe", step, t, e, 0.4 if e == t else 0.2) for t in (0, 1) for e in range(4)]  # rows sum to 1
        store.add_points(run_id, metrics, gates, step=step)
    models = {
        m: {"test_loss": [loss + 0.01 * i] * 2, "test_loss_mean": loss + 0.01 * i, "status": "done"}
        for i, m in enumerate(config.models)
    }
    store.update_run(run_id, summary={"task_names": ["task 1", "task 2"], "models": models})
    store.finish_run(run_id, "done")
    return run_id
