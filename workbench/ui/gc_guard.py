"""Cyclic garbage is collected in the GUI thread only, in short passes.

Python runs its cycle collector in whichever thread happens to allocate when a threshold is crossed. When
that is a worker thread (a summary, the training loop) and the garbage holds a widget, the widget is
destroyed there: Qt's object mutex and the GIL are then taken in opposite orders by that thread and the GUI
thread, and the app deadlocks (seen in the test suite) or crashes. So automatic collection is switched off
and a GUI-thread timer collects instead (pyqtgraph's GarbageCollector does the same).

Each pass must stay short, or the window stutters and the worker that waits for the GIL slows down: with torch,
torchvision and pyqtgraph imported a full collection scans ~400,000 objects (0.3-0.5 s on a 2-core machine).
So, as CPython itself does, the oldest generation is collected only when it has grown by a quarter since the
last full pass, and `settle()` freezes what the engine import created (modules, classes, functions: they live
as long as the process) so that full passes never scan it again.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 100        # often enough that each young-generation pass stays short
FULL_GROWTH = 0.25       # CPython's rule: a full pass only when the old generation grew by this fraction


class GuiThreadCollector(QObject):
    """Timer-driven gc in the thread it lives in (the GUI thread)."""

    def __init__(self, parent: QObject, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.setObjectName("guiThreadCollector")
        self.thresholds = gc.get_threshold()
        self.full_passes = 0
        self._old_after_full = len(gc.get_objects(2))  # objects in the oldest generation after the last full pass
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the oldest generation whose count passed its threshold (the younger ones with it)."""
        counts = gc.get_count()
        if counts[0] <= self.thresholds[0]:
            return
        if counts[1] <= self.thresholds[1]:
            gc.collect(0)
        elif counts[2] <= self.thresholds[2] or not self._old_generation_grew():
            gc.collect(1)
        else:
            self.collect_full()

    def _old_generation_grew(self) -> bool:
        return len(gc.get_objects(2)) > self._old_after_full * (1 + FULL_GROWTH)

    def collect_full(self) -> None:
        """One full pass now (frozen objects are not scanned)."""
        gc.collect()
        self.full_passes += 1
        self._old_after_full = len(gc.get_objects(2))


def _collector() -> GuiThreadCollector | None:
    app = QCoreApplication.instance()
    found = app.findChild(GuiThreadCollector, "guiThreadCollector") if app is not None else None
    return found if isinstance(found, GuiThreadCollector) else None


def settle() -> None:
    """Call when a pause is harmless and what is alive now will live as long as the app (the engine has just
    loaded): one full collection, then everything left is frozen out of later full passes (`gc.freeze`)."""
    gc.collect()
    gc.freeze()
    collector = _collector()
    if collector is not None:
        collector._old_after_full = len(gc.get_objects(2))


def install(app: QCoreApplication | None = None) -> GuiThreadCollector:
    """Disable automatic gc and collect on a timer owned by the application (idempotent)."""
    app = app or QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before installing the GUI-thread collector")
    existing = app.findChild(GuiThreadCollector, "guiThreadCollector")
    collector = existing if isinstance(existing, GuiThreadCollector) else GuiThreadCollector(app)
    gc.disable()
    return collector
