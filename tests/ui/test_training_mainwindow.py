"""Training through the whole main window: Train on digits → curves, full progress, run listed completed."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractItemView, QProgressBar, QPushButton, QSpinBox

from workbench.ui.main_window import MainWindow


def _check_exports(w: MainWindow, folder: Path, run_id: str) -> None:
    """File → Export: the menu actions exist; with paths given no dialog opens."""
    texts = [a.text() for a in w.menuBar().actions()[0].menu().actions()]
    assert "Export plot as &PNG…" in texts and "Export metrics as &CSV…" in texts
    for plot in ("accuracyPlot", None):
        png = w.export_plot_png(folder / f"{plot}.png", plot)
        assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = w.export_metrics_csv(folder / "metrics.csv")  # no run selected: the last run, from the store
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["metric", "epoch", "step", "value"]
    stored = w.runs_panel.store.metrics(run_id)
    val = [(int(r[1]), float(r[3])) for r in rows[1:] if r[0] == "val_accuracy"]
    assert val == [(e, pytest.approx(v)) for e, _s, v in stored["val_accuracy"]] and len(val) == 2


def test_train_two_epochs_from_the_main_window(qtbot: Any, workspace: Path, settings: QSettings,
                                               tmp_path: Path) -> None:
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
    assert result.status == "completed", result
    progress = w.findChild(QProgressBar, "epochProgress")
    assert progress.value() == progress.maximum() == 2
    x, _ = w.plots.curves["val_accuracy"].getData()
    assert list(x) == [1.0, 2.0]
    runs = w.findChild(QAbstractItemView, "runsList")
    assert runs.rowCount() == 1 and runs.item(0, 0).text() == "completed"
    assert panel.etaLabel.text() == "ETA –" and w.device_label.text() == "Device: cpu"
    assert w.throughput_label.text().endswith("img/s") and w.throughput_label.text()[0].isdigit()
    _check_exports(w, tmp_path, result.run_id)
    assert w.close() and not panel.is_training()
