"""Pause, Resume and Step for a run in training (issue #17 item 3), as a lecturer uses them to stop and explain.

The page writes a request into the run store's `pace` column: "pause", "step" or "" (run). The worker reads it
between optimizer steps. A paused worker keeps the models and the optimizer in memory and sleeps (no progress,
no CPU); Step trains to the next recorded point and pauses again; Resume goes on. Pausing only delays steps, so a
paused-then-resumed run ends with exactly the weights of an uninterrupted one (tests/test_pacing.py). A run paused
longer than MMOE_MAX_PAUSE_S is stopped like Stop does, so it cannot hold a worker slot for good."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import settings

PAUSE = "pause"
STEP = "step"
UNTIL = "until:"  # written by the worker while a Step trains: the step it will pause at
POLL_S = 0.2  # how often a paused worker looks for Resume, Step or Stop


class Pacer:
    """The worker's side: call `hold(step)` before every optimizer step; True means stop the run."""

    def __init__(
        self,
        store: Any,
        run_id: str,
        log_every: int,
        cancelled: Callable[[], bool],
        limit_s: float | None = None,
    ):
        self.store, self.run_id, self.log_every, self.cancelled = store, run_id, log_every, cancelled
        self.limit_s = float(settings.get("MMOE_MAX_PAUSE_S")) if limit_s is None else limit_s
        self.target: int | None = None  # a Step in progress pauses at this step
        self.paused_s = 0.0  # time spent paused, so rows/s counts training time only

    def _read(self) -> str:
        read = getattr(self.store, "pace", None)  # the Ray backend's remote store has no pacing
        return (read(self.run_id) or "") if read is not None else ""

    def hold(self, step: int, poll: bool) -> bool:
        """Before optimizer step `step` + 1. `poll`: whether to read the store now (the caller throttles reads;
        a Step's end is checked every call, so it pauses exactly at its recorded point)."""
        if self.target is not None and step >= self.target:
            self.target = None
            pace = self._read()
            if pace == STEP:  # Step pressed again while stepping: one more interval
                return self._step(step)
            if pace.startswith(UNTIL):
                self.store.set_pace(self.run_id, PAUSE, only_if=UNTIL)  # unless Resume or Pause came meanwhile
            return self._paused(step)
        if poll:
            pace = self._read()
            if pace == PAUSE:
                return self._paused(step)
            if pace == STEP:  # Step on a running run: train to the next point, then pause
                return self._step(step)
        return False

    def _step(self, step: int) -> bool:
        self.target = (step // self.log_every + 1) * self.log_every
        self.store.set_pace(self.run_id, f"{UNTIL}{self.target}", only_if=STEP)
        return False

    def _paused(self, step: int) -> bool:
        if self._read() != PAUSE:
            return False
        since = time.time()
        self.store.mark_paused(self.run_id, since, step)
        try:
            while True:
                if self.cancelled():
                    return True
                if time.time() - since > self.limit_s:
                    self.store.update_run(
                        self.run_id,
                        error=f"stopped after {self.limit_s / 60:g} min paused (MMOE_MAX_PAUSE_S), so it would not hold "
                        "a training slot; its curves are kept",
                    )
                    return True
                pace = self._read()
                if pace == STEP:
                    return self._step(step)
                if pace != PAUSE:
                    return False
                time.sleep(POLL_S)
        finally:
            self.paused_s += time.time() - since
            self.store.mark_paused(self.run_id, None, step)
