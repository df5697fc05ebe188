"""The thread-leak fixture's pool check reports a pool that still runs a job."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThreadPool


def test_busy_pool_is_reported_until_its_job_ends(busy_pools) -> None:
    pool = QThreadPool()
    pool.setObjectName("testPool")
    gate, running = threading.Event(), threading.Event()
    pool.start(lambda: (running.set(), gate.wait(30)))
    assert running.wait(10)
    try:
        assert busy_pools([pool], wait_ms=20) == ["QThreadPool testPool (1 active)"]
    finally:
        gate.set()
        pool.waitForDone()
    assert busy_pools([pool], wait_ms=20) == []


def test_the_summary_workers_pool_is_tracked(no_leaked_threads) -> None:
    import workbench.ui.summary_worker as summary_worker

    assert summary_worker.QThreadPool is not QThreadPool and issubclass(summary_worker.QThreadPool, QThreadPool)
