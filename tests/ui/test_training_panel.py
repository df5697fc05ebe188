"""TrainingPanel standalone: real short runs on the bundled digits, stop, errors, validation, download."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from tests.ui.conftest import TrainingBench, selection
from workbench.errors import DataUnavailableError
from workbench.ui import dialogs
from workbench.ui.training_panel import TrainingPanel


@pytest.fixture
def bench(lenet_digits_panel) -> TrainingBench:
    return lenet_digits_panel(epochs=2, max_batches=3)


@pytest.fixture
def panel(bench: TrainingBench) -> TrainingPanel:
    return bench.panel


def test_train_two_epochs_on_digits(bench: TrainingBench, qtbot) -> None:
    panel = bench.panel
    # Long enough (20 batches of 64) for the engine's ~10 Hz step events to reach the curves.
    panel.settings.set_values({"batch_size": 64, "max_batches": 20})
    assert panel.trainButton.isEnabled(), panel.trainButton.toolTip()
    started: list[str] = []
    status: list[str] = []
    panel.runStarted.connect(lambda start: started.append(start.run_id))
    panel.statusText.connect(status.append)
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as finished:
        panel.trainButton.click()
        assert panel.is_training() and not panel.trainButton.isEnabled() and panel.stopButton.isEnabled()
    result = finished.args[0]
    assert result.status == "completed", result
    assert started == [result.run_id]
    assert panel.epochProgress.value() == panel.epochProgress.maximum() == 2
    assert panel.batchProgress.value() == panel.batchProgress.maximum() == 20
    assert bench.plots.point_count("val_accuracy") == 2 and bench.plots.point_count("step_loss") >= 1
    x, _ = bench.plots.curves["val_accuracy"].getData()
    assert list(x) == [1.0, 2.0]  # redrawn onto the curve, not just buffered
    assert any("img/s" in s for s in status)
    assert bench.runs.status_of(result.run_id) == "completed"
    assert not panel.is_training() and panel.trainButton.isEnabled()


def test_stop_mid_run_keeps_a_checkpoint(bench: TrainingBench, qtbot) -> None:
    panel = bench.panel
    panel.settings.set_values({"epochs": 50, "max_batches": None})
    with qtbot.waitSignal(panel.stepReported, timeout=120_000):
        panel.start_training()
    with qtbot.waitSignal(panel.runFinished, timeout=10_000) as finished:
        panel.stopButton.click()
    result = finished.args[0]
    assert result.status == "stopped", result
    folder = bench.runs.folder_of(result.run_id)
    assert list(folder.glob("*.pt")), f"no checkpoint in {folder}"
    assert bench.runs.status_of(result.run_id) == "stopped"
    assert panel.trainButton.isEnabled()


def test_engine_error_shows_a_dialog_and_panel_stays_usable(panel: TrainingPanel, qtbot) -> None:
    panel.set_architecture(selection("no_such_net"))
    with qtbot.waitSignal(panel.runFinished, timeout=60_000) as finished:
        panel.start_training()
    assert finished.args[0].status == "failed" and not finished.args[0].run_id
    boxes = [b for b in dialogs.open_dialogs() if b.objectName() == "errorDialog"]
    assert boxes and "no_such_net" in boxes[-1].text()
    boxes[-1].done(0)
    assert not panel.is_training()
    panel.set_architecture(selection("lenet"))
    assert panel.trainButton.isEnabled()


def test_invalid_setting_disables_train_with_a_tooltip(panel: TrainingPanel) -> None:
    assert panel.trainButton.isEnabled()
    panel.findChild(type(panel.settings.widgets["epochs"]), "epochsSpin").setValue(0)
    assert not panel.trainButton.isEnabled()
    assert "epochs" in panel.trainButton.toolTip()
    assert panel.settings.invalid_field == "epochs"
    assert panel.settings.widgets["epochs"].styleSheet()
    panel.settings.widgets["epochs"].setValue(3)
    assert panel.trainButton.isEnabled() and not panel.settings.widgets["epochs"].styleSheet()
    panel.settings.widgets["lr"].setText("fast")
    assert not panel.trainButton.isEnabled() and "lr" in panel.trainButton.toolTip()
    panel.settings.widgets["lr"].setText("0.01")
    panel.set_architecture(selection("vgg11", False, "block_info must be a list of (convs, channels)."))
    assert not panel.trainButton.isEnabled()
    assert panel.trainButton.toolTip() == "block_info must be a list of (convs, channels)."
    panel.start_training()  # refused quietly
    assert not panel.is_training()


def test_dataset_availability_and_state_round_trip(panel: TrainingPanel, qtbot, tmp_path: Path) -> None:
    texts = [panel.picker.combo.itemText(i) for i in range(panel.picker.combo.count())]
    assert any("bundled" in t for t in texts) and any("needs download" in t for t in texts)
    with qtbot.waitSignal(panel.datasetChanged) as changed:
        panel.picker.select("mnist")
    assert changed.args[0]["name"] == "mnist" and changed.args[0]["num_classes"] == 10
    assert not panel.trainButton.isEnabled() and "Download" in panel.trainButton.toolTip()
    assert panel.picker.downloadButton.isVisibleTo(panel)
    state = panel.save_state()
    other = TrainingPanel(tmp_path / "ws2")
    qtbot.addWidget(other)
    other.restore_state(state)
    other.ensure_engine()
    assert other.current_dataset()["name"] == "mnist"
    assert other.settings.raw_values()["max_batches"] == 3


def test_download_shows_progress_and_can_be_cancelled(panel: TrainingPanel, qtbot, monkeypatch) -> None:
    import workbench.data as data

    calls: list[tuple] = []
    halfway = threading.Event()

    def fake_download(name, root=None, progress=None, cancel=None):
        calls.append((name, root))
        total = 1_000_000
        progress(0, total)
        progress(total // 2, total)  # stalls halfway until the user cancels
        halfway.set()
        for _ in range(2000):
            if cancel():
                raise DataUnavailableError("Download of mnist was cancelled.")
            threading.Event().wait(0.005)
        progress(total, total)

    monkeypatch.setattr(data, "download", fake_download)
    panel.picker.select("mnist")
    panel.picker.downloadButton.click()
    dialog = panel.picker.downloads.dialog
    assert dialog is not None and dialog.objectName() == "downloadProgress"
    qtbot.waitUntil(lambda: dialog.value() > 0, timeout=10_000)
    qtbot.waitUntil(halfway.is_set, timeout=10_000)
    with qtbot.waitSignal(panel.picker.downloads.finished, timeout=10_000) as finished:
        dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    assert finished.args[0] is False and finished.args[1] == ""  # cancelled: no error dialog
    assert calls and calls[0][0] == "mnist"
    assert not [b for b in dialogs.open_dialogs() if b.objectName() == "errorDialog"]


def test_download_failure_shows_error(panel: TrainingPanel, qtbot, monkeypatch) -> None:
    import workbench.data as data

    def failing(name, root=None, progress=None, cancel=None):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "download", failing)
    panel.picker.select("mnist")
    with qtbot.waitSignal(panel.picker.downloads.finished, timeout=10_000) as finished:
        panel.picker.download()
    assert finished.args[0] is False and "mnist" in finished.args[1]
    assert [b for b in dialogs.open_dialogs() if b.objectName() == "errorDialog"]
