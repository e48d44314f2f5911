"""RunStore: one SQLite file (WAL) that is the single source of truth for runs, metrics and gate snapshots.

Workers write; pages and the CLI read. WAL lets readers see committed rows while a writer process is mid-run,
so a browser refresh, a second tab or a restarted server all see the same runs. Weights live beside the
database as safetensors files named by run id.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings, store_faults
from .config import RunConfig
from .store_schema import ADDED_COLUMNS, LIST_COLUMNS, SCHEMA

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("queued", "running", "done", "cancelled", "failed", "interrupted")
FINISHED = ("done", "cancelled", "failed", "interrupted")
POOL_SIZE = 4  # idle connections kept per store
RUN_ID = re.compile(r"^[0-9a-f]{12}$")


def default_home() -> Path:
    return settings.home()


def check_run_id(run_id: str) -> str:
    """Run ids reach file names and SQL: only our own 12-hex ids pass."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not valid; expected 12 lowercase hex characters")
    return run_id


class RunStore:
    def __init__(self, home: str | Path | None = None):
        """Open (or create) the store. A folder that cannot be used raises store_faults.StoreError with the fix;
        a damaged database is moved aside under a timestamped name, a fresh one is created and `notice` says so."""
        self.home = Path(home) if home is not None else default_home()
        store_faults.prepare_home(self.home)
        self.path = self.home / "runs.sqlite"
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self.notice: str | None = None  # set when a damaged database was replaced at start-up
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if not store_faults.is_corrupt(exc):
                raise
            moved = store_faults.move_aside(self.path)
            print(f"mmoe run store: {self.path} was damaged ({exc}); moved aside to {moved}", flush=True)
            self.notice = (
                f"The run store was damaged ({exc}), so it was moved aside as {moved.name} beside the new, empty "
                "one; runs made before are in that file"
            )
            self._open()

    def _open(self) -> None:
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                print(f"mmoe run store: quick_check of {self.path}: {check[:2000]}", flush=True)
                raise sqlite3.DatabaseError("database disk image is malformed")
            have = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
            for name, kind in ADDED_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection from this store's pool. Opening one costs more than most reads (0.4 ms), and a live
        page reads the store several times a second per session; a connection is used by one thread at a
        time, and one that saw an error is closed rather than reused."""
        with self._pool_lock:
            db = self._pool.pop() if self._pool else None
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA busy_timeout=30000")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise store_faults.translate(exc, self.home) or exc from exc
        try:
            yield db
        except sqlite3.Error as exc:
            db.close()
            error = store_faults.translate(exc, self.home)  # a full disk or read-only folder: say how to fix it
            if error is not None:
                raise error from exc
            raise
        except BaseException:
            db.close()
            raise
        with self._pool_lock:
            if len(self._pool) < POOL_SIZE:
                self._pool.append(db)
                return
        db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite has already rolled back after SQLITE_FULL: keep the real error
                    db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ writing
    def create_run(
        self,
        config: RunConfig,
        kind: str = "train",
        status: str = "queued",
        owner: str = "",
        label: str = "",
        total_steps: int | None = None,
        key_hash: str = "",
        browser: str = "",
        address: str = "",
    ) -> str:
        """A new run; `key_hash` is the hash of its owner secret (mmoe_core.access), empty for a run that no
        browser owns (the command line's). `browser` and `address` say who asked, for the queue's quotas."""
        run_id = uuid.uuid4().hex[:12]
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, kind, config, status, created, total_steps, owner, label, key_hash, browser, "
                "address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    kind,
                    config.to_json(),
                    status,
                    time.time(),
                    total_steps or config.steps,
                    owner,
                    label,
                    key_hash,
                    browser,
                    address,
                ),
            )
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> None:
        allowed = {
            "status",
            "started",
            "finished",
            "device",
            "error",
            "step",
            "total_steps",
            "rows_per_s",
            "label_correlation",
            "summary",
            "cancel_requested",
            "pid",
            "label",
            "config",
            "pace",
            "paused_since",
        }
        bad = set(fields) - allowed
        assert not bad, bad
        if "summary" in fields and not isinstance(fields["summary"], (str, type(None))):
            fields["summary"] = json.dumps(fields["summary"])
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), check_run_id(run_id)))

    def finish_run(self, run_id: str, status: str, error: str | None = None, only_if: tuple[str, ...] = ()) -> bool:
        """Set a final status once; with only_if, only from those states (so two writers never both win)."""
        assert status in FINISHED
        sql = "UPDATE runs SET status = ?, finished = ?, error = COALESCE(?, error) WHERE id = ?"
        args: list[Any] = [status, time.time(), error, check_run_id(run_id)]
        if only_if:
            sql += f" AND status IN ({','.join('?' * len(only_if))})"
            args += list(only_if)
        with self._tx() as db:
            return db.execute(sql, args).rowcount > 0

    def set_model(
        self,
        run_id: str,
        model: str,
        status: str,
        message: str = "",
        params: int | None = None,
        paper_params: int | None = None,
        seconds: float | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO models (run_id, model, status, message, params, paper_params, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, model) DO UPDATE SET status = excluded.status, "
                "message = excluded.message, params = COALESCE(excluded.params, params), "
                "paper_params = COALESCE(excluded.paper_params, paper_params), "
                "seconds = COALESCE(excluded.seconds, seconds)",
                (run_id, model, status, message, params, paper_params, seconds),
            )

    def add_points(
        self,
        run_id: str,
        metrics: list[tuple],
        gates: list[tuple],
        step: int | None = None,
        rows_per_s: float | None = None,
        alignment: list[tuple] = (),
    ) -> None:
        """One transaction per recorded point: readers never see half a point. alignment: (model, step, task,
        expert, a_ik) of the first seed, synthetic data only (mmoe_core.specialisation)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO metrics (run_id, model, step, replica, task, split, metric, value) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *m) for m in metrics],
            )
            db.executemany(
                "INSERT INTO gates (run_id, model, step, task, expert, weight) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, *g) for g in gates],
            )
            db.executemany(
                "INSERT INTO alignment (run_id, model, step, task, expert, value) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, *a) for a in alignment],
            )
            if step is not None:
                db.execute(
                    "UPDATE runs SET step = MAX(step, ?), rows_per_s = COALESCE(?, rows_per_s) WHERE id = ?",
                    (step, rows_per_s, run_id),
                )

    def claim(self, run_id: str) -> bool:
        """queued -> running for exactly one dispatcher."""
        with self._tx() as db:
            return (
                db.execute(
                    "UPDATE runs SET status = 'running', started = ? WHERE id = ? AND status = 'queued'",
                    (time.time(), check_run_id(run_id)),
                ).rowcount
                > 0
            )

    def request_cancel(self, run_id: str) -> None:
        self.update_run(run_id, cancel_requested=1)

    def cancel_requested(self, run_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", (check_run_id(run_id),)).fetchone()
        return bool(row and row[0])

    # Pause / Resume / Step (mmoe_core/runtime/pacing.py): the page writes `pace`, the worker `paused_since`.
    def pace(self, run_id: str) -> str:
        with self._connect() as db:
            row = db.execute("SELECT pace FROM runs WHERE id = ?", (check_run_id(run_id),)).fetchone()
        return (row[0] or "") if row else ""

    def set_pace(self, run_id: str, pace: str, only_if: str | None = None) -> bool:
        """Write a pace request; with only_if, only while the current one starts with it (the worker's own
        writes never undo a newer request from the page)."""
        sql, args = "UPDATE runs SET pace = ? WHERE id = ?", [pace, check_run_id(run_id)]
        if only_if is not None:
            sql, args = sql + " AND pace LIKE ?", [*args, only_if.replace("%", "") + "%"]
        with self._tx() as db:
            return db.execute(sql, args).rowcount > 0

    def mark_paused(self, run_id: str, since: float | None, step: int) -> None:
        """The worker holds (since = time) or goes on (None) at `step`: pages show where it stands."""
        self.update_run(run_id, paused_since=since, step=step)

    def delete_run(self, run_id: str) -> None:
        check_run_id(run_id)
        with self._tx() as db:
            tables = (("metrics", "run_id"), ("gates", "run_id"), ("alignment", "run_id"), ("models", "run_id"))
            for table, col in (*tables, ("runs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {col} = ?", (run_id,))
        self.weights_path(run_id).unlink(missing_ok=True)

    def weights_path(self, run_id: str) -> Path:
        return self.home / "weights" / f"{check_run_id(run_id)}.safetensors"

    # ------------------------------------------------------------------ reading
    def run(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM runs WHERE id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["summary"] = json.loads(out["summary"]) if out["summary"] else None
        return out

    def config(self, run_id: str) -> RunConfig:
        run = self.run(run_id)
        if run is None:
            raise ValueError(f"run {run_id} does not exist")
        return RunConfig.from_json(run["config"])

    def runs(
        self,
        limit: int = 500,
        offset: int = 0,
        statuses: tuple[str, ...] = (),
        search: str = "",
        label: str | None = None,
        label_prefix: str | None = None,
    ) -> pd.DataFrame:
        """Runs newest first, one page at a time: `statuses` keeps those, `search` matches the start of the id
        or any part of the label or config, `label`/`label_prefix` keep one study or all studies."""
        where, params = _run_filter(statuses, search, label, label_prefix)
        with self._connect() as db:
            return _frame(
                f"SELECT {LIST_COLUMNS} FROM runs{where} ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
                db,
                params=(*params, int(limit), int(offset)),
            )

    def count_runs(self, statuses: tuple[str, ...] = (), search: str = "") -> int:
        where, params = _run_filter(statuses, search, None, None)
        with self._connect() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM runs{where}", params).fetchone()[0])

    def status_counts(self) -> dict[str, int]:
        with self._connect() as db:
            return dict(db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())

    def key_hash(self, run_id: str) -> str:
        """The stored hash of a run's owner secret ('' when no browser owns it, or it does not exist)."""
        with self._connect() as db:
            row = db.execute("SELECT key_hash FROM runs WHERE id = ?", (check_run_id(run_id),)).fetchone()
        return (row[0] or "") if row else ""

    def models(self, run_id: str) -> pd.DataFrame:
        with self._connect() as db:
            return _frame("SELECT * FROM models WHERE run_id = ? ORDER BY rowid", db, params=(check_run_id(run_id),))

    def metrics(self, run_id: str, since_step: int = -1, split: str | None = None) -> pd.DataFrame:
        """Recorded rows in write order; `split` keeps one split (e.g. the diagnostics' "probe" rows alone)."""
        where, params = "run_id = ? AND step > ?", [check_run_id(run_id), since_step]
        if split is not None:
            where, params = where + " AND split = ?", params + [split]
        with self._connect() as db:
            return _frame(
                f"SELECT model, step, replica, task, split, metric, value FROM metrics WHERE {where} ORDER BY rowid",
                db,
                params=tuple(params),
            )

    def gates(self, run_id: str) -> pd.DataFrame:
        with self._connect() as db:
            return _frame(
                "SELECT model, step, task, expert, weight FROM gates WHERE run_id = ? ORDER BY rowid",
                db,
                params=(check_run_id(run_id),),
            )

    def alignment(self, run_id: str) -> pd.DataFrame:
        """Each expert's alignment with each task's direction, first seed, per recorded step (model, step,
        task, expert, value); empty for runs on real data."""
        with self._connect() as db:
            return _frame(
                "SELECT model, step, task, expert, value FROM alignment WHERE run_id = ? ORDER BY rowid",
                db,
                params=(check_run_id(run_id),),
            )

    def queued(self) -> list[str]:
        """Queued run ids, oldest first: the order the queue starts them."""
        with self._connect() as db:
            rows = db.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY created, rowid").fetchall()
        return [r[0] for r in rows]

    def active_of(self, who: str, value: str) -> list[tuple[str, str]]:
        """(run id, label) of the queued and running runs asked for by one session, browser or address
        (`who` = "owner", "browser" or "address"): what the queue's quotas count."""
        if who not in ("owner", "browser", "address"):
            raise ValueError(f"active_of: unknown column {who!r}")
        with self._connect() as db:
            rows = db.execute(
                f"SELECT id, COALESCE(label, '') FROM runs WHERE {who} = ? AND status IN ('queued', 'running')",
                (value,),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next to start; None when the run is not waiting."""
        ids = self.queued()
        return ids.index(run_id) + 1 if run_id in ids else None

    def with_status(self, *statuses: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                f"SELECT id, pid, status, paused_since FROM runs WHERE status IN ({','.join('?' * len(statuses))})",
                statuses,
            ).fetchall()
        return [dict(r) for r in rows]


def _run_filter(
    statuses: tuple[str, ...], search: str, label: str | None, label_prefix: str | None
) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (with its parameters) for RunStore.runs/count_runs; every value is a bound parameter."""
    clauses: list[str] = []
    params: list[Any] = []
    if statuses:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params += list(statuses)
    if search.strip():
        text = search.strip().lower()
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(id LIKE ? ESCAPE '\\' OR lower(label) LIKE ? ESCAPE '\\' OR lower(config) LIKE ? ESCAPE '\\')")
        params += [like[1:], like, like]
    if label is not None:
        clauses.append("label = ?")
        params.append(label)
    if label_prefix is not None:
        clauses.append("substr(label, 1, ?) = ?")
        params += [len(label_prefix), label_prefix]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _frame(sql: str, db: sqlite3.Connection, params: tuple) -> pd.DataFrame:
    """A query's rows as a DataFrame. pandas is imported here, not with the module: the CLI and the workers
    write runs without ever reading one back, and importing pandas costs them ~0.4 s of start-up (issue #18)."""
    import pandas as pd

    return pd.read_sql_query(sql, db, params=params)
