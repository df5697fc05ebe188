"""The main window's menus and the File → Export actions (kept apart so the window reads as its layout)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QStyle

from workbench.ui import workspaces
from workbench.ui.dialogs import show_about, show_error

if TYPE_CHECKING:
    from workbench.ui.export_model_dialog import ExportModelDialog
    from workbench.ui.main_window import MainWindow

Shortcut = QKeySequence | QKeySequence.StandardKey | str | None


def add_action(window: MainWindow, menu: QMenu, text: str, slot: Callable[[], object], shortcut: Shortcut = None,
               icon: QStyle.StandardPixmap | None = None) -> QAction:
    """A menu entry that calls `slot`."""
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    return action


def build_menus(window: MainWindow, tabs: tuple[str, ...]) -> None:
    """File, View, Training and Help; the actions tests use are kept as window attributes."""
    sp = QStyle.StandardPixmap
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    window.switch_workspace_action = add_action(window, file_menu, "&Open Workspace…", window.switch_workspace,
                                                QKeySequence.StandardKey.Open, sp.SP_DirOpenIcon)
    recent = file_menu.addMenu("Recent &Workspaces")
    recent.setObjectName("recentWorkspacesMenu")
    recent.aboutToShow.connect(functools.partial(workspaces.fill_recent_menu, window, recent))
    window.open_workspace_action = add_action(window, file_menu, "Show Workspace &Folder", window.open_workspace)
    file_menu.addSeparator()
    window.export_png_action = add_action(window, file_menu, "Export plot as &PNG…", window.export_plot_png)
    window.export_csv_action = add_action(window, file_menu, "Export metrics as &CSV…", window.export_metrics_csv)
    add_action(window, file_menu, "Export plot as &SVG…", functools.partial(export_plot_svg, window))
    add_action(window, file_menu, "Export &model…", functools.partial(export_model, window))
    window.predict_action = add_action(window, file_menu, "Predict &Image…", window.predict_image, "Ctrl+I")
    file_menu.addSeparator()
    add_action(window, file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit, sp.SP_DialogCloseButton)
    view = bar.addMenu("&View")
    window.find_action = add_action(window, view, "&Find Architecture", window.arch_panel.focus_search,
                                    QKeySequence.StandardKey.Find, sp.SP_FileDialogContentsView)
    view.addSeparator()
    for i, name in enumerate(tabs):
        add_action(window, view, name, functools.partial(window.tabs.setCurrentIndex, i), f"Ctrl+{i + 1}")
    view.addSeparator()
    add_action(window, view, "&Reset Layout", window.reset_layout)
    train = bar.addMenu("&Training")
    window.train_action = add_action(window, train, "&Train", window.start_training, "Ctrl+Return", sp.SP_MediaPlay)
    window.train_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
    window.stop_action = add_action(window, train, "&Stop", window.stop_training, "Esc", sp.SP_MediaStop)
    window.pause_action = QAction("&Pause", window)   # checkable; the training panel binds it to its Pause button
    window.pause_action.setShortcut(QKeySequence("Ctrl+P"))
    window.pause_action.setCheckable(True)
    window.pause_action.setEnabled(False)
    train.addAction(window.pause_action)
    help_menu = bar.addMenu("&Help")
    add_action(window, help_menu, "&About CNN Workbench", lambda: show_about(window), None,
               sp.SP_MessageBoxInformation)


def export_plot_png(window: MainWindow, path: Path | str | None = None, plot: str | bool | None = False) -> Path | None:
    """File → Export plot as PNG: `plot` is a LivePlots name or None for the grid as shown (False: ask);
    `path` None asks with a save dialog. Returns the file written, None when cancelled."""
    return _export_plot(window, path, plot, "png")


def export_plot_svg(window: MainWindow, path: Path | str | None = None, plot: str | bool | None = False
                    ) -> Path | None:
    """File → Export plot as SVG: like `export_plot_png`, as vector graphics (pyqtgraph's SVGExporter)."""
    return _export_plot(window, path, plot, "svg")


def _export_plot(window: MainWindow, path: Path | str | None, plot: str | bool | None, fmt: str) -> Path | None:
    from workbench.ui import export

    plots = window.plots
    if plots is None:
        return None
    if plot is False:
        plot = export.ask_plot(window)
        if plot is False:
            return None
    kind = fmt.upper()
    if path is None:
        path = export.ask_save_path(window, f"Export plot as {kind}", window.workspace / f"{plot or 'plots'}.{fmt}",
                                    f"{kind} images (*.{fmt})")
        if path is None:
            return None
    write = export.export_plot_png if fmt == "png" else export.export_plot_svg
    try:
        written = write(plots, Path(path), plot if isinstance(plot, str) else None)
    except OSError as exc:
        show_error(window, f"Could not write the {kind} file: {exc}", "")
        return None
    export.confirm_saved(window, "the plot", written)
    return written


def export_model(window: MainWindow, run_id: str | None = None) -> ExportModelDialog | None:
    """File → Export model…: the dialog for the selected run (else the last one), opened window-modal."""
    from workbench.ui.export_model_dialog import ExportModelDialog

    runs = window.runs_panel
    if runs is None:
        return None
    if run_id is None:
        selected = runs.selected_run_ids()
        run_id = selected[0] if selected else runs.newest_run_id()
    dialog = ExportModelDialog(window.workspace, runs.records, run_id, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dialog.open()
    return dialog


def export_metrics_csv(window: MainWindow, path: Path | str | None = None) -> Path | None:
    """File → Export metrics as CSV: the selected run (or the last one) from the run store, else the live curves'
    buffers. `path` None asks with a save dialog."""
    from workbench.ui import export

    runs, plots, panel = window.runs_panel, window.plots, window.training_panel
    if runs is None or plots is None or panel is None:
        return None
    selected = runs.selected_run_ids()
    run_id = selected[0] if selected else (panel.run_id or runs.newest_run_id())
    if path is None:
        path = export.ask_save_path(window, "Export metrics as CSV", window.workspace / f"{run_id or 'metrics'}.csv",
                                    "CSV files (*.csv)")
        if path is None:
            return None
    try:
        if run_id and runs.status_of(run_id) is not None:
            written = export.write_metrics_csv(runs.store, run_id, Path(path))
        else:
            written = plots.export_csv(Path(path))
    except OSError as exc:
        show_error(window, f"Could not write the CSV file: {exc}", "")
        return None
    export.confirm_saved(window, "the metrics", written)
    return written
