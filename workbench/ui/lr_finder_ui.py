""""Find LR": the learning-rate range test (`workbench.training.lr_find.find_lr`) off the GUI thread, with progress,
Cancel and the loss-vs-learning-rate curve in a small dialog; the suggestion fills the learning-rate field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QVBoxLayout, QWidget

from workbench.ui.tasks import Task, TaskRunner, TaskSink
from workbench.ui.training_run import device_locked

if TYPE_CHECKING:
    from workbench.training.config import TrainJob
    from workbench.training.control import TrainControl
    from workbench.training.lr_find import LrFinding

STEPS = 200


@dataclass(frozen=True)
class LrPoint:
    """One step of the range test: the learning rate and the smoothed loss."""

    lr: float
    loss: float


def lr_find_task(job: TrainJob, control: TrainControl, steps: int = STEPS) -> Task:
    """Qt-free: the range test on `job` (stopped through `control`); points go to the sink as LrPoint."""

    def task(sink: TaskSink) -> LrFinding:
        from workbench.training.lr_find import find_lr

        return find_lr(job, steps=steps, progress=sink.progress, control=control,
                       on_point=lambda lr, loss: sink.partial(LrPoint(lr, loss)))

    return task


class LrFinderDialog(QDialog):
    """`lrFinderDialog`: the curve as it grows (log-scaled learning rate), a progress bar and Cancel/Close."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self.setObjectName("lrFinderDialog")
        self.setWindowTitle("Find the learning rate")
        self.resize(520, 380)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("lrFinderPlot")
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "smoothed training loss")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", style=Qt.PenStyle.DashLine))
        self.marker.setVisible(False)
        self.plot.addItem(self.marker)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.message = QLabel("Trying learning rates from 1e-7 upwards on the training data…")
        self.message.setObjectName("lrFinderMessage")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def add_point(self, point: LrPoint) -> None:
        self.lrs.append(point.lr)
        self.losses.append(point.loss)
        self.curve.setData(self.lrs, self.losses)

    def show_finding(self, finding: LrFinding) -> None:
        """The whole curve, the suggestion marked, and Close."""
        self.lrs, self.losses = list(finding.lrs), list(finding.losses)
        self.curve.setData(self.lrs, self.losses)
        self.bar.setValue(100)
        if finding.suggested_lr is not None:
            self.marker.setPos(math.log10(finding.suggested_lr))
            self.marker.setVisible(True)
            self.message.setText(f"Suggested learning rate: {finding.suggested_lr:.3g} (a tenth of the rate at the "
                                 "loss's minimum); it is now in the learning-rate field.")
        else:
            self.message.setText("The loss never fell, so there is no suggestion: check the data and the model, or "
                                 "try a larger batch.")
        self.finish()

    def finish(self) -> None:
        self.buttons.setStandardButtons(QDialogButtonBox.StandardButton.Close)


class LrFinder(QObject):
    """Runs the range test and shows it; `suggested(lr)` when it ends with a suggestion."""

    suggested = Signal(float)
    failed = Signal(str, str)
    finished = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.runner = TaskRunner("lr-find", self)
        self.dialog: LrFinderDialog | None = None
        self.finding: LrFinding | None = None
        self.control: TrainControl | None = None
        self.runner.partial.connect(self._on_point)
        self.runner.progressed.connect(self._on_progress)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)

    def is_running(self) -> bool:
        return self.runner.is_running()

    def start(self, job: TrainJob, steps: int | None = None) -> None:
        """Start the test on `job` and open the dialog."""
        if self.runner.is_running():
            return
        from workbench.training.control import TrainControl

        self.finding = None
        self.control = control = TrainControl()
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
        self.dialog = dialog = LrFinderDialog(self._parent)
        dialog.buttons.rejected.connect(self.cancel)
        dialog.buttons.rejected.connect(dialog.close)
        dialog.show()
        self.runner.start(device_locked(lr_find_task(job, control, steps or STEPS)), on_cancel=control.stop)

    def cancel(self) -> None:
        if self.runner.is_running():
            self.runner.cancel()

    def wait(self, timeout_ms: int) -> bool:
        return self.runner.wait(timeout_ms)

    @Slot(object)
    def _on_point(self, point: Any) -> None:
        if isinstance(point, LrPoint) and self.dialog is not None:
            self.dialog.add_point(point)

    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if self.dialog is not None:
            if 0 <= fraction <= 1:
                self.dialog.bar.setValue(round(100 * fraction))
            if stage != "Finding the learning rate":
                self.dialog.message.setText(f"{stage}…")

    @Slot(object)
    def _on_done(self, finding: Any) -> None:
        from workbench.training.lr_find import LrFinding

        if not isinstance(finding, LrFinding):   # stopped before the data had loaded (NotStarted)
            return
        self.finding = finding
        if finding.cancelled:
            if self.dialog is not None:
                self.dialog.message.setText("Cancelled; the learning rate was left as it was.")
                self.dialog.finish()
            return
        if self.dialog is not None:
            self.dialog.show_finding(finding)
        if finding.suggested_lr is not None:
            self.suggested.emit(float(finding.suggested_lr))

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        if self.dialog is not None:
            self.dialog.message.setText(message)
            self.dialog.finish()
        self.failed.emit(message, details)

    @Slot()
    def _on_finished(self) -> None:
        self.control = None
        self.finished.emit()
