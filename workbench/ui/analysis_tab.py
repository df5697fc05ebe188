"""The Analysis tab: a run's confusion matrix (replayable by epoch), per-class accuracy, the images behind a
cell, and an inspector that explains one image (top-5, Grad-CAM, feature maps, filters).

Every computation runs off the GUI thread through three `LatestTask`s (evaluation, thumbnails, inspection), each
delivering only the answer to the latest request. The tab itself only does small NumPy work on the
`Evaluation`'s arrays (picking a cell, sorting, the history's matrix at an epoch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.analysis.metrics import class_metrics
from workbench.ui.analysis_confusion import ConfusionMatrixView
from workbench.ui.analysis_inspector import ImageInspector
from workbench.ui.analysis_session import (
    SORT_MODES,
    Inspection,
    RunAnalysis,
    SessionCache,
    Thumbnails,
    describe_missing_history,
    gallery_captions,
    gallery_order,
    inspect_file_task,
    inspect_sample_task,
    load_task,
    thumbnails_task,
)
from workbench.ui.analysis_widgets import PerClassChart, SampleGallery, enable_history_sorts, sort_combo
from workbench.ui.latest_task import LatestTask

if TYPE_CHECKING:
    from workbench.analysis.evaluate import Evaluation

NO_RUN = "Select a run in the Runs tab (or finish one) to analyse it."


class AnalysisTab(QWidget):
    """See the module docstring. `runShown(run_id)`, `galleryFilled()`, `inspected(Inspection)`,
    `errorOccurred(message, details)` (for problems the user caused, e.g. an unreadable image)."""

    runShown = Signal(str)
    galleryFilled = Signal()
    inspected = Signal(object)
    errorOccurred = Signal(str, str)

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("analysisTab")
        self.cache = SessionCache(workspace)
        self.loads = LatestTask("analysis-load", self)
        self.thumbs = LatestTask("analysis-thumbnails", self)
        self.inspects = LatestTask("analysis-inspect", self)
        self._analysis: RunAnalysis | None = None
        self._run_id: str | None = None         # the run shown or being loaded
        self._wanted: str | None = None         # a run to show when the tab becomes visible
        self._cell: tuple[int, int] | None = None
        self._layer: str | None = None          # from the layer tree; None: the last convolution
        self._target: tuple[str, int | str] | None = None   # ("sample", index) or ("file", path) inspected
        self._build()
        self.loads.done.connect(self._on_loaded)
        self.loads.failed.connect(self._on_load_failed)
        self.loads.progressed.connect(self._on_load_progress)
        self.thumbs.done.connect(self._on_thumbnails)
        self.inspects.done.connect(self._on_inspected)
        self.inspects.failed.connect(self._on_inspect_failed)

    def _build(self) -> None:
        self.runLabel = QLabel(NO_RUN)
        self.runLabel.setObjectName("analysisRunLabel")
        self.runLabel.setWordWrap(True)
        self.checkpointCombo = QComboBox()
        self.checkpointCombo.setObjectName("checkpointCombo")
        self.checkpointCombo.addItem("best checkpoint", "best")
        self.checkpointCombo.addItem("last checkpoint", "last")
        self.checkpointCombo.currentIndexChanged.connect(self._on_checkpoint)
        self.normaliseCheck = QCheckBox("Row %")
        self.normaliseCheck.setObjectName("normaliseCheck")
        self.normaliseCheck.setToolTip("Show each row as percentages of its true class (else image counts).")
        self.epochSlider = QSlider(Qt.Orientation.Horizontal)
        self.epochSlider.setObjectName("epochSlider")
        self.epochSlider.setEnabled(False)
        self.epochSlider.valueChanged.connect(self._on_epoch)
        self.epochLabel = QLabel("")
        self.epochLabel.setObjectName("epochLabel")
        self.epochLabel.setWordWrap(True)
        self.matrix = ConfusionMatrixView()
        self.matrix.cellClicked.connect(self._on_cell)
        self.normaliseCheck.toggled.connect(self.matrix.set_normalised)
        self.chart = PerClassChart()
        self.gallery = SampleGallery()
        self.gallery.sampleChosen.connect(self.inspect_sample)
        self.galleryLabel = QLabel("Click a cell of the matrix to see its images.")
        self.galleryLabel.setObjectName("galleryLabel")
        self.galleryLabel.setWordWrap(True)
        self.sortCombo = sort_combo()
        self.sortCombo.currentIndexChanged.connect(self._refill_gallery)
        self.inspector = ImageInspector()

        head = QHBoxLayout()
        head.addWidget(self.runLabel, 1)
        head.addWidget(self.checkpointCombo)
        head.addWidget(self.normaliseCheck)
        epochs = QHBoxLayout()
        epochs.addWidget(QLabel("Epoch"))
        epochs.addWidget(self.epochSlider, 1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(epochs)
        left_layout.addWidget(self.epochLabel)
        self.leftSplitter = QSplitter(Qt.Orientation.Vertical)
        self.leftSplitter.addWidget(self.matrix)
        self.leftSplitter.addWidget(self.chart)
        self.leftSplitter.setStretchFactor(0, 3)
        self.leftSplitter.setStretchFactor(1, 1)
        left_layout.addWidget(self.leftSplitter, 1)
        gallery = QWidget()
        gallery_layout = QVBoxLayout(gallery)
        gallery_layout.setContentsMargins(0, 0, 0, 0)
        sort_row = QHBoxLayout()
        sort_row.addWidget(self.galleryLabel, 1)
        sort_row.addWidget(self.sortCombo)
        gallery_layout.addLayout(sort_row)
        gallery_layout.addWidget(self.gallery, 1)
        self.rightSplitter = QSplitter(Qt.Orientation.Vertical)
        self.rightSplitter.addWidget(gallery)
        self.rightSplitter.addWidget(self.inspector)
        self.rightSplitter.setStretchFactor(0, 2)
        self.rightSplitter.setStretchFactor(1, 3)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.rightSplitter)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        for pane in (left, gallery, self.inspector, self.chart):   # the window stays usable at 1024 px wide
            pane.setMinimumWidth(100)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(head)
        layout.addWidget(self.splitter, 1)
        self.matrix.clear(NO_RUN)

    # --- test and window API ------------------------------------------------------------------------------
    def analysis(self) -> RunAnalysis | None:
        """The run evaluation shown (None while loading or before the first)."""
        return self._analysis

    def run_id(self) -> str | None:
        return self._run_id

    def checkpoint(self) -> str:
        return str(self.checkpointCombo.currentData())

    def confusion(self) -> list[list[int]]:
        """The confusion matrix shown (at the slider's epoch), as counts."""
        return self.matrix.counts().tolist()

    def select_cell(self, true_index: int, predicted_index: int) -> None:
        """As a click on a matrix cell: fill the gallery with that cell's images."""
        self.matrix.select(true_index, predicted_index)
        self._on_cell(true_index, predicted_index)

    def set_sort(self, mode: str) -> None:
        """Order the gallery "by loss", "by learned last" or "by forgotten most" (a SORT_MODES name)."""
        self.sortCombo.setCurrentIndex(SORT_MODES.index(mode))

    def set_run(self, run_id: str | None) -> None:
        """The runs list's selection: shown now when the tab is visible, else when it is next shown."""
        if not run_id:
            return
        if self.isVisible():
            self.show_run(run_id)
        else:
            self._wanted = run_id

    def show_run(self, run_id: str, checkpoint: str | None = None) -> int:
        """Evaluate `run_id` (off the GUI thread) and show it; returns the request id (0: already shown)."""
        self._wanted = None
        if checkpoint is not None and checkpoint != self.checkpoint():
            self.checkpointCombo.blockSignals(True)
            self.checkpointCombo.setCurrentIndex(self.checkpointCombo.findData(checkpoint))
            self.checkpointCombo.blockSignals(False)
        if run_id == self._run_id and (self.loads.is_busy() or (
                self._analysis is not None and self._analysis.checkpoint == self.checkpoint())):
            return 0
        self._run_id = run_id
        self._analysis = None
        self._cell = None
        self.thumbs.invalidate()
        self.matrix.clear(f"Evaluating run {run_id}…")
        self.chart.clear()
        self.gallery.set_samples([], [], [])
        self.galleryLabel.setText("Click a cell of the matrix to see its images.")
        self.runLabel.setText(f"Run {run_id}: evaluating the {self.checkpoint()} checkpoint…")
        return self.loads.request(load_task(self.cache, run_id, self.checkpoint()))

    def set_workspace(self, workspace: Path) -> None:
        """Another workspace: forget the runs restored from this one and show nothing until a run is picked."""
        self.loads.invalidate()
        self.thumbs.invalidate()
        self.inspects.invalidate()
        self.cache = SessionCache(workspace)
        self._run_id = self._wanted = None
        self._analysis = None
        self._cell = None
        self.matrix.clear("Pick a run in the Runs tab to see what it learned.")
        self.chart.clear()
        self.gallery.set_samples([], [], [])
        self.runLabel.setText("")

    def run_changed(self, run_id: str) -> None:
        """A run's checkpoints changed (it was trained on): forget it, and show it again if it is shown."""
        self.cache.forget(run_id)
        if run_id == self._run_id:
            self._run_id = None
            self.set_run(run_id)

    def set_layer(self, name: str | None) -> None:
        """The layer tree's selection: Grad-CAM and feature maps of this layer ("" / None: the last conv)."""
        name = name or None
        if name == self._layer:
            return
        self._layer = name
        self._reinspect()

    def inspect_sample(self, index: int) -> int:
        """Explain validation sample `index` of the shown run; returns the request id (0: no run)."""
        self._target = ("sample", int(index))
        return self._reinspect()

    def inspect_file(self, path: Path | str) -> int:
        """Explain an image file with the shown run's model; returns the request id (0: no run shown)."""
        self._target = ("file", str(path))
        return self._reinspect()

    def inspect_files(self, paths: Sequence[Path | str]) -> int:
        """Drag and drop / File → Predict image…: explain the first image of `paths`."""
        return self.inspect_file(paths[0]) if paths else 0

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the background work (window closing); True when no thread is left."""
        return all([task.shutdown(timeout_ms) for task in (self.loads, self.thumbs, self.inspects)])  # noqa: C419 (wait for all)

    # --- loading ------------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._wanted:
            self.show_run(self._wanted)

    @Slot(int)
    def _on_checkpoint(self, _index: int) -> None:
        if self._run_id:
            run_id, self._run_id = self._run_id, None
            self.show_run(run_id)

    @Slot(int, str, float)
    def _on_load_progress(self, _rid: int, stage: str, fraction: float) -> None:
        self.matrix.clear(f"Run {self._run_id}: {stage}" + (f" {100 * fraction:.0f} %" if fraction >= 0 else ""))

    @Slot(int, object)
    def _on_loaded(self, _rid: int, analysis: RunAnalysis) -> None:
        self._analysis = analysis
        ev = analysis.evaluation
        self.checkpointCombo.blockSignals(True)   # "best" may have fallen back to "last"
        self.checkpointCombo.setCurrentIndex(self.checkpointCombo.findData(analysis.checkpoint))
        self.checkpointCombo.blockSignals(False)
        epochs = analysis.history_epochs
        self.epochSlider.blockSignals(True)
        self.epochSlider.setRange(0, len(epochs))      # the last position is the checkpoint itself
        self.epochSlider.setValue(len(epochs))
        self.epochSlider.setEnabled(bool(epochs))
        self.epochSlider.blockSignals(False)
        missing = describe_missing_history(analysis)
        enable_history_sorts(self.sortCombo, not missing)
        self.epochSlider.setToolTip(missing or "Replay the confusion matrix through the run's recorded epochs.")
        self.runLabel.setText(f"Run {analysis.run_id}: {ev.arch} on {ev.dataset}, {analysis.checkpoint} checkpoint "
                              f"(epoch {ev.epoch}) — {ev.num_samples} validation images, accuracy "
                              f"{100 * ev.accuracy:.2f} %, loss {ev.loss:.4f}")
        self._show_epoch(missing)
        self.runShown.emit(analysis.run_id)
        if self._target is not None and self._target[0] == "file":
            self._reinspect()

    @Slot(int, str, str)
    def _on_load_failed(self, _rid: int, message: str, _details: str) -> None:
        self.matrix.clear(message)
        self.runLabel.setText(f"Run {self._run_id}: {message}")

    # --- the matrix at an epoch ---------------------------------------------------------------------------
    def _epoch(self) -> int | None:
        """The history epoch the slider shows (None: the checkpoint)."""
        a = self._analysis
        if a is None or not a.history_epochs or self.epochSlider.value() >= len(a.history_epochs):
            return None
        return a.history_epochs[self.epochSlider.value()]

    def _state(self) -> tuple[Evaluation, np.ndarray, np.ndarray, bool]:
        """(evaluation, predictions, losses, at the checkpoint) for the slider's position."""
        assert self._analysis is not None
        ev = self._analysis.evaluation
        epoch = self._epoch()
        if epoch is None or ev.history is None:
            return ev, ev.predictions, ev.losses, True
        row = ev.history.row(epoch)
        return ev, ev.history.predictions[row], ev.history.losses[row], False

    @Slot(int)
    def _on_epoch(self, _value: int) -> None:
        self._show_epoch()

    def _show_epoch(self, missing: str = "") -> None:
        a = self._analysis
        if a is None:
            return
        ev = a.evaluation
        epoch = self._epoch()
        if epoch is None or ev.history is None:
            counts = ev.confusion
            self.epochLabel.setText(missing or f"Showing the {a.checkpoint} checkpoint (epoch {ev.epoch}); move "
                                    f"the slider to replay epochs {a.history_epochs[0]}–{a.history_epochs[-1]}.")
        else:
            counts = ev.history.confusion_at(epoch, ev.labels, ev.num_classes)
            acc = np.trace(counts) / max(1, counts.sum())
            self.epochLabel.setText(f"Epoch {epoch} of {a.history_epochs[-1]} (recorded during training): "
                                    f"accuracy {100 * acc:.2f} %.")
        self.matrix.set_matrix(counts, ev.classes)
        self.chart.set_recall(class_metrics(counts).recall, ev.classes)
        if self._cell is not None:
            self._refill_gallery()

    # --- the gallery --------------------------------------------------------------------------------------
    @Slot(int, int)
    def _on_cell(self, true_index: int, predicted_index: int) -> None:
        if self._analysis is None:
            return
        self._cell = (true_index, predicted_index)
        self._refill_gallery()

    @Slot()
    def _refill_gallery(self) -> None:
        a, cell = self._analysis, self._cell
        if a is None or cell is None:
            return
        ev, predictions, losses, at_checkpoint = self._state()
        t, p = cell
        members = np.flatnonzero((ev.labels == t) & (predictions == p))
        mode = str(self.sortCombo.currentData())
        order = gallery_order(members, losses, mode, a.first_correct, a.forgotten)
        names = ev.classes
        captions, tips = gallery_captions(a, order, predictions, losses, at_checkpoint)
        self.gallery.set_samples(order.tolist(), captions, tips)
        when = "" if at_checkpoint else f" at epoch {self._epoch()}"
        self.galleryLabel.setText(f"{len(order)} image(s) of class {names[t]} predicted as {names[p]}{when}.")
        if len(order):
            self.thumbs.request(thumbnails_task(self.cache, a.run_id, a.checkpoint, order.tolist()))
        else:
            self.thumbs.invalidate()
            self.galleryFilled.emit()

    @Slot(int, object)
    def _on_thumbnails(self, _rid: int, thumbs: Thumbnails) -> None:
        self.gallery.set_thumbnails(thumbs)
        self.galleryFilled.emit()

    # --- the inspector ------------------------------------------------------------------------------------
    def _reinspect(self) -> int:
        target = self._target
        if target is None:
            return 0
        a = self._analysis
        if a is None:
            if target[0] == "file" and not self.loads.is_busy():
                self.errorOccurred.emit("Select a run in the Runs tab first: its model predicts the image.", "")
            return 0
        kind, what = target
        if kind == "sample":
            caption = a.evaluation.sources[int(what)]
            task = inspect_sample_task(self.cache, a.run_id, a.checkpoint, int(what), self._layer)
        else:
            caption = Path(str(what)).name
            task = inspect_file_task(self.cache, a.run_id, a.checkpoint, str(what), self._layer)
        self.inspector.set_pending(caption)
        return self.inspects.request(task)

    @Slot(int, object)
    def _on_inspected(self, _rid: int, inspection: Inspection) -> None:
        self.inspector.set_inspection(inspection)
        self.inspected.emit(inspection)

    @Slot(int, str, str)
    def _on_inspect_failed(self, _rid: int, message: str, details: str) -> None:
        self.inspector.set_error(message)
        if self._target is not None and self._target[0] == "file":
            self.errorOccurred.emit(message, details)
