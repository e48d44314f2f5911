"""Every `MMOE_*` environment setting in one table: its default, type and meaning. Values are read when asked
for (not at import), so a test or a server can change one with the environment alone, and a bad value raises a
message that names the variable and what it accepts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str


def _number(text: str) -> float:
    return float(text)


def _count(text: str) -> int:
    return int(float(text))


def _text(text: str) -> str:
    return text


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "MMOE_HOME",
            str(Path.home() / ".mmoe_playground"),
            _text,
            "folder of the run store (runs.db, weights, uploads, data cache)",
        ),
        Setting("MMOE_NO_CACHE", "", _text, "any value: build Census-Income from its CSVs every time, no cache file"),
        Setting(
            "MMOE_MAX_JOBS", None, _count, "runs trained at once (default 1 locally; Ray: one per GPU or CPU slot)"
        ),
        Setting("MMOE_MAX_QUEUED", 32, _count, "runs that may wait in the server's queue (the regime map is 28 runs)"),
        Setting(
            "MMOE_MAX_QUEUED_PER_SESSION",
            3,
            _count,
            "runs (a study counts once) one browser, all its tabs together, may have queued or running at a time",
        ),
        Setting(
            "MMOE_MAX_QUEUED_PER_ADDRESS",
            12,
            _count,
            "runs (a study counts once) one network address may have queued or running at a time, however many "
            "browsers it opens; 0: no limit (behind a reverse proxy every visitor has the proxy's address)",
        ),
        Setting("MMOE_WORKER_THREADS", None, _count, "torch threads per web worker (default: CPUs − 1 over MAX_JOBS)"),
        Setting("MMOE_WORKER_NICE", 10, _count, "niceness of training workers, so the web server stays responsive"),
        Setting(
            "MMOE_MAX_PAUSE_S",
            900.0,
            _number,
            "seconds a run may stay paused before it is stopped (its curves kept), so it cannot hold a slot",
        ),
        Setting(
            "MMOE_SESSION_GRACE_S",
            30.0,
            _number,
            "seconds a closed browser session's queued runs wait for it to reconnect",
        ),
        Setting("MMOE_MAX_WORK", 5e13, _number, "multiply-adds one run may take: parameters × seeds × steps × batch"),
        Setting("MMOE_MAX_DATA_BYTES", 4e9, _number, "bytes of float32 inputs one run may hold in memory"),
        Setting("MMOE_MAX_PARAMS", 1e8, _number, "parameters of one run: every model, every seed"),
        Setting(
            "MMOE_MAX_MEMORY_BYTES",
            8e9,
            _number,
            "training memory of one run: parameters with Adam, one batch of activations, the inputs",
        ),
        Setting(
            "MMOE_PARSE_MEMORY_MB",
            2_000.0,
            _number,
            "memory cap (heap, RLIMIT_DATA) in MB of the subprocess that parses and checks an uploaded CSV",
        ),
        Setting("MMOE_MAX_UPLOAD_MB", 50.0, _number, "largest CSV upload, in MB"),
        Setting("MMOE_MAX_ROWS", 500_000, _count, "most rows read from a CSV"),
        Setting("MMOE_MAX_COLUMNS", 200, _count, "most columns read from a CSV"),
        Setting(
            "MMOE_PASSWORD",
            "",
            _text,
            "password every visitor must type before the app opens (empty: no password; st.secrets 'password' too)",
        ),
        Setting("MMOE_ADMIN_TOKEN", "", _text, "token that lets a browser stop or delete any run (empty: no admin)"),
        Setting("MMOE_BACKEND", "local", _text, "where runs train: local worker processes or ray"),
        Setting("MMOE_RAY_ADDRESS", None, _text, "Ray cluster address (ray://host:10001 or auto)"),
        Setting("MMOE_RAY_CPUS", None, _count, "CPUs of a Ray instance started by this process"),
        Setting("MMOE_RAY_CPUS_PER_TASK", 1, _count, "CPUs each Ray task asks for"),
    )
}


def get(name: str) -> Any:
    """The setting's value: the environment's, parsed, or the default when unset or empty."""
    setting = SETTINGS[name]
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return setting.default
    try:
        return setting.parse(raw.strip())
    except ValueError:
        kind = {_number: "a number", _count: "a whole number", _text: "text"}[setting.parse]
        raise ValueError(f"environment variable {name}={raw!r} is not {kind}; it sets the {setting.help}") from None


def home() -> Path:
    return Path(get("MMOE_HOME"))


SECRETS = ("MMOE_PASSWORD", "MMOE_ADMIN_TOKEN")  # never shown, only whether they are set


def describe() -> list[dict[str, Any]]:
    """The table for README and help pages: name, default, current value, meaning."""
    return [
        {
            "name": s.name,
            "default": s.default,
            "value": ("(set)" if os.environ.get(s.name) else None) if s.name in SECRETS else os.environ.get(s.name),
            "help": s.help,
        }
        for s in SETTINGS.values()
    ]


def markdown_table() -> str:
    """describe() as the README's Markdown table (tests/test_docs.py keeps the README equal to it)."""

    def shown(value: Any) -> str:
        if value is None or value == "":
            return "unset"
        if isinstance(value, float) and value >= 1e6:
            return f"{value:.0e}".replace("e+", "e")
        return str(value).replace(str(Path.home()), "~")

    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    rows += [f"| `{d['name']}` | {shown(d['default'])} | {d['help']} |" for d in describe()]
    return "\n".join(rows)
