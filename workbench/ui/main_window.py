"""The main window: architecture picker | layer tree, parameters, live curves, runs | training panel.

Nothing imported here imports torch or pyqtgraph: with `lazy=True` (what `run_app` uses) the window is
painted first, the engine is imported in a background thread, and the panels that need it are built
when it arrives. Tests build the window eagerly (`lazy=False`), the same code run synchronously.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.ui import analysis_window, window_menus, workspaces
from workbench.ui.architecture_panel import ArchitecturePanel
from workbench.ui.dialogs import show_error
from workbench.ui.parameter_table import ParameterTable
from workbench.ui.startup import EngineCatalog, engine_import_task, import_engine
from workbench.ui.summary_preview import DEFAULT_ARCH
from workbench.ui.summary_routing import SummaryRouter
from workbench.ui.summary_view import SummaryView
from workbench.ui.summary_worker import SummaryWorker
from workbench.ui.tasks import TaskRunner
from workbench.ui.training_wiring import wire_training

if TYPE_CHECKING:
    from workbench.ui.plots import LivePlots
    from workbench.ui.runs_panel import RunsPanel
    from workbench.ui.training_panel import TrainingPanel

TITLE = "CNN Workbench"
TABS = ("Layers", "Parameters", "Training curves", "Runs", "Analysis", "Compare")


def _placeholder(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setEnabled(False)
    return label


class MainWindow(QMainWindow):
    """The desktop app's window: architecture picker | layer tree, parameters, curves, runs | training panel."""

    engineReady = Signal()
    summaryShown = Signal(object)  # the ModelSummary now displayed

    def __init__(self, workspace: Path | None = None, settings: QSettings | None = None, *,
                 lazy: bool = False) -> None:
        super().__init__()
        from workbench.paths import default_workspace
        from workbench.ui import gc_guard

        gc_guard.install()  # the window starts worker threads: garbage must die in this thread

        self.settings = settings if settings is not None else QSettings()
        self.workspace = Path(workspace) if workspace is not None else (
            workspaces.startup_workspace(self.settings) or default_workspace())
        self.training_panel: TrainingPanel | None = None
        self.plots: LivePlots | None = None
        self.runs_panel: RunsPanel | None = None
        self.catalog: EngineCatalog | None = None
        self.views: analysis_window.AnalysisViews | None = None   # the Analysis tab and the Compare view
        self.setWindowTitle(TITLE)
        self.setObjectName("mainWindow")
        self.resize(1440, 880)

        self.arch_panel = ArchitecturePanel()
        self.summary_view = SummaryView()
        self.param_table = ParameterTable()
        self.worker = SummaryWorker(parent=self)
        self.loader = TaskRunner("engine-import", self)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("centerTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.summary_view, TABS[0])
        self.tabs.addTab(self.param_table, TABS[1])
        self.tabs.addTab(_placeholder("Live curves appear here once the engine has loaded."), TABS[2])
        self.tabs.addTab(_placeholder("Loading runs…"), TABS[3])
        for name in TABS[4:]:
            self.tabs.addTab(_placeholder(f"The {name} view appears once the engine has loaded."), name)
        self.setAcceptDrops(True)   # image files dropped on the window go to the Analysis tab's inspector

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
        window_menus.build_menus(self, TABS)

        self.router = SummaryRouter(self)
        self.summary_view.staleChanged.connect(self.param_table.set_pending)  # greyed with the layer tree
        self.loader.done.connect(self._on_engine_loaded)
        self.loader.failed.connect(self._on_engine_failed)
        self._restore_window()
        if not lazy:
            self._on_engine_loaded(import_engine())

    # --- actions -------------------------------------------------------------------------------------------
    open_workspace_action: QAction
    switch_workspace_action: QAction
    export_png_action: QAction
    export_csv_action: QAction
    predict_action: QAction
    find_action: QAction
    train_action: QAction
    stop_action: QAction
    pause_action: QAction

    def open_workspace(self) -> bool:
        """Show the workspace folder in the file manager."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.workspace)))

    def switch_workspace(self, workspace: Path | str | None = None) -> bool:
        """File → Open Workspace…: show another workspace's runs and store new runs there (None: ask)."""
        folder = Path(workspace) if workspace is not None else workspaces.ask_workspace(self)
        if folder is None:
            return False
        problem = workspaces.switch_workspace(self, folder)
        if problem:
            show_error(self, problem)
            return False
        self.statusBar().showMessage(f"Workspace: {self.workspace}", 5000)
        return True

    def export_plot_png(self, path: Path | str | None = None, plot: str | bool | None = False) -> Path | None:
        """File → Export plot as PNG (see window_menus.export_plot_png)."""
        return window_menus.export_plot_png(self, path, plot)

    def export_metrics_csv(self, path: Path | str | None = None) -> Path | None:
        """File → Export metrics as CSV (see window_menus.export_metrics_csv)."""
        return window_menus.export_metrics_csv(self, path)

    def start_training(self) -> None:
        """Ctrl+Return: start a run when the training panel allows it (else its status says why)."""
        if self.training_panel is not None:
            self.training_panel.start_training()

    def stop_training(self) -> None:
        """Esc: ask the run to stop (it checkpoints)."""
        if self.training_panel is not None:
            self.training_panel.request_stop()

    def predict_image(self, paths: list[Path] | None = None) -> int:
        """File → Predict image… (see analysis_window.predict_image); returns the inspector's request id."""
        return analysis_window.predict_image(self, paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        analysis_window.drag_enter(event)

    def dropEvent(self, event: QDropEvent) -> None:
        analysis_window.drop(self, event)

    def reset_layout(self) -> None:
        total = max(900, self.splitter.width())
        self.splitter.setSizes([int(total * 0.2), int(total * 0.55), int(total * 0.25)])
        self.summary_view.splitter.setSizes([600, 400])

    # --- engine start-up -------------------------------------------------------------------------------
    def load_engine(self) -> None:
        """Import the engine in the background (lazy start); `engineReady` fires when the panels are built."""
        if self.catalog is None and not self.loader.is_running():
            self.summary_state.setText("Loading the model zoo and torch…")
            self.loader.start(engine_import_task)

    def is_engine_ready(self) -> bool:
        return self.catalog is not None

    def _on_engine_failed(self, message: str, details: str) -> None:
        self.summary_state.setText("The engine could not be loaded.")
        show_error(self, f"The training engine could not be loaded: {message} Check that torch and torchvision "
                         "are installed (pip install -e .).", details)

    def _on_engine_loaded(self, catalog: EngineCatalog) -> None:
        if self.catalog is not None:
            return
        from workbench.models import resolve_options

        self.catalog = catalog
        self.summary_view.attach_chart()
        panel = self._attach_training()
        self.router.restoring = True
        try:
            self.arch_panel.set_catalog(catalog.specs, resolve_options, catalog.families)
            state = self.stored_dict("training/state")
            if state:
                panel.restore_state(state)
            arch_state = self.stored_dict("architecture/state")
            self.arch_panel.restore_state(arch_state)
            if not self.arch_panel.current_arch():
                self.arch_panel.select(DEFAULT_ARCH if DEFAULT_ARCH in self.arch_panel.names()
                                       else self.arch_panel.names()[0])
        finally:
            self.router.restoring = False
        if self.views is not None:
            self.views.compare.set_catalog(catalog.specs, catalog.families)
        self.tabs.setCurrentIndex(int(str(self.settings.value("window/tab", 0) or 0)))
        self.arch_panel.send_now()
        self.engineReady.emit()

    def _attach_training(self) -> TrainingPanel:
        """Build the training panel, the live plots and the runs list (they need the engine) and wire them:
        the panel reports its run's events; the window routes them to the plots and the runs list it owns."""
        from workbench.ui.plots import LivePlots
        from workbench.ui.runs_panel import RunsPanel
        from workbench.ui.training_panel import TrainingPanel

        panel, plots, runs = TrainingPanel(self.workspace), LivePlots(), RunsPanel(self.workspace)
        self.training_panel, self.plots, self.runs_panel = panel, plots, runs
        layout = self.right.layout()
        assert layout is not None
        layout.removeWidget(self._right_placeholder)
        self._right_placeholder.deleteLater()
        layout.addWidget(panel)
        for i, widget in ((2, plots), (3, runs)):
            self.tabs.removeTab(i)
            self.tabs.insertTab(i, widget, TABS[i])
        panel.datasetChanged.connect(self._on_dataset)
        panel.statusText.connect(self.training_state.setText)
        panel.deviceChanged.connect(lambda d: self.device_label.setText(f"Device: {d}"))
        panel.throughputChanged.connect(self._on_throughput)
        panel.bind_pause_action(self.pause_action)
        panel.errorOccurred.connect(lambda message, details: show_error(self, message, details))
        runs.errorOccurred.connect(lambda message, details: show_error(self, message, details))
        panel.runStarted.connect(lambda _start: self.tabs.setCurrentIndex(2))
        panel.processRunStarted.connect(self._follow_process_run)
        wire_training(panel, plots, runs)
        self.views, self._router = analysis_window.attach_views(self, panel, plots, runs,
                                                                self.summary_view.layerSelected, self.workspace)
        for i, view in ((4, self.views.analysis), (5, self.views.compare)):
            self.tabs.removeTab(i)
            self.tabs.insertTab(i, view, TABS[i])
        runs.refresh()
        panel.ensure_engine()  # now, not a loop turn later: the first selection then follows its data set
        return panel

    def _follow_process_run(self, run_id: str) -> None:
        """A run the panel launched in child processes: select it, so the curves follow it through the store."""
        if self.runs_panel is not None:
            self.runs_panel.refresh()
            self.runs_panel.select_runs([run_id])
        self.tabs.setCurrentIndex(2)

    # --- wiring --------------------------------------------------------------------------------------
    def _on_throughput(self, images_per_second: float) -> None:
        """The run's img/s in the status bar; NaN (a run is starting) shows none."""
        known = math.isfinite(images_per_second)
        self.throughput_label.setText(f"{images_per_second:,.0f} img/s" if known else "– img/s")

    def _on_dataset(self, info: dict) -> None:
        self.arch_panel.set_dataset(info)

    # --- settings ------------------------------------------------------------------------------------
    def stored_dict(self, key: str) -> dict:
        """A JSON object kept in the settings under `key` ({} when absent or unreadable)."""
        raw = self.settings.value(key, "")
        try:
            value = json.loads(str(raw)) if raw else {}
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
        if self.views is not None and self.views.compare.is_training():
            if not self.confirm_close():
                event.ignore()
                return
            self.views.compare.stop_training()
        self.save_settings()
        if self.views is not None:
            self.views.analysis.shutdown(5000)
            self.views.compare.shutdown(5000)
        self.worker.shutdown(500)  # summaries have nothing to save: wait briefly, then abandon them
        self.loader.abandon()      # the engine import only defines modules: never wait for it
        if panel is not None:
            panel.wait_stopped(2000)
        event.accept()
