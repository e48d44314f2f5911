"""Small helpers shared by the test modules (polling instead of fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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
