"""MetricBuffer: step rows thinned and batched, epoch rows written at once, failures retried."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workbench.errors import WorkspaceError
from workbench.runs import MetricBuffer, RunStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _setup(tmp_path: Path) -> tuple[RunStore, str, FakeClock]:
    store = RunStore(tmp_path)
    run = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={}, device="cpu")
    return store, run, FakeClock()


def _count(store: RunStore) -> int:
    with sqlite3.connect(store.db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]


def test_step_rows_are_thinned_and_flushed_on_interval(tmp_path: Path) -> None:
    store, run, clock = _setup(tmp_path)
    buf = MetricBuffer(store, run, flush_every_s=5.0, step_interval_s=1.0, clock=clock)
    kept = []
    for step in range(40):  # 40 steps, 0.25 s apart: one kept per second
        clock.now = step * 0.25
        kept.append(buf.add_step(1, step, {"loss": 1.0 / (step + 1), "accuracy": 0.1}))
    assert sum(kept) == 10
    assert [s for s, k in enumerate(kept) if k][:3] == [0, 4, 8]
    # flushed at t=5 (when 6 steps = 12 rows were pending); the rest waits in memory
    assert _count(store) == 12 and buf.pending == 8
    assert buf.add_step(1, 40, {"loss": 0.0}, force=True)
    heartbeat_before = store.get_run(run).heartbeat_at
    buf.add_epoch(1, 40, {"val_accuracy": 0.9, "val_loss": 0.3})
    assert buf.pending == 0 and _count(store) == 23 and buf.rows_written == 23
    assert store.get_run(run).heartbeat_at >= heartbeat_before
    got = store.metrics(run)
    assert got["val_accuracy"] == [(1, 40, 0.9)] and len(got["loss"]) == 11


def test_max_rows_triggers_flush_and_close_writes_rest(tmp_path: Path) -> None:
    store, run, clock = _setup(tmp_path)
    with MetricBuffer(store, run, flush_every_s=1e9, max_rows=10, clock=clock) as buf:
        for i in range(25):
            buf.add(1, i, "loss", float(i))
        assert _count(store) == 20 and buf.pending == 5
    assert _count(store) == 25


def test_failed_periodic_flush_keeps_rows_and_epoch_flush_raises(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store, run, clock = _setup(tmp_path)
    buf = MetricBuffer(store, run, flush_every_s=1.0, step_interval_s=0.0, clock=clock)
    real = store.log_metrics

    def busy(*args, **kwargs) -> None:
        raise WorkspaceError("database busy")

    monkeypatch.setattr(store, "log_metrics", busy)
    clock.now = 2.0
    buf.add_step(1, 1, {"loss": 1.0})  # due, fails quietly, rows kept
    assert buf.pending == 1 and isinstance(buf.last_error, WorkspaceError)
    with pytest.raises(WorkspaceError):
        buf.add_epoch(1, 1, {"val_accuracy": 0.5})
    assert buf.pending == 2
    monkeypatch.setattr(store, "log_metrics", real)
    buf.flush()
    assert buf.pending == 0 and buf.last_error is None and _count(store) == 2
