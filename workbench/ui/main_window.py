"""The main window: architecture picker | layer tree, parameters, live curves, runs | training panel.

Nothing imported here imports torch or pyqtgraph: with `lazy=True` (what `run_app` uses) the window is
painted first, the engine is imported in a background thread, and the panels that need it are built
when it arrives. Tests build the window eagerly (`lazy=False`), the same code run synchronously.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.architecture_panel import ArchitecturePanel, ArchSelection
from workbench.ui.dialogs import show_about, show_error
from workbench.ui.parameter_table import ParameterTable
from workbench.ui.startup import EngineCatalog, EngineLoader, import_engine
from workbench.ui.summary_view import SummaryView, human
from workbench.ui.summary_worker import SummaryWorker

TITLE = "CNN Workbench"
TABS = ("Layers", "Parameters", "Training curves", "Runs")


def _placeholder(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setEnabled(False)
    return label


class MainWindow(QMainWindow):
    """The desktop app's window (see docs/ARCHITECTURE.md, `workbench.ui`)."""

    engineReady = Signal()
    summaryShown = Signal(object)  # the ModelSummary now displayed

    def __init__(self, workspace: Path | None = None, settings: QSettings | None = None, *,
                 lazy: bool = False) -> None:
        super().__init__()
        from workbench.paths import default_workspace
        from workbench.ui import gc_guard

        gc_guard.install()  # the window starts worker threads: garbage must die in this thread

        self.workspace = Path(workspace) if workspace is not None else default_workspace()
        self.settings = settings if settings is not None else QSettings()
        self.training_panel: Any = None
        self.catalog: EngineCatalog | None = None
        self._restoring = False
        self.setWindowTitle(TITLE)
        self.setObjectName("mainWindow")
        self.resize(1440, 880)

        self.arch_panel = ArchitecturePanel()
        self.summary_view = SummaryView()
        self.param_table = ParameterTable()
        self.worker = SummaryWorker(parent=self)
        self.loader = EngineLoader(self)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("centerTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.summary_view, TABS[0])
        self.tabs.addTab(self.param_table, TABS[1])
        self.tabs.addTab(_placeholder("Live curves appear here once the engine has loaded."), TABS[2])
        self.tabs.addTab(_placeholder("Loading runs…"), TABS[3])

        # The training panel scrolls its settings itself, keeping Train/Stop and the progress in view.
        self.right = QWidget()
        self.right.setObjectName("trainingContainer")
        right_layout = QVBoxLayout(self.right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self._right_placeholder = _placeholder("Loading the training engine…")
        right_layout.addWidget(self._right_placeholder)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(self.arch_panel)
        # Wide enough for the form's own minimum (the horizontal scroll bar is off, so less would clip it).
        left.setMinimumWidth(max(240, self.arch_panel.minimumSizeHint().width()
                                 + left.verticalScrollBar().sizeHint().width()))
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left.setFrameShape(QScrollArea.Shape.NoFrame)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        for w in (left, self.tabs, self.right):
            self.splitter.addWidget(w)
        for index, stretch in enumerate((0, 1, 0)):
            self.splitter.setStretchFactor(index, stretch)
        self.splitter.setSizes([280, 760, 380])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self.summary_state = QLabel("Starting…")
        self.summary_state.setObjectName("summaryState")
        self.training_state = QLabel("")
        self.training_state.setObjectName("trainingState")
        self.device_label = QLabel("Device: –")
        self.device_label.setObjectName("deviceLabel")
        self.throughput_label = QLabel("– img/s")
        self.throughput_label.setObjectName("throughputLabel")
        self.statusBar().addWidget(self.summary_state, 1)
        for label in (self.training_state, self.device_label, self.throughput_label):
            self.statusBar().addPermanentWidget(label)
        self._build_menus()

        self.arch_panel.selectionChanged.connect(self._on_selection)
        self.worker.finished.connect(self._on_summary)
        self.worker.failed.connect(self._on_summary_failed)
        self.summary_view.layerSelected.connect(self._on_layer_selected)
        self.loader.loaded.connect(self._on_engine_loaded)
        self.loader.failed.connect(self._on_engine_failed)
        self._restore_window()
        if not lazy:
            self._on_engine_loaded(import_engine())

    # --- menus and shortcuts ---------------------------------------------------------------------------
    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None, icon: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        sp = QStyle.StandardPixmap
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_workspace_action = self._action(file_menu, "Open &Workspace Folder", self.open_workspace,
                                                  None, sp.SP_DirOpenIcon)
        file_menu.addSeparator()
        self.export_png_action = self._action(file_menu, "Export plot as &PNG…", lambda: self.export_plot_png())
        self.export_csv_action = self._action(file_menu, "Export metrics as &CSV…",
                                              lambda: self.export_metrics_csv())
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit, sp.SP_DialogCloseButton)
        view = bar.addMenu("&View")
        self.find_action = self._action(view, "&Find Architecture", self.arch_panel.focus_search,
                                        QKeySequence.StandardKey.Find, sp.SP_FileDialogContentsView)
        view.addSeparator()
        for i, name in enumerate(TABS):
            self._action(view, name, lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
        view.addSeparator()
        self._action(view, "&Reset Layout", self.reset_layout)
        train = bar.addMenu("&Training")
        self.train_action = self._action(train, "&Train", self.start_training, "Ctrl+Return", sp.SP_MediaPlay)
        self.train_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.stop_action = self._action(train, "&Stop", self.stop_training, "Esc", sp.SP_MediaStop)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About CNN Workbench", lambda: show_about(self), None, sp.SP_MessageBoxInformation)

    def open_workspace(self) -> bool:
        """Show the workspace folder in the file manager."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.workspace)))

    def export_plot_png(self, path: Path | str | None = None, plot: str | bool | None = False) -> Path | None:
        """File → Export plot as PNG: `plot` is a LivePlots name or None for the grid as shown (False: ask);
        `path` None asks with a save dialog. Returns the file written, None when cancelled."""
        from workbench.ui import export

        if self.training_panel is None:
            return None
        if plot is False:
            plot = export.ask_plot(self)
            if plot is False:
                return None
        if path is None:
            path = export.ask_save_path(self, "Export plot as PNG", self.workspace / f"{plot or 'plots'}.png",
                                        "PNG images (*.png)")
            if path is None:
                return None
        try:
            return export.export_plot_png(self.training_panel.plots, Path(path), plot)  # type: ignore[arg-type]
        except OSError as exc:
            show_error(self, f"Could not write the PNG file: {exc}", "")
            return None

    def export_metrics_csv(self, path: Path | str | None = None) -> Path | None:
        """File → Export metrics as CSV: the selected run (or the last one) from the run store, else the live
        curves' buffers. `path` None asks with a save dialog."""
        from workbench.ui import export

        panel = self.training_panel
        if panel is None:
            return None
        selected = panel.runs_panel.selected_run_ids()
        run_id = selected[0] if selected else panel.last_run_id()
        if path is None:
            path = export.ask_save_path(self, "Export metrics as CSV",
                                        self.workspace / f"{run_id or 'metrics'}.csv", "CSV files (*.csv)")
            if path is None:
                return None
        try:
            if run_id and panel.runs_panel.status_of(run_id) is not None:
                return export.write_metrics_csv(panel.runs_panel.store, run_id, Path(path))
            return panel.plots.export_csv(Path(path))
        except OSError as exc:
            show_error(self, f"Could not write the CSV file: {exc}", "")
            return None

    def start_training(self) -> None:
        """Ctrl+Return: start a run when the training panel allows it (else its status says why)."""
        if self.training_panel is not None:
            self.training_panel.start_training()

    def stop_training(self) -> None:
        """Esc: ask the run to stop (it checkpoints)."""
        if self.training_panel is not None:
            self.training_panel.request_stop()

    def reset_layout(self) -> None:
        total = max(900, self.splitter.width())
        self.splitter.setSizes([int(total * 0.2), int(total * 0.55), int(total * 0.25)])
        self.summary_view.splitter.setSizes([600, 400])

    # --- engine start-up -------------------------------------------------------------------------------
    def load_engine(self) -> None:
        """Import the engine in the background (lazy start); `engineReady` fires when the panels are built."""
        if self.catalog is None:
            self.summary_state.setText("Loading the model zoo and torch…")
            self.loader.start()

    def is_engine_ready(self) -> bool:
        return self.catalog is not None

    def _on_engine_failed(self, message: str, details: str) -> None:
        self.loader.join(1.0)
        self.summary_state.setText("The engine could not be loaded.")
        show_error(self, message, details)

    def _on_engine_loaded(self, catalog: EngineCatalog) -> None:
        self.loader.join(1.0)
        if self.catalog is not None:
            return
        from workbench.models import resolve_options
        from workbench.ui.training_panel import TrainingPanel

        self.catalog = catalog
        self.summary_view.attach_chart()
        panel = TrainingPanel(self.workspace)
        self.training_panel = panel
        self.right.layout().removeWidget(self._right_placeholder)
        self._right_placeholder.deleteLater()
        self.right.layout().addWidget(panel)
        for i, widget in ((2, panel.plots), (3, panel.runs_panel)):
            self.tabs.removeTab(i)
            self.tabs.insertTab(i, widget, TABS[i])
        panel.datasetChanged.connect(self._on_dataset)
        panel.statusText.connect(self.training_state.setText)
        panel.deviceChanged.connect(lambda d: self.device_label.setText(f"Device: {d}"))
        panel.throughputChanged.connect(lambda ips: self.throughput_label.setText(f"{ips:,.0f} img/s"))
        panel.runStarted.connect(lambda _rid: self.tabs.setCurrentIndex(2))
        self._restoring = True
        try:
            self.arch_panel.set_catalog(catalog.specs, resolve_options, catalog.families)
            state = self._json("training/state")
            if state:
                panel.restore_state(state)
            arch_state = self._json("architecture/state")
            self.arch_panel.restore_state(arch_state)
            if not self.arch_panel.current_arch():
                self.arch_panel.select("resnet18" if "resnet18" in self.arch_panel.names()
                                       else self.arch_panel.names()[0])
        finally:
            self._restoring = False
        self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0) or 0))
        self._on_selection(self.arch_panel.selection())
        self.engineReady.emit()

    # --- wiring --------------------------------------------------------------------------------------
    def _on_dataset(self, info: dict) -> None:
        self.arch_panel.set_dataset(info)

    def _on_selection(self, sel: ArchSelection | None) -> None:
        if sel is None or self._restoring:
            return
        if self.training_panel is not None:
            self.training_panel.set_architecture(sel.arch, sel.options, sel.input_override,
                                                 sel.classes_override, sel.valid, sel.reason)
        if not sel.valid:
            self.worker.invalidate()
            self.summary_view.set_error(f"The options of {sel.arch} are not valid: {sel.reason}")
            self.summary_state.setText(f"{sel.arch}: invalid options.")
            return
        self.summary_view.set_pending(sel.arch)
        self.summary_state.setText(f"Summarizing {sel.arch}…")
        self.worker.request(sel.arch, input_shape=sel.input_shape, num_classes=sel.num_classes,
                            options=sel.options)

    def _on_summary(self, _rid: int, summary: Any) -> None:
        self.summary_view.set_summary(summary)
        self.param_table.set_parameters(summary.parameters)
        t = summary.totals
        self.summary_state.setText(f"{summary.arch}: {t.total_params:,} parameters, "
                                   f"{human(t.mult_adds)} Mult-Adds.")
        self.summaryShown.emit(summary)

    def _on_summary_failed(self, _rid: int, message: str, details: str, user_error: bool) -> None:
        self.summary_view.set_error(message, details)
        self.summary_state.setText("Summary failed: " + message)
        sel = self.arch_panel.selection()
        if user_error and sel is not None and self.training_panel is not None:
            # e.g. the input is too small for this architecture: the model could not be trained either.
            self.training_panel.set_architecture(sel.arch, sel.options, sel.input_override,
                                                 sel.classes_override, False, message)

    def _on_layer_selected(self, row: Any) -> None:
        self.summary_state.setText(f"{row.name or row.type}: {row.type}, {row.params:,} parameters, "
                                   f"{row.mult_adds:,} Mult-Adds")

    # --- settings ------------------------------------------------------------------------------------
    def _json(self, key: str) -> dict:
        raw = self.settings.value(key, "")
        try:
            value = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _restore_window(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        for key, splitter in (("window/mainSplitter", self.splitter),
                              ("window/summarySplitter", self.summary_view.splitter)):
            state = self.settings.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                splitter.restoreState(state)

    def save_settings(self) -> None:
        """Geometry, splitters, tab, architecture + options, training panel state."""
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/mainSplitter", self.splitter.saveState())
        s.setValue("window/summarySplitter", self.summary_view.splitter.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        if self.catalog is not None:
            s.setValue("architecture/state", json.dumps(self.arch_panel.save_state()))
        if self.training_panel is not None:
            s.setValue("training/state", json.dumps(self.training_panel.save_state(), default=str))
        s.sync()

    # --- closing -------------------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Ask whether to stop the running training and quit (tests monkeypatch this)."""
        answer = QMessageBox.question(
            self, "Stop training and quit?",
            "A training run is in progress. Stop it (its checkpoint and metrics are kept) and quit?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        panel = self.training_panel
        if panel is not None and panel.is_training():
            if not self.confirm_close():
                event.ignore()
                return
            self.summary_state.setText("Stopping the training run…")
            if not panel.wait_stopped(2000):
                show_error(self, "The training run did not stop within 2 seconds; try closing again.")
                event.ignore()
                return
        self.save_settings()
        self.worker.shutdown(5000)
        self.loader.join(5.0)
        if panel is not None:
            panel.wait_stopped(2000)
        event.accept()


class FirstPaintWatcher(QObject):
    """Calls `callback` once, on the event loop turn after the window's first paint."""

    def __init__(self, window: QWidget, callback: Any) -> None:
        super().__init__(window)
        self._window = window
        self._callback = callback
        QApplication.instance().installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and isinstance(obj, QWidget) and obj.window() is self._window:
            QApplication.instance().removeEventFilter(self)
            QTimer.singleShot(0, self._callback)
        return False
