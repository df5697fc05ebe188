"""Main window behaviour: layout at a small size, status bar labels, block reason, idle progress, recommended
settings and File → Export."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtWidgets import QProgressBar, QPushButton

from workbench.runs import RunStatus
from workbench.training.events import FitStart, StepMetrics
from workbench.ui.main_window import MainWindow
from workbench.ui.training_panel import ending


@pytest.fixture
def window(lenet_window: MainWindow) -> MainWindow:
    return lenet_window


def _inside_window(w: MainWindow, widget: Any) -> bool:
    rect = QRect(widget.mapTo(w, QPoint(0, 0)), widget.size())
    return widget.isVisible() and w.rect().contains(rect) and not widget.visibleRegion().isEmpty()


def test_train_controls_stay_visible_at_1024x640(window: MainWindow, qtbot: Any) -> None:
    window.resize(1024, 640)
    window.show()
    qtbot.waitExposed(window)
    assert window.size() == QSize(1024, 640)
    for name in ("trainButton", "stopButton", "pauseButton"):
        assert _inside_window(window, window.findChild(QPushButton, name)), name
    for name in ("epochProgress", "batchProgress"):
        assert _inside_window(window, window.findChild(QProgressBar, name)), name
    panel = window.training_panel
    assert _inside_window(window, panel.statusLabel)
    # Only the settings scroll; the form is not stretched to fill the scroll area's height.
    assert panel.settingsScroll.isAncestorOf(panel.settings)
    assert not panel.settingsScroll.isAncestorOf(panel.trainButton)
    assert panel.settings.height() <= panel.settings.sizeHint().height() + 2


def test_status_bar_keeps_device_and_throughput(window: MainWindow) -> None:
    panel = window.training_panel
    panel._on_event(FitStart(run_id="r1", arch="lenet", dataset="digits", device="cpu", epochs=3, start_epoch=0,
                             batches_per_epoch=10, train_size=100, val_size=10, num_classes=10, amp="off",
                             channels_last=False))
    panel._on_event(StepMetrics(run_id="r1", epoch=1, step=2, batch=2, batches=10, loss=1.0, accuracy=0.5, lr=0.1,
                                images_per_second=1234.0, eta_seconds=65, time=0.0))
    window.statusBar().showMessage("A temporary message")
    panel._set_status("Something else happened.")
    assert window.device_label.text() == "Device: cpu" and window.device_label.isVisibleTo(window)
    assert window.throughput_label.text() == "1,234 img/s"
    assert window.training_state.text() == "Something else happened."
    done = dataclasses.replace(ending(RunStatus.COMPLETED, "Completed 3 epoch(s).", "r1"), epochs_completed=3,
                               best_val_accuracy=0.9)
    panel._on_done(done)
    text = panel.statusLabel.text()
    assert text.lower().count("complete") == 1 and "90.00 %" in text
    panel._on_done(ending(RunStatus.STOPPED, "Stopped by request in epoch 1 after 2 batch(es).", "r1"))
    assert panel.statusLabel.text().lower().count("stopped") == 1


def test_block_reason_shows_in_the_status_line(window: MainWindow) -> None:
    panel = window.training_panel
    panel.settings.set_values({"lr": -1.0})
    reason = panel.train_block_reason()
    assert reason and not panel.trainButton.isEnabled()
    assert reason in panel.statusLabel.text() and panel.trainButton.toolTip() == reason
    panel.settings.set_values({"lr": 0.01})
    assert panel.trainButton.isEnabled() and panel.statusLabel.text() == "Ready."


def test_idle_progress_follows_the_epochs_setting(window: MainWindow) -> None:
    panel = window.training_panel
    panel.settings.set_values({"epochs": 7, "max_batches": None})
    assert (panel.epochProgress.value(), panel.epochProgress.maximum()) == (0, 7)
    assert panel.epochProgress.text() == "epoch 0 / 7" and panel.batchProgress.text() == "batch –"
    panel.settings.set_values({"max_batches": 12})
    assert panel.batchProgress.text() == "batch 0 / 12"
    assert panel.etaLabel.text() == "ETA –"


def test_settings_take_the_recommended_config_until_edited(window: MainWindow, qtbot: Any) -> None:
    from workbench.training.config import recommended_config

    form = window.training_panel.settings
    assert form.raw_values() == dataclasses.asdict(recommended_config("lenet", "digits"))
    form.widgets["lr"].setText("0.002")  # a user edit
    with qtbot.waitSignal(window.summaryShown, timeout=30_000):
        window.arch_panel.select("resnet18")
    expected = dataclasses.asdict(recommended_config("resnet18", "digits", {"lr": 0.002}))
    assert form.raw_values() == expected and form.value_of("lr") == 0.002
    assert form.edited_fields == {"lr"}


def test_layer_table_and_charts_stay_usable_at_1024x640(window: MainWindow, qtbot: Any) -> None:
    from workbench.ui.summary_view import CHART_MIN_HEIGHT, TREE_MIN_HEIGHT

    window.resize(1024, 640)
    window.show()
    qtbot.waitExposed(window)
    view = window.summary_view
    window.tabs.setCurrentWidget(view)
    assert window.height() == 640
    assert _inside_window(window, view.tree)
    assert view.tree.height() >= TREE_MIN_HEIGHT and view.chart.height() >= CHART_MIN_HEIGHT
    rows = view.tree.viewport().height() // view.tree.sizeHintForRow(0)
    assert rows >= 5, rows
    for plot in (view.chart.params_plot, view.chart.macs_plot):
        assert _inside_window(window, plot.viewport()) and plot.height() >= 60
    # The splitter shares the height by its stretch factors: shrinking the window does not squeeze the tree alone.
    sizes = view.splitter.sizes()
    assert sizes[0] >= sizes[1] * 0.8, sizes
