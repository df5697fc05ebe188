"""Importing the heavy parts (pyqtgraph, torch, the model zoo) off the GUI thread after the window is up.

Importing a module in a background thread is safe: it only defines classes and functions; every widget is
created later on the GUI thread. The thread hands back a plain catalog of the registry.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal


@dataclass
class EngineCatalog:
    """What the window needs from the engine once it is importable."""

    specs: list[Any] = field(default_factory=list)       # ArchSpec, registry order
    families: list[str] = field(default_factory=list)    # display order


def import_engine() -> EngineCatalog:
    """Import pyqtgraph, the engine and the training panel's modules; return the registry's catalog."""
    import pyqtgraph  # noqa: F401  (1 s on a slow machine: keep it off the first paint)

    import workbench.data
    import workbench.runs
    import workbench.training
    import workbench.ui.training_panel  # noqa: F401  (imports plots → pyqtgraph)
    from workbench.models import get_spec, list_families, list_models

    return EngineCatalog([get_spec(n) for n in list_models()], list_families())


class EngineLoader(QObject):
    """Runs `import_engine` in a Python thread and reports back on the GUI thread."""

    loaded = Signal(object)      # EngineCatalog
    failed = Signal(str, str)    # message, details

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the import thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="workbench-engine-import", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            catalog = import_engine()
        except Exception as exc:
            self.failed.emit(f"The training engine could not be loaded: {exc}. Check that torch and "
                             "torchvision are installed (pip install -e .).", traceback.format_exc())
            return
        self.loaded.emit(catalog)

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
