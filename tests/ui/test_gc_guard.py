"""Cyclic garbage dies in the GUI thread: a worker that allocates must not run the collector."""

from __future__ import annotations

import gc
import threading

from pytestqt.qtbot import QtBot

from workbench.ui import gc_guard


def test_cycles_are_collected_by_the_gui_thread_not_by_an_allocating_worker(qtbot: QtBot) -> None:
    collector = gc_guard.install()
    assert gc_guard.install() is collector and not gc.isenabled()
    gc.collect()
    died_in: list[int] = []

    class Marker:  # stands in for a widget caught in a reference cycle
        def __del__(self) -> None:
            died_in.append(threading.get_ident())

    marker = Marker()
    marker.me = marker  # type: ignore[attr-defined]
    del marker

    kept: list[list[list[int]]] = []

    def allocate() -> None:  # what a summary or the training loop does: many container objects
        kept.append([[i] for i in range(50_000)])

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert died_in == []  # with automatic gc on, the worker would have collected the cycle
    qtbot.waitUntil(lambda: bool(died_in), timeout=5000)
    assert died_in == [threading.get_ident()]
    kept.clear()
