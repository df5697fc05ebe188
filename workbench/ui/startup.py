"""Importing the heavy parts (pyqtgraph, torch, the model zoo) off the GUI thread after the window is up.

Importing a module in a worker thread is safe: it only defines classes and functions; every widget is created
later on the GUI thread. The task hands back a plain catalog of the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from workbench.ui.tasks import TaskSink

if TYPE_CHECKING:
    from workbench.models import ArchSpec


@dataclass
class EngineCatalog:
    """What the window needs from the engine once it is importable."""

    specs: list[ArchSpec] = field(default_factory=list)   # registry order
    families: list[str] = field(default_factory=list)     # display order


def import_engine() -> EngineCatalog:
    """Import pyqtgraph, the engine and the panels that need them, read the shipped summaries; return the
    registry's catalog."""
    import pyqtgraph  # noqa: F401  (1 s on a slow machine: keep it off the first paint)

    import workbench.data
    import workbench.runs
    import workbench.runs.history
    import workbench.training
    import workbench.training.job  # the trainer and what a run imports: loaded now, frozen by gc_guard.settle()
    import workbench.ui.plots
    import workbench.ui.training_panel  # noqa: F401
    from workbench.models import get_spec, list_families, list_models
    from workbench.models.summary_cache import session_cache

    catalog = EngineCatalog([get_spec(n) for n in list_models()], list_families())
    session_cache().preload()  # here, not in the GUI thread's first look-up
    return catalog


def engine_import_task(sink: TaskSink) -> EngineCatalog:
    """The start-up task: `import_engine` reported as one stage."""
    sink.progress("Loading the model zoo and torch…", -1.0)
    catalog = import_engine()
    from workbench.models.summary_process import shared_processes

    shared_processes().warm()  # the summary helper imports torch while the user looks at the first summary
    return catalog


class FirstPaintWatcher(QObject):
    """Calls `callback` once, on the event loop turn after the window's first paint."""

    def __init__(self, window: QWidget, callback: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self._callback = callback
        app = QApplication.instance()
        assert app is not None
        app.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and isinstance(obj, QWidget) and obj.window() is self._window:
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
            QTimer.singleShot(0, self._callback)
        return False
