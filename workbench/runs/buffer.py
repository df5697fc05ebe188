"""Batch metric rows for the run store so the training loop never waits on SQLite per step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from workbench.errors import WorkspaceError
from workbench.runs.records import MetricRow
from workbench.runs.store import RunStore


class MetricBuffer:
    """Collects metric rows for one run and writes them in batches.

    - `add_epoch(...)` rows are written at once (an epoch's numbers are never lost once it ends).
    - `add_step(...)` rows are thinned to one per `step_interval_s` and written every `flush_every_s`
      (or when `max_rows` pile up). Each write also refreshes the run's heartbeat.
    - A periodic write that fails (database busy for longer than the timeout, disk full) keeps the rows
      for the next attempt and remembers the error in `last_error`; `flush()` and `add_epoch()` raise.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        flush_every_s: float = 5.0,
        step_interval_s: float = 1.0,
        max_rows: int = 2000,
        heartbeat: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.flush_every_s = flush_every_s
        self.step_interval_s = step_interval_s
        self.max_rows = max_rows
        self.heartbeat = heartbeat
        self._clock = clock
        self._rows: list[MetricRow] = []
        self._lock = threading.Lock()
        self._last_flush = clock()
        self._last_step: float | None = None
        self.last_error: WorkspaceError | None = None
        self.rows_written = 0

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._rows)

    def add(self, epoch: int, step: int, name: str, value: float, at: float | None = None) -> None:
        """Queue one row (always kept); writes when a flush is due."""
        with self._lock:
            self._rows.append(MetricRow(int(epoch), int(step), name, float(value), time.time() if at is None else at))
        self.maybe_flush()

    def add_step(self, epoch: int, step: int, values: Mapping[str, float], *, force: bool = False) -> bool:
        """Queue step-level values unless one was kept less than `step_interval_s` ago (or `force`).
        Returns whether they were kept. Writes when a flush is due."""
        now = self._clock()
        kept = force or self._last_step is None or now - self._last_step >= self.step_interval_s
        if kept:
            self._last_step = now
            at = time.time()
            with self._lock:
                self._rows.extend(MetricRow(int(epoch), int(step), k, float(v), at) for k, v in values.items())
        self.maybe_flush()
        return kept

    def add_epoch(self, epoch: int, step: int, values: Mapping[str, float]) -> None:
        """Queue epoch-level values and write everything now (raises WorkspaceError on failure)."""
        at = time.time()
        with self._lock:
            self._rows.extend(MetricRow(int(epoch), int(step), k, float(v), at) for k, v in values.items())
        self.flush()

    def maybe_flush(self) -> bool:
        """Write if `flush_every_s` passed or `max_rows` are pending; errors are kept, not raised.
        Call it now and then during long epochs so the heartbeat stays fresh. Returns True if written."""
        if len(self._rows) < self.max_rows and self._clock() - self._last_flush < self.flush_every_s:
            return False
        try:
            self.flush()
        except WorkspaceError as exc:
            self.last_error = exc
            self._last_flush = self._clock()  # retry after another interval, not on every step
            return False
        return True

    def flush(self) -> None:
        """Write all pending rows (and the heartbeat) in one transaction; rows stay queued on failure."""
        with self._lock:
            rows, self._rows = self._rows, []
            try:
                self.store.log_metrics(self.run_id, rows, heartbeat=self.heartbeat)
            except BaseException:
                self._rows = rows + self._rows
                raise
            self.rows_written += len(rows)
            self._last_flush = self._clock()
            self.last_error = None

    def close(self) -> None:
        """Write what is left."""
        self.flush()

    def __enter__(self) -> MetricBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
