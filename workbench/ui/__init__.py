"""The desktop app (PySide6 + pyqtgraph). Importing this package does not import torch or pyqtgraph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
