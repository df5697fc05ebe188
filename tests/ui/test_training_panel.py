"""TrainingPanel standalone: real short runs on the bundled digits, stop, errors, validation, download."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from tests.ui.conftest import TrainingBench, selection
from workbench.errors import DataUnavailableError
from workbench.training.events import EpochMetrics, FitStart
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


# ----- settings that match what will run ---------------------------------------------------------------------


def _recommended(arch: str, dataset: str = "digits") -> dict:
    import dataclasses

    from workbench.training.config import recommended_config

    return dataclasses.asdict(recommended_config(arch, dataset))


def test_form_shows_the_run_in_progress_then_the_architecture_picked_meanwhile(bench: TrainingBench, qtbot) -> None:
    panel, form = bench.panel, bench.panel.settings
    panel.settings.set_values({"epochs": 50, "max_batches": None})
    lenet = _recommended("lenet")
    with qtbot.waitSignal(panel.stepReported, timeout=120_000):
        panel.start_training()
    panel.set_architecture(selection("resnet18"))          # picked while LeNet trains
    assert form.value_of("optimizer") == lenet["optimizer"] and form.value_of("lr") == lenet["lr"]
    assert not form.isEnabled() and "run in progress (lenet on digits)" in panel.settingsNote.text()
    with qtbot.waitSignal(panel.runFinished, timeout=10_000):
        panel.stopButton.click()
    resnet = _recommended("resnet18")
    assert form.isEnabled() and not panel.settingsNote.isVisibleTo(panel)
    assert (form.value_of("optimizer"), form.value_of("lr"), form.value_of("schedule")) == (
        resnet["optimizer"], resnet["lr"], resnet["schedule"])             # the next Train runs resnet18's recipe
    assert (form.value_of("batch_size"), form.value_of("epochs")) == (32, 50)   # the user's edits are kept
    assert form.edited_fields >= {"batch_size", "epochs", "device"}


def test_resume_shows_the_runs_own_settings_read_only(bench: TrainingBench, qtbot, workspace: Path) -> None:
    from workbench.training.callbacks import Callback
    from workbench.training.config import TrainJob, recommended_config
    from workbench.training.control import TrainControl
    from workbench.training.job import run_training

    control = TrainControl()

    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, e) -> None:
            control.stop()

    cfg = recommended_config("lenet", "digits", {"lr": 0.0123, "epochs": 2, "max_batches": 2, "batch_size": 16,
                                                 "device": "cpu", "optimizer": "sgd"})
    first = run_training(TrainJob(arch="lenet", dataset="digits", config=cfg, workspace=workspace),
                         [StopAfterFirstEpoch()], control)
    assert first.status == "stopped"
    panel, form = bench.panel, bench.panel.settings
    panel.set_architecture(selection("resnet18"))
    assert form.value_of("lr") == _recommended("resnet18")["lr"]
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as finished:
        panel.resume_run(first.run_id)
        # At once, before the data has loaded: the resumed run's stored settings, read-only.
        assert (form.value_of("lr"), form.value_of("optimizer"), form.value_of("batch_size")) == (0.0123, "sgd", 16)
        assert not form.isEnabled() and first.run_id in panel.settingsNote.text()
    assert finished.args[0].status == "completed", finished.args[0]
    assert form.value_of("lr") == _recommended("resnet18")["lr"] and form.value_of("batch_size") == 32
    assert form.isEnabled()


def test_reset_to_recommended_forgets_the_edits(panel: TrainingPanel) -> None:
    form = panel.settings
    form.widgets["lr"].setText("0.5")
    form.widgets["optimizer"].setCurrentText("sgd")
    assert {"lr", "optimizer"} <= form.edited_fields
    button = panel.findChild(QPushButton, "resetRecommendedButton")
    assert button.isEnabled()
    button.click()
    assert form.raw_values() == _recommended("lenet") and form.edited_fields == set()
    panel.set_architecture(selection("resnet18"))     # nothing edited now: every field follows the architecture
    assert form.raw_values() == _recommended("resnet18")


# ----- progress at once --------------------------------------------------------------------------------------


def test_launch_shows_stages_and_never_the_previous_runs_figures(bench: TrainingBench, qtbot) -> None:
    panel = bench.panel
    panel.settings.set_values({"epochs": 1})
    throughput: list[float] = []
    panel.throughputChanged.connect(throughput.append)
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as first:
        panel.start_training()
    assert first.args[0].status == "completed", first.args[0].message
    assert panel.batchProgress.value() == panel.batchProgress.maximum() == 3
    panel.throughputChanged.emit(1234.0)  # the status bar shows the last run's img/s (step events may be too few)
    seen: list[str] = []
    throughput.clear()
    panel.statusText.connect(seen.append)
    # The first epoch's end marks "after the first step" on any machine (a fast one may send no step event at all
    # for three short batches: they come at most every 60 ms).
    panel.epochReported.connect(lambda _e: seen.append("<epoch>"))
    with qtbot.waitSignal(panel.runFinished, timeout=120_000):
        panel.trainButton.click()
        # Right after Train: an indeterminate bar, no ETA, no batch count and no img/s of the run before.
        assert panel.progress.is_busy() and panel.batchProgress.maximum() == 0
        assert panel.etaLabel.text() == "ETA –" and "img/s" not in panel.statusLabel.text()
        assert throughput and throughput[0] != throughput[0]   # NaN: the status bar shows no img/s
    before_step = seen[: next(i for i, s in enumerate(seen) if s == "<epoch>" or s.startswith("Epoch "))]
    assert before_step[0] == "Preparing data and model…"
    assert any(s.startswith("Building lenet") for s in before_step)
    assert any("First step" in s for s in before_step)
    assert not any("img/s" in s for s in before_step)
    assert not panel.progress.is_busy()


# ----- hints ------------------------------------------------------------------------------------------------


def test_chance_level_run_shows_a_hint_linked_to_the_learning_rate(bench: TrainingBench, qtbot) -> None:
    panel = bench.panel
    panel.settings.set_values({"epochs": 1, "lr": 1e-7})   # too small to move LeNet off chance in 3 batches
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as finished:
        panel.start_training()
    assert finished.args[0].status == "completed"
    hint = panel.trainingHint
    assert hint.isVisibleTo(panel) and hint.objectName() == "trainingHint"
    assert "chance level" in hint.plain_text() and "10 classes" in hint.plain_text()
    assert [h.field for h in hint.hints] == ["lr"] and 'href="field:lr"' in hint.text()
    hint.linkActivated.emit("field:lr")                    # the click on "Go to learning rate"
    assert panel.settings.highlighted_field == "lr" and panel.settings.tabs.currentIndex() == 0
    with qtbot.waitSignal(panel.runStarted, timeout=120_000):
        panel.start_training()                              # a new run starts without the old hint
        assert not hint.isVisibleTo(panel)
    assert panel.wait_stopped(10_000)


def test_hints_name_the_runs_architecture_option(bench: TrainingBench) -> None:
    """The run's own options reach the advice: a sigmoid LeNet at chance is told about its activation."""
    panel = bench.panel
    panel._on_event(FitStart(run_id="r1", arch="lenet", dataset="digits", device="cpu", epochs=3, start_epoch=0,
                             batches_per_epoch=10, train_size=100, val_size=10, num_classes=10, amp="off",
                             channels_last=False, config={"lr": 0.9, "optimizer": "sgd"},
                             arch_options={"activation": "sigmoid"}))
    panel._on_event(EpochMetrics(run_id="r1", epoch=1, epochs=3, train_loss=2.3, train_accuracy=0.1, val_loss=2.3,
                                 val_accuracy=0.1, lr=0.9, images_per_second=100.0, epoch_seconds=1.0,
                                 best_val_accuracy=0.1, is_best=True, time=0.0))
    text = panel.trainingHint.plain_text()
    assert "chance level" in text and "activation to relu" in text, text
    assert [h.field for h in panel.trainingHint.hints] == [None]


