"""execute_run: one stored run from config to final status. The CLI calls it in-process; the job queue's
worker processes call it in a child. It is the one writer of a run's final state on every normal path.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable

import torch
from safetensors.torch import save_file

from .. import store_faults
from ..data import load_data
from ..runs import RunStore
from ..summary import summarize
from ..training import LogRecord, Trainer, resolve_device
from .pacing import Pacer

CANCEL_POLL_S = 0.2  # how often a running job looks for Stop (the issue asks for < 2 s end to end)
PROGRESS_EVERY_S = 0.5  # how often the step counter is written for the progress bar


class DiskFull(Exception):
    """Not even the failure could be written: a worker exits with store_faults.DISK_FULL_EXIT, and its
    dispatcher records "disk full" once it can."""


class RunInterrupted(Exception):
    """The server that owned this worker is gone: end as `interrupted`, keeping what was recorded."""


def execute_run(
    store: RunStore,
    run_id: str,
    on_step: Callable[[int], None] = lambda step: None,
    orphaned: Callable[[], bool] = lambda: False,
    interrupted: Callable[[], bool] = lambda: False,
) -> dict:
    """Train a stored run; returns its summary. Never raises for a training error: the run is marked failed
    with the message and keeps every point it had recorded. `interrupted` (the CLI's Ctrl-C) stops it like
    Stop does: test metrics of the weights so far, status cancelled."""
    config = store.config(run_id)
    start = time.time()
    store.update_run(run_id, status="running", started=start, pid=os.getpid(), step=0)
    trainer: Trainer | None = None
    try:
        device = resolve_device(config.device)
        store.update_run(run_id, device=_device_name(device))
        data = load_data(config, home=store.home)
        label_corr = float(sum(data.label_correlation) / len(data.label_correlation))
        tasks = {"task_names": list(data.task_names), "task_kinds": list(data.task_kinds), "train_rows": data.n_train}
        store.update_run(run_id, label_correlation=label_corr, summary=tasks)  # pages name the curves from step 0
        trainer = Trainer(config, data, device=device)
        for res in trainer.results.values():
            store.set_model(run_id, res.name, "running", params=res.params, paper_params=res.paper_params)
        t_train = time.perf_counter()
        last_poll = [0.0]

        def cancelled() -> bool:
            if orphaned():
                raise RunInterrupted("the server stopped while this run was training; its recorded curves are kept")
            return interrupted() or store.cancel_requested(run_id)

        pacer = Pacer(store, run_id, config.log_every, cancelled)

        def should_stop() -> bool:
            now = time.perf_counter()
            poll = now - last_poll[0] >= CANCEL_POLL_S
            if poll:
                last_poll[0] = now
                if cancelled():
                    return True
            return pacer.hold(trainer.step_count, poll)  # Pause / Step hold here, the weights in memory

        def on_record(rec: LogRecord) -> None:
            elapsed = max(time.perf_counter() - t_train - pacer.paused_s, 1e-9)
            rows_per_s = rec.step * config.batch_size / elapsed if rec.step else None
            extra = {"alignment": rec.alignment} if rec.alignment else {}  # synthetic data's expert map
            store.add_points(run_id, rec.metrics, rec.gates, step=rec.step, rows_per_s=rows_per_s, **extra)
            for res in rec.status_changes:
                store.set_model(run_id, res.name, res.status, res.message, seconds=res.seconds)

        last_progress = [time.perf_counter()]

        def step_hook(step: int) -> None:
            on_step(step)
            now = time.perf_counter()
            if now - last_progress[0] >= PROGRESS_EVERY_S:  # the progress bar moves between recorded points
                last_progress[0] = now
                speed = step * config.batch_size / max(now - t_train - pacer.paused_s, 1e-9)
                store.update_run(run_id, step=step, rows_per_s=speed)

        results = trainer.run(on_record=on_record, should_stop=should_stop, on_step=step_hook)
        summary = {
            "label_correlation": label_corr,
            "device": _device_name(device),
            "seconds": round(time.time() - start, 3),
            "steps": trainer.step_count,
            **tasks,
            "models": summarize(results.values()),
        }
        _save_weights(store, run_id, trainer)
        cancelled = any(r.status == "cancelled" for r in results.values())
        store.update_run(run_id, summary=summary)
        store.finish_run(run_id, "cancelled" if cancelled else "done", only_if=("running",))
        return summary
    except RunInterrupted as exc:
        store.finish_run(run_id, "interrupted", error=str(exc), only_if=("running",))
        return {"error": str(exc)}
    except Exception as exc:  # a failed run keeps its points; the message names the cause
        disk_full = store_faults.is_disk_full(exc)
        message = store_faults.DISK_FULL if disk_full else f"{type(exc).__name__}: {exc}"
        try:
            if not disk_full:
                store.update_run(run_id, error=message + "\n" + traceback.format_exc(limit=3))
            store.finish_run(run_id, "failed", error=message, only_if=("running",))
            if trainer is not None:
                for res in trainer.results.values():
                    if res.status == "running":
                        store.set_model(run_id, res.name, "failed", message)
        except Exception as again:  # the store cannot take even the failure: the caller must say it
            if store_faults.is_disk_full(again):
                raise DiskFull(message) from exc
            raise
        return {"error": message}


def _save_weights(store: RunStore, run_id: str, trainer: Trainer) -> None:
    tensors = trainer.state_tensors()
    save_file(tensors, str(store.weights_path(run_id)), metadata={"config": trainer.config.to_json()})


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
