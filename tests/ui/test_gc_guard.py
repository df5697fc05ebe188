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


def test_full_passes_only_when_the_old_generation_grew(qtbot: QtBot) -> None:
    """Like CPython's own rule: a due full collection waits until the oldest generation grew by a quarter, and
    settle() freezes what lives now out of later full passes."""
    collector = gc_guard.install()
    gc_guard.settle()
    assert gc.get_freeze_count() > 0 and len(gc.get_objects(2)) < 1000
    t0, t1, t2 = collector.thresholds
    kept: list[list[list[int]]] = []

    def make_due() -> None:  # every generation's count past its threshold, as a busy worker's allocations do
        for _ in range(t2 + 1):
            gc.collect(1)
        for _ in range(t1 + 1):
            gc.collect(0)
        kept.append([[i] for i in range(t0 + 1)])

    make_due()
    collector.check()
    passes = collector.full_passes  # the first due pass after settle() scans only what is new: cheap
    make_due()
    collector.check()
    assert collector.full_passes == passes  # due by the counts, but the old generation has not grown
    assert gc.get_count()[1] == 0           # a middle-generation pass ran instead
    kept.append([[i] for i in range(max(2000, len(gc.get_objects(2))))])
    make_due()                               # the new lists reach the oldest generation
    collector.check()
    assert collector.full_passes == passes + 1
    kept.clear()
