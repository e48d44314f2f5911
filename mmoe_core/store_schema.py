"""The run store's SQLite schema: runs, their models, metric rows, gate snapshots and expert alignment. Columns
added after a store was first made are listed in ADDED_COLUMNS and added when an old runs.sqlite is opened."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL, started REAL, finished REAL, device TEXT, error TEXT,
    step INTEGER DEFAULT 0, total_steps INTEGER, rows_per_s REAL, label_correlation REAL,
    summary TEXT, cancel_requested INTEGER DEFAULT 0, pid INTEGER, owner TEXT, label TEXT, key_hash TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created);
CREATE TABLE IF NOT EXISTS models (
    run_id TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, message TEXT, params INTEGER,
    paper_params INTEGER, seconds REAL, PRIMARY KEY (run_id, model)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, model TEXT NOT NULL, step INTEGER NOT NULL, replica INTEGER NOT NULL,
    task INTEGER NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL, value REAL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id, step);
CREATE TABLE IF NOT EXISTS gates (
    run_id TEXT NOT NULL, model TEXT NOT NULL, step INTEGER NOT NULL, task INTEGER NOT NULL,
    expert INTEGER NOT NULL, weight REAL
);
CREATE INDEX IF NOT EXISTS gates_run ON gates (run_id, step);
CREATE TABLE IF NOT EXISTS alignment (
    run_id TEXT NOT NULL, model TEXT NOT NULL, step INTEGER NOT NULL, task INTEGER NOT NULL,
    expert INTEGER NOT NULL, value REAL
);
CREATE INDEX IF NOT EXISTS alignment_run ON alignment (run_id, step);
"""
# Columns added after a store was first made: (name, SQL type); added on open, so an old runs.sqlite keeps working.
ADDED_COLUMNS = (
    ("key_hash", "TEXT"),
    ("pace", "TEXT"),
    ("paused_since", "REAL"),
    ("browser", "TEXT"),
    ("address", "TEXT"),
)
LIST_COLUMNS = (
    "id, kind, status, created, started, finished, device, error, step, total_steps, "
    "rows_per_s, label_correlation, summary, config, owner, label, key_hash, pace"
)
