"""How the main window hosts the Analysis tab and the Compare view: building and wiring them, File → Predict
image…, and image files dropped on the window. Kept here so main_window.py only calls in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QWidget

from workbench.ui.dialogs import show_error

if TYPE_CHECKING:
    from workbench.models.summary import LayerRow
    from workbench.training.events import FitResult
    from workbench.ui.analysis_tab import AnalysisTab
    from workbench.ui.compare_view import CompareView
    from workbench.ui.main_window import MainWindow
    from workbench.ui.plots import LivePlots
    from workbench.ui.runs_panel import RunsPanel
    from workbench.ui.training_panel import TrainingPanel

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


@dataclass
class AnalysisViews:
    """The two views once built (after the engine has loaded)."""

    analysis: AnalysisTab
    compare: CompareView


def image_paths(urls: list[QUrl]) -> list[Path]:
    """The local image files among dropped URLs (by suffix)."""
    paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
    return [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]


class AnalysisRouter(QObject):
    """Routes the window's signals to the two views (bound slots: Qt drops them with either side)."""

    def __init__(self, window: QWidget, views: AnalysisViews, panel: TrainingPanel, runs: RunsPanel) -> None:
        super().__init__(window)
        self.window, self.views, self.panel, self.runs = window, views, panel, runs

    @Slot()
    def runs_selected(self) -> None:
        ids = self.runs.selected_run_ids()
        if ids:
            self.views.analysis.set_run(ids[0])

    @Slot(object)
    def run_finished(self, result: FitResult) -> None:
        if result.run_id and result.epochs_completed > 0:
            self.views.analysis.run_changed(result.run_id)
            self.views.analysis.set_run(result.run_id)

    @Slot(object)
    def layer_selected(self, row: LayerRow) -> None:
        self.views.analysis.set_layer(row.name)

    @Slot(bool)
    def experiment_training(self, running: bool) -> None:
        # The training panel trains one run at a time itself; while Train all's experiment runs it must not
        # start another (its settings are the experiment's): Train, Resume and Ctrl+Return say so.
        self.panel.set_blocked("Train all (Compare view) is training; stop it there." if running else "")

    @Slot(str, str)
    def error(self, message: str, details: str) -> None:
        show_error(self.window, message, details)


def attach_views(window: QWidget, panel: TrainingPanel, plots: LivePlots, runs: RunsPanel,
                 summary_layer_signal: object, workspace: Path) -> tuple[AnalysisViews, AnalysisRouter]:
    """Build the Analysis tab and the Compare view and wire them to the panel, plots, runs list and layer tree."""
    from workbench.ui.analysis_tab import AnalysisTab
    from workbench.ui.compare_view import CompareView
    from workbench.ui.training_wiring import wire_run_events

    views = AnalysisViews(AnalysisTab(workspace), CompareView(workspace))
    router = AnalysisRouter(window, views, panel, runs)
    runs.runsList.itemSelectionChanged.connect(router.runs_selected)
    panel.runFinished.connect(router.run_finished)
    summary_layer_signal.connect(router.layer_selected)  # type: ignore[attr-defined]
    views.analysis.errorOccurred.connect(router.error)
    compare = views.compare
    compare.attach_training(panel)
    compare.errorOccurred.connect(router.error)
    compare.trainingChanged.connect(router.experiment_training)
    wire_run_events(compare, plots, runs)  # Train all's runs show like the panel's own
    compare.runFinished.connect(router.run_finished)
    return views, router


def predict_image(window: MainWindow, paths: list[Path] | None = None) -> int:
    """File → Predict image… (and dropped files): ask for image files (unless `paths`) and explain the first with
    the model of the analysed run (else the selected, else the newest run) in the Analysis tab; returns the
    inspector's request id (0 when cancelled or nothing can run yet)."""
    views = window.views
    if views is None:
        show_error(window, "The analysis tools are still loading; try again in a moment.")
        return 0
    if paths is None:
        names, _ = QFileDialog.getOpenFileNames(window, "Predict image", str(Path.home()), IMAGE_FILTER)
        paths = [Path(n) for n in names]
    if not paths:
        return 0
    window.tabs.setCurrentWidget(views.analysis)
    runs = window.runs_panel
    if views.analysis.run_id() is None and runs is not None:
        selected = runs.selected_run_ids()
        run_id = selected[0] if selected else runs.newest_run_id()
        if run_id:
            views.analysis.show_run(run_id)
    return views.analysis.inspect_files(paths)


def drag_enter(event: QDragEnterEvent) -> None:
    """Accept drags that carry at least one image file."""
    if event.mimeData().hasUrls() and image_paths(event.mimeData().urls()):
        event.acceptProposedAction()


def drop(window: MainWindow, event: QDropEvent) -> int:
    """Image files dropped on the window go to the inspector (as File → Predict image…)."""
    paths = image_paths(event.mimeData().urls()) if event.mimeData().hasUrls() else []
    if not paths:
        return 0
    event.acceptProposedAction()
    return predict_image(window, paths)
