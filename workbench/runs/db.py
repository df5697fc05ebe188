"""The run database connection layer: one SQLite connection per thread, short IMMEDIATE write transactions,
schema migration on open, and every SQLite failure turned into one WorkspaceError sentence."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from workbench.errors import WorkspaceError
from workbench.runs.owner import DEFAULT_STALE_AFTER_S
from workbench.runs.schema import SCHEMA_VERSION, migrate

DB_NAME = "runs.sqlite"
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction


class Database:
    """`<workspace>/runs.sqlite`, opened (and migrated) on construction; safe across threads and processes."""

    def __init__(self, workspace: Path | str | None = None, *, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        if workspace is None:
            from workbench.paths import default_workspace

            workspace = default_workspace()
        self.workspace = Path(workspace).expanduser()
        self.db_path = self.workspace / DB_NAME
        self.runs_root = self.workspace / "runs"
        self.stale_after_s = stale_after_s
        self._local = threading.local()
        self._lock = threading.Lock()
        # (thread, connection) pairs; a finished thread's connection is closed when another one opens.
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._inherited: list[tuple[threading.Thread, sqlite3.Connection]] = []  # forked parent's: left alone
        self._pid = os.getpid()
        self._prepare_workspace()
        with self._errors("open"):
            self._migrate()

    # --- connection management ----------------------------------------------------------------------

    def _prepare_workspace(self) -> None:
        try:
            self.runs_root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.workspace)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise WorkspaceError(
                f"Cannot use workspace {self.workspace} ({exc.strerror or exc}); "
                "choose a writable folder with --workspace or WORKBENCH_HOME."
            ) from None

    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:  # forked: SQLite connections must not cross a fork
            with self._lock:
                self._inherited.extend(self._connections)
                self._connections = []
                self._local = threading.local()
                self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE for writes).
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # NORMAL is durable against process crashes in WAL mode, and much faster than FULL.
            conn.execute("PRAGMA synchronous = NORMAL" if str(mode).lower() == "wal" else "PRAGMA synchronous = FULL")
            self._local.conn = conn
            with self._lock:
                finished = [c for t, c in self._connections if not t.is_alive()]
                self._connections = [(t, c) for t, c in self._connections if t.is_alive()]
                self._connections.append((threading.current_thread(), conn))
            for old in finished:
                with contextlib.suppress(sqlite3.Error):
                    old.close()
        return conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise WorkspaceError(
                f"Could not {action} the run database {self.db_path} ({exc}); check that the workspace "
                "is writable, has free space and is not on a network drive."
            ) from exc

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._errors(action):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._errors("read"):
            return self._conn().execute(sql, params).fetchall()

    def _migrate(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = migrate(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"The run database {self.db_path} was written by a newer CNN Workbench "
                f"(schema {version}); upgrade the app or use another workspace."
            )

    def close(self) -> None:
        """Close every connection this store opened (the store reopens lazily if used again)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for _, conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
