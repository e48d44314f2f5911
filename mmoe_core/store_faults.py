"""The run store's folder and database under faults, each turned into one message with its fix.

A missing folder is created; a file where the folder should be, a folder the server cannot write, a full disk
and a damaged database each raise `StoreError`, whose text a page may show (it names the setting, never a
server path) while `.detail` (with the path) goes to the server log and the CLI, whose user owns the machine.
A damaged database is not fatal: `move_aside` keeps it beside the fresh one under a timestamped name, so
nothing is deleted and the operator can still try to recover it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
import uuid
from pathlib import Path

DISK_FULL = (
    "disk full: the server's disk has no space left for the run store (MMOE_HOME); free some space there "
    "(old runs' weights are the largest files), then run it again"
)
READ_ONLY = (
    "the run store folder (MMOE_HOME) is read-only; give the server write access to it, or set MMOE_HOME "
    "to a writable folder and restart"
)
IS_A_FILE = (
    "the run store folder (MMOE_HOME) is a file, not a folder; set MMOE_HOME to a folder (it is created if "
    "missing) or move that file away, then restart"
)
CANNOT_CREATE = (
    "the run store folder (MMOE_HOME) cannot be created ({why}); set MMOE_HOME to a folder the server may "
    "write, then restart"
)


class StoreError(ValueError):
    """A run-store problem the operator fixes. str(): safe to show anyone; .detail: with the path, for logs."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail or message


DISK_FULL_EXIT = 28  # a worker that could not even record "disk full" exits with ENOSPC's number


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, StoreError):
        return str(exc) == DISK_FULL
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "disk is full" in text or "No space left on device" in text  # sqlite3, safetensors (os error 28)


def is_read_only(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return True
    return isinstance(exc, sqlite3.Error) and ("readonly" in str(exc) or "unable to open database" in str(exc))


def is_corrupt(exc: BaseException) -> bool:
    """Damage, not contention: 'database is locked' is an OperationalError too and must never move a store."""
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text)


def translate(exc: BaseException, home: Path) -> StoreError | None:
    """The StoreError for a write that failed for a reason the operator can fix; None for anything else."""
    if is_disk_full(exc):
        return StoreError(DISK_FULL, f"{DISK_FULL} ({home}: {exc})")
    if is_read_only(exc):
        return StoreError(READ_ONLY, f"{READ_ONLY} ({home}: {exc})")
    return None


def prepare_home(home: Path) -> None:
    """Create the folder (and weights/) if missing and prove it writable, or raise the StoreError that says how."""
    if home.exists() and not home.is_dir():
        raise StoreError(IS_A_FILE, f"{IS_A_FILE} (MMOE_HOME={home})")
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "weights").mkdir(exist_ok=True)
    except FileExistsError:
        raise StoreError(IS_A_FILE, f"{IS_A_FILE} (a file is in the way under {home})") from None
    except OSError as exc:
        if is_disk_full(exc) or is_read_only(exc):
            raise translate(exc, home) from None
        message = CANNOT_CREATE.format(why=exc.strerror or type(exc).__name__)
        raise StoreError(message, f"{message} (MMOE_HOME={home})") from None
    probe = home / f".write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"ok")
    except OSError as exc:
        error = translate(exc, home) or StoreError(READ_ONLY, f"{READ_ONLY} ({home}: {exc})")
        raise error from None
    finally:
        probe.unlink(missing_ok=True)


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal/-shm files) to <name>.corrupt-<UTC time>; returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target
