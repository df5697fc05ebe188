"""Epoch and batch progress bars with an ETA: idle (counting to the settings), running, ended."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

NO_ETA = "ETA –"


def format_eta(seconds: Any) -> str:
    """h:mm:ss or m:ss; "" for a value that is not a number."""
    try:
        s = max(0, int(float(seconds)))
    except (TypeError, ValueError):
        return ""
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

    def idle(self, epochs: Any, max_batches: Any) -> None:
        """Between runs: count to the epochs setting, and to max batches when one is set."""
        self.epochProgress.setRange(0, epochs if isinstance(epochs, int) and epochs > 0 else 1)
        self.epochProgress.setValue(0)
        known = isinstance(max_batches, int) and max_batches > 0
        self.batchProgress.setRange(0, max_batches if known else 1)
        self.batchProgress.setValue(0)
        self.batchProgress.setFormat("batch %v / %m" if known else "batch –")
        self.etaLabel.setText(NO_ETA)

    def start(self, epochs: int, start_epoch: int = 0, batches: int | None = None) -> None:
        self.epochProgress.setRange(0, max(1, int(epochs)))
        self.epochProgress.setValue(int(start_epoch))
        self.batchProgress.setRange(0, max(1, int(batches or 1)))
        self.batchProgress.setValue(0)
        self.batchProgress.setFormat("batch %v / %m" if batches else "batch –")
        self.etaLabel.setText(NO_ETA)

    def step(self, batch: int, batches: int, eta_seconds: Any) -> None:
        batches = max(1, int(batches))
        if self.batchProgress.maximum() != batches:
            self.batchProgress.setRange(0, batches)
        self.batchProgress.setFormat("batch %v / %m")
        self.batchProgress.setValue(min(batches, int(batch)))
        self.etaLabel.setText(f"ETA {format_eta(eta_seconds)}")

    def epoch_done(self, epoch: int) -> None:
        self.batchProgress.setValue(self.batchProgress.maximum())  # the engine may skip the last step event
        self.epochProgress.setValue(min(self.epochProgress.maximum(), int(epoch)))

    def ended(self) -> None:
        """The run is over: the bars keep where it got to, the ETA is cleared."""
        self.etaLabel.setText(NO_ETA)
