"""Training through the whole main window: Train on digits → curves, full progress, run listed completed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QProgressBar, QPushButton, QSpinBox, QTableWidget

from workbench.ui.main_window import MainWindow


def test_train_two_epochs_from_the_main_window(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    w = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.training_panel is not None, timeout=60_000)
    with qtbot.waitSignal(w.summaryShown, timeout=30_000):
        w.arch_panel.select("lenet")
    panel = w.training_panel
    panel.picker.select("digits")
    panel.settings.set_values({"batch_size": 64, "max_batches": 20, "device": "cpu"})
    w.findChild(QSpinBox, "epochsSpin").setValue(2)
    train = w.findChild(QPushButton, "trainButton")
    qtbot.waitUntil(train.isEnabled, timeout=10_000)
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as finished:
        train.click()
    result = finished.args[0]
    assert result["status"] == "completed", result
    progress = w.findChild(QProgressBar, "epochProgress")
    assert progress.value() == progress.maximum() == 2
    x, _ = panel.plots.curves["val_accuracy"].getData()
    assert list(x) == [1.0, 2.0]
    runs = w.findChild(QTableWidget, "runsList")
    assert runs.rowCount() == 1 and runs.item(0, 0).text() == "completed"
    assert w.close() and not panel.is_training()
