"""Epoch and batch progress bars with an ETA: idle (counting to the settings), running, ended."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

NO_ETA = "ETA –"


def format_eta(seconds: float | None) -> str:
    """h:mm:ss or m:ss; "" for a value that is not a finite number."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class RunProgress(QWidget):
    """`epochProgress`, `batchProgress` and `etaLabel` (stable object names)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epochProgress = QProgressBar()
        self.epochProgress.setObjectName("epochProgress")
        self.epochProgress.setFormat("epoch %v / %m")
        self.batchProgress = QProgressBar()
        self.batchProgress.setObjectName("batchProgress")
        self._batches = 1                  # batches per epoch of the run in flight
        self.etaLabel = QLabel(NO_ETA)
        self.etaLabel.setObjectName("etaLabel")
        row = QHBoxLayout()
        row.addWidget(self.batchProgress, 1)
        row.addWidget(self.etaLabel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.epochProgress)
        layout.addLayout(row)
        self.idle(None, None)

    def idle(self, epochs: object, max_batches: object) -> None:
        """Between runs: count to the epochs setting, and to max batches when one is set (values as typed:
        anything that is not a positive whole number is not counted)."""
        self.epochProgress.setRange(0, epochs if isinstance(epochs, int) and epochs > 0 else 1)
        self.epochProgress.setValue(0)
        batches = max_batches if isinstance(max_batches, int) and max_batches > 0 else None
        self.batchProgress.setRange(0, batches or 1)
        known = batches is not None
        self.batchProgress.setValue(0)
        self.batchProgress.setFormat("batch %v / %m" if known else "batch –")
        self.etaLabel.setText(NO_ETA)

    def start(self, epochs: int, start_epoch: int = 0, batches: int | None = None) -> None:
        self._batches = max(1, int(batches or 1))
        self.epochProgress.setRange(0, max(1, int(epochs)))
        self.epochProgress.setValue(int(start_epoch))
        self.batchProgress.setRange(0, max(1, int(batches or 1)))
        self.batchProgress.setValue(0)
        self.batchProgress.setFormat("batch %v / %m" if batches else "batch –")
        self.etaLabel.setText(NO_ETA)

    def busy(self, epochs: int | None = None, start_epoch: int = 0) -> None:
        """Between Train and the first finished batch: the batch bar runs indeterminately (nothing of an earlier
        run is shown); the epoch bar counts to `epochs` when given."""
        if epochs is not None:
            self.epochProgress.setRange(0, max(1, int(epochs)))
            self.epochProgress.setValue(int(start_epoch))
        self.batchProgress.setRange(0, 0)
        self.batchProgress.setValue(0)
        self.etaLabel.setText(NO_ETA)

    def is_busy(self) -> bool:
        """True while the batch bar is indeterminate (no batch has finished yet)."""
        return self.batchProgress.maximum() == 0

    def step(self, batch: int, batches: int, eta_seconds: float) -> None:
        batches = max(1, int(batches))
        if self.batchProgress.maximum() != batches:
            self.batchProgress.setRange(0, batches)
        self.batchProgress.setFormat("batch %v / %m")
        self.batchProgress.setValue(min(batches, int(batch)))
        self.etaLabel.setText(f"ETA {format_eta(eta_seconds)}")

    def epoch_done(self, epoch: int) -> None:
        if self.is_busy():  # an epoch so quick that no step event came: the batch bar still knows its length
            self.batchProgress.setRange(0, self._batches)
            self.batchProgress.setFormat("batch %v / %m")
        self.batchProgress.setValue(self.batchProgress.maximum())  # the engine may skip the last step event
        self.epochProgress.setValue(min(self.epochProgress.maximum(), int(epoch)))

    def ended(self) -> None:
        """The run is over: the bars keep where it got to, the ETA is cleared."""
        if self.is_busy():  # it ended before its first batch
            self.batchProgress.setRange(0, 1)
            self.batchProgress.setFormat("batch –")
        self.etaLabel.setText(NO_ETA)
