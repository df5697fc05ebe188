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


def test_a_leaked_thread_is_reported_with_where_it_was_started(no_leaked_threads: dict[int, str]) -> None:
    gate = threading.Event()
    thread = threading.Thread(target=gate.wait, args=(30,), name="slowpoke")
    thread.start()  # this line is what the report names
    try:
        where = no_leaked_threads[id(thread)]
        assert where.startswith("test_leak_check.py:") and where.endswith("in test_a_leaked_thread_is_reported_with_"
                                                                           "where_it_was_started")
    finally:
        gate.set()
        thread.join()