# ----- image folders ----------------------------------------------------------------------------------------


def write_two_class_folder(root: Path, per_class: int = 6) -> Path:
    """PNGs in cat/ and dog/ (12×16 RGB) and one unreadable file."""
    import numpy as np
    from PIL import Image

    for cls, value in (("cat", 40), ("dog", 200)):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((12, 16, 3), value + i, np.uint8)).save(root / cls / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    return root


def test_folder_facts_and_skipped_files_appear_in_the_app(bench: TrainingBench, qtbot, tmp_path: Path) -> None:
    panel = bench.panel
    folder = write_two_class_folder(tmp_path / "pets")
    panel.picker.select("imagefolder")
    with qtbot.waitSignal(panel.datasetChanged, timeout=30_000,
                          check_params_cb=lambda info: info.get("num_classes") == 2) as changed:
        panel.picker.set_folder(folder)
    info = changed.args[0]
    assert (info["channels"], info["height"], info["width"], info["skipped"]) == (3, 12, 16, 1)
    assert info["train_size"] + info["val_size"] == 12
    facts = panel.picker.factsLabel.text()
    assert "2 classes" in facts and "skipped 1 unreadable file" in facts
    panel.settings.set_values({"epochs": 1})
    assert panel.trainButton.isEnabled(), panel.trainButton.toolTip()
    seen: list[str] = []
    panel.statusText.connect(seen.append)
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as finished:
        panel.start_training()
    assert finished.args[0].status == "completed", finished.args[0]
    assert any("Skipped 1 unreadable file." in s for s in seen), seen


# ----- Find LR ------------------------------------------------------------------------------------------------


def _fake_find_lr(suggested: float | None, wait_for_stop: bool = False):
    from workbench.training.lr_find import LrFinding

    def find_lr(job, *, steps=200, progress=None, control=None, on_point=None, **_kw):
        assert job.arch == "lenet" and job.dataset == "digits" and job.config.batch_size == 32
        lrs = [1e-5, 1e-4, 1e-3, 1e-2]
        for i, lr in enumerate(lrs):
            on_point(lr, 2.3 - 0.3 * i)
            progress("Finding the learning rate", (i + 1) / steps)
        if wait_for_stop:
            while not control.stopped:
                threading.Event().wait(0.01)
            return LrFinding(tuple(lrs), (2.3, 2.0, 1.7, 1.4), (2.3, 2.0, 1.7, 1.4), None, False, cancelled=True)
        return LrFinding(tuple(lrs), (2.3, 2.0, 1.7, 1.4), (2.3, 2.0, 1.7, 1.4), suggested, False,
                         min_loss_lr=1e-2)

    return find_lr


def test_find_lr_shows_the_curve_and_fills_the_field(panel: TrainingPanel, qtbot, monkeypatch) -> None:
    import workbench.training.lr_find as lr_find

    monkeypatch.setattr(lr_find, "find_lr", _fake_find_lr(0.001234))
    button = panel.findChild(QPushButton, "findLrButton")
    assert button.isEnabled()
    button.click()
    finder = panel._lr_finder
    assert finder is not None and finder.is_running() and not panel.trainButton.isEnabled()
    with qtbot.waitSignal(finder.finished, timeout=30_000):
        pass
    assert panel.settings.value_of("lr") == 0.00123 and "lr" in panel.settings.edited_fields
    dialog = finder.dialog
    assert dialog.objectName() == "lrFinderDialog" and dialog.isVisible()
    assert list(dialog.curve.getData()[1]) == [2.3, 2.0, 1.7, 1.4] and dialog.marker.isVisible()
    assert "0.00123" in dialog.message.text()
    assert panel.trainButton.isEnabled()
    dialog.close()


def test_find_lr_can_be_cancelled_and_leaves_the_rate(panel: TrainingPanel, qtbot, monkeypatch) -> None:
    import workbench.training.lr_find as lr_find

    monkeypatch.setattr(lr_find, "find_lr", _fake_find_lr(None, wait_for_stop=True))
    before = panel.settings.value_of("lr")
    panel.find_lr()
    finder = panel._lr_finder
    qtbot.waitUntil(lambda: len(finder.dialog.lrs) == 4, timeout=30_000)
    with qtbot.waitSignal(finder.finished, timeout=30_000):
        finder.dialog.buttons.rejected.emit()                 # the dialog's Cancel
    assert panel.settings.value_of("lr") == before and finder.finding.cancelled


@pytest.mark.slow
def test_find_lr_with_the_engine_fills_the_field(panel: TrainingPanel, qtbot, monkeypatch) -> None:
    from workbench.ui import lr_finder_ui

    monkeypatch.setattr(lr_finder_ui, "STEPS", 60)
    panel.find_lr()
    finder = panel._lr_finder
    with qtbot.waitSignal(finder.finished, timeout=120_000):
        pass
    finding = finder.finding
    assert finding is not None and not finding.cancelled and len(finding.lrs) >= 3, finder.dialog.message.text()
    assert finding.suggested_lr is not None, finding
    assert panel.settings.value_of("lr") == float(f"{finding.suggested_lr:.3g}")
    assert len(finder.dialog.curve.getData()[0]) == len(finding.lrs)
    finder.dialog.close()


def test_an_epoch_without_step_events_still_fills_the_batch_bar(qtbot) -> None:
    from workbench.ui.run_progress import RunProgress

    progress = RunProgress()
    qtbot.addWidget(progress)
    progress.start(2, 0, 3)
    progress.busy()          # until the first batch: indeterminate
    progress.epoch_done(1)   # three quick batches came and went between two step events: none was sent
    assert (progress.batchProgress.value(), progress.batchProgress.maximum()) == (3, 3) and not progress.is_busy()
    assert progress.epochProgress.value() == 1
