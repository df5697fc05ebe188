"""Workspaces in the app: File → Open Workspace… switches the window to another workspace (runs, curves, analysis
and the compare view follow), and File → Recent Workspaces remembers the last ones (QSettings)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMenu

if TYPE_CHECKING:
    from workbench.ui.main_window import MainWindow

RECENT_KEY = "workspace/recent"
MAX_RECENT = 8


NO_RECENT = "(none yet)"

def recent_workspaces(settings: QSettings) -> list[Path]:
    """The remembered workspaces, most recent first, those that still exist."""
    raw = settings.value(RECENT_KEY, [])
    items = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, (list, tuple)) else []
    return [Path(str(p)) for p in items if p and Path(str(p)).is_dir()]


def remember(settings: QSettings, workspace: Path) -> None:
    """Put `workspace` first in the recent list."""
    paths = [str(workspace)] + [str(p) for p in recent_workspaces(settings) if p != workspace]
    settings.setValue(RECENT_KEY, paths[:MAX_RECENT])


def startup_workspace(settings: QSettings) -> Path | None:
    """The workspace to open when none is named and $WORKBENCH_HOME is unset: the last one used, if it exists."""
    if os.environ.get("WORKBENCH_HOME"):
        return None
    recent = recent_workspaces(settings)
    return recent[0] if recent else None


def switch_workspace(window: MainWindow, workspace: Path) -> str:
    """Point the window (and every view bound to a workspace) at `workspace`; "" when done, else why not."""
    workspace = Path(workspace).expanduser()
    panel = window.training_panel
    if panel is not None and panel.is_training():
        return "A training run is in progress: stop it before switching workspaces."
    if window.views is not None and window.views.compare.is_training():
        return "An experiment is training: stop it before switching workspaces."
    try:
        workspace.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"Cannot use {workspace} as a workspace ({exc.strerror or exc}); choose a folder you can write to."
    window.workspace = workspace
    if panel is not None:
        panel.set_workspace(workspace)
    if window.runs_panel is not None:
        window.runs_panel.set_workspace(workspace)
    if window.views is not None:
        window.views.analysis.set_workspace(workspace)
        window.views.compare.set_workspace(workspace)
    if window.plots is not None:
        window.plots.reset()
        window.plots.set_overlays([])
    remember(window.settings, workspace)
    window.setWindowTitle(f"CNN Workbench — {workspace}")
    return ""


def ask_workspace(window: MainWindow) -> Path | None:
    """A folder dialog for the workspace to open; None when cancelled."""
    folder = QFileDialog.getExistingDirectory(window, "Open workspace", str(window.workspace.parent))
    return Path(folder) if folder else None


def fill_recent_menu(window: MainWindow, menu: QMenu) -> None:
    """(Re)build File → Recent Workspaces from the settings."""
    menu.clear()
    recent = [p for p in recent_workspaces(window.settings) if p != window.workspace]
    for path in recent:
        menu.addAction(str(path)).triggered.connect(functools.partial(window.switch_workspace, path))
    if not recent:   # a disabled menu could never be opened again to show later entries: say "none" inside it
        menu.addAction(NO_RECENT).setEnabled(False)
