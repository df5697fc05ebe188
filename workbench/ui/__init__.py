"""The desktop app (PySide6 + pyqtgraph). Importing this package does not import torch or pyqtgraph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# PySide6 6.12 on Python 3.11 leaks references to None/True; must run before any Qt call (see module).
from workbench.ui import qt_compat as _qt_compat  # noqa: F401

if TYPE_CHECKING:
    from workbench.ui.app import run_app
    from workbench.ui.main_window import MainWindow

__all__ = ["MainWindow", "run_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import workbench.ui.plots` (say) does not build the whole window's module graph.
    if name == "MainWindow":
        from workbench.ui.main_window import MainWindow

        return MainWindow
    if name == "run_app":
        from workbench.ui.app import run_app

        return run_app
    raise AttributeError(name)
