"""The training panel inside the main window: data-set facts and options feed the layer summary, Pause in the
Training menu, the status bar's throughput at launch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QComboBox, QLineEdit

from tests.ui.test_training_panel import write_two_class_folder
from workbench.ui.main_window import MainWindow


@pytest.fixture
def window(lenet_window: MainWindow) -> MainWindow:
    return lenet_window


def test_a_two_class_folder_makes_a_two_output_summary(window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    panel = window.training_panel
    folder = write_two_class_folder(tmp_path / "pets")
    panel.picker.select("imagefolder")
    with qtbot.waitSignal(window.summaryShown, timeout=30_000,
                          check_params_cb=lambda s: s.num_classes == 2) as shown:
        panel.picker.set_folder(folder)
    summary = shown.args[0]
    assert summary.layers[0].output_shape == [1, 2]            # the model's output: one logit per folder class
    assert summary.input_shape[0] == 3                         # the folder's RGB images
    assert window.arch_panel.selection().num_classes == 2
    assert "skipped 1 unreadable file" in panel.picker.factsLabel.text()
    assert panel.settings.isEnabled() and panel.trainButton.isEnabled(), panel.trainButton.toolTip()


def test_data_set_option_fields_feed_shape_classes_and_the_job(window: MainWindow, qtbot: Any) -> None:
    panel = window.training_panel
    picker = panel.picker
    picker.select("fake")
    shape = picker.options.field("image_shape")
    assert isinstance(shape, QLineEdit) and shape.text() == "(3, 32, 32)"
    assert {row.spec.name for row in picker.options.fields} == {"train_size", "val_size", "image_shape",
                                                                "num_classes"}
    with qtbot.waitSignal(window.summaryShown, timeout=30_000,
                          check_params_cb=lambda s: s.num_classes == 5 and s.input_shape[0] == 1):
        shape.setText("(1, 28, 28)")
        picker.options.field("num_classes").setValue(5)
    info = panel.current_dataset()
    assert (info["channels"], info["height"], info["num_classes"]) == (1, 28, 5)
    job = panel.next_job()
    assert job is not None and job.dataset_options == {"image_shape": (1, 28, 28), "num_classes": 5}
    shape.setText("(2, 8, 8)")                                  # the engine's own check, before Train
    assert not panel.trainButton.isEnabled() and "C 1 or 3" in panel.trainButton.toolTip()
    shape.setText("(1, 28")                                    # not a literal: the field says so
    assert not panel.trainButton.isEnabled() and "image_shape" in panel.trainButton.toolTip()
    shape.setText("(1, 28, 28)")
    assert panel.trainButton.isEnabled()
    picker.select("emnist")
    split = picker.options.field("split")
    assert isinstance(split, QComboBox) and split.currentText() == "balanced"
    assert panel.current_dataset()["num_classes"] == 47
    with qtbot.waitSignal(panel.datasetChanged) as changed:
        split.setCurrentText("digits")
    assert changed.args[0]["num_classes"] == 10 and picker.dataset_options() == {"split": "digits"}
    state = panel.save_state()
    assert state["data_options"]["emnist"]["split"] == "'digits'" and state["data_options"]["fake"]


def test_pause_in_the_training_menu_follows_the_button(window: MainWindow, qtbot: Any) -> None:
    panel = window.training_panel
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Training")
    pause = next(a for a in menu.actions() if a.text() == "&Pause")
    assert pause is window.pause_action and pause.isCheckable() and not pause.isEnabled()
    panel.settings.set_values({"epochs": 50, "batch_size": 32, "device": "cpu"})
    with qtbot.waitSignal(panel.stepReported, timeout=120_000):
        panel.start_training()
        assert window.throughput_label.text() == "– img/s"    # no earlier run's img/s at launch
    assert pause.isEnabled()
    pause.trigger()
    assert panel.pauseButton.isChecked() and panel.statusLabel.text() == "Paused." and panel.control.paused
    panel.pauseButton.click()                                  # the button resumes, and the menu follows
    assert not pause.isChecked() and not panel.control.paused
    with qtbot.waitSignal(panel.runFinished, timeout=10_000):
        window.stop_training()
    assert not pause.isEnabled() and not pause.isChecked()


def test_a_data_sets_none_choice_reads_auto() -> None:
    """An image folder's channels default (None) is decided from the data: the box says "auto", the value stays None."""
    from workbench.data import get_dataset
    from workbench.ui.dataset_options import DatasetOptionsForm

    form = DatasetOptionsForm()
    form.set_options(get_dataset("imagefolder").options)
    channels = form.field("channels")
    assert isinstance(channels, QComboBox)
    assert [channels.itemText(i) for i in range(channels.count())] == ["auto", "1", "3"]
    assert channels.currentData() is None
    form.deleteLater()
