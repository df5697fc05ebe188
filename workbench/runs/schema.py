"""The run database schema, versioned with `PRAGMA user_version` so later releases can migrate it."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    arch TEXT NOT NULL,
    arch_options TEXT NOT NULL DEFAULT '{}',
    dataset TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    device TEXT NOT NULL DEFAULT '',
    epochs_completed INTEGER NOT NULL DEFAULT 0,
    best_val_accuracy REAL,
    best_metrics TEXT NOT NULL DEFAULT '{}',
    final_metrics TEXT NOT NULL DEFAULT '{}',
    message TEXT NOT NULL DEFAULT '',
    owner_pid INTEGER,
    owner_host TEXT,
    owner_start TEXT,
    heartbeat_at REAL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,            -- NULL stores NaN (SQLite has no NaN)
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run_name ON metrics(run_id, name, epoch, step);
"""

# Version 3: experiments (a queue of runs with one seed and budget), the process count of a run, a stop request
# another process can post, the data folder, input shape and class count a run trains with, and each
# validation sample's prediction and loss.
_SCHEMA_V3 = """
ALTER TABLE runs ADD COLUMN experiment_id TEXT;
ALTER TABLE runs ADD COLUMN world_size INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN stop_requested_at REAL;
ALTER TABLE runs ADD COLUMN data_root TEXT;
ALTER TABLE runs ADD COLUMN input_shape TEXT;
ALTER TABLE runs ADD COLUMN num_classes INTEGER;
CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment_id);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    spec TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS sample_history (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    predictions BLOB NOT NULL,  -- one class index per validation sample (uint16, little-endian)
    losses BLOB NOT NULL,       -- one loss per validation sample (float16, little-endian)
    PRIMARY KEY (run_id, epoch)
);
"""

# Migrations from version N to N+1, applied in order inside one transaction.
_MIGRATIONS: dict[int, str] = {
    0: _SCHEMA_V1,
    1: "ALTER TABLE runs ADD COLUMN dataset_options TEXT NOT NULL DEFAULT '{}'",
    2: _SCHEMA_V3,
}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to SCHEMA_VERSION inside the caller's write transaction.
    Returns the version found; a newer one than we know is left untouched."""
    found = version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        return found
    while version < SCHEMA_VERSION:
        for statement in _MIGRATIONS[version].split(";"):
            if statement.strip():
                conn.execute(statement)
        version += 1
        conn.execute(f"PRAGMA user_version = {version}")
    return found
