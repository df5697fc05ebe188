"""Cyclic garbage is collected in the GUI thread only.

Python runs its cycle collector in whichever thread happens to allocate when a threshold is crossed. When
that is a worker thread (a summary, the training loop) and the garbage holds a widget, the widget is
destroyed there: Qt's object mutex and the GIL are then taken in opposite orders by that thread and the GUI
thread, and the app deadlocks (seen in the test suite) or crashes. So automatic collection is switched off
and a GUI-thread timer collects instead, generation by generation as the thresholds say (pyqtgraph's
GarbageCollector does the same).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 100  # often enough that each young-generation pass stays short


class GuiThreadCollector(QObject):
    """Timer-driven gc in the thread it lives in (the GUI thread)."""

    def __init__(self, parent: QObject, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.setObjectName("guiThreadCollector")
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds."""
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self.thresholds[generation]:
                break
            gc.collect(generation)


def settle() -> None:
    """One full collection now, when a pause is harmless (the engine has just loaded): the import's objects
    reach the oldest generation at once instead of being rescanned by young collections during training."""
    gc.collect()


def install(app: QCoreApplication | None = None) -> GuiThreadCollector:
    """Disable automatic gc and collect on a timer owned by the application (idempotent)."""
    app = app or QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before installing the GUI-thread collector")
    existing = app.findChild(GuiThreadCollector, "guiThreadCollector")
    collector = existing if isinstance(existing, GuiThreadCollector) else GuiThreadCollector(app)
    gc.disable()
    return collector
