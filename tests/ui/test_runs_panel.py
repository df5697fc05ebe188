"""RunsPanel over a real run store: listing, overlays, delete, open folder, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.conftest import TrainingBench
from workbench.training.events import FitResult
from workbench.ui.training_panel import TrainingPanel


@pytest.fixture
def bench(lenet_digits_panel) -> TrainingBench:
    return lenet_digits_panel(epochs=1, max_batches=2)


def _train(panel: TrainingPanel, qtbot) -> FitResult:
    with qtbot.waitSignal(panel.runFinished, timeout=120_000) as finished:
        panel.start_training()
    return finished.args[0]


def test_overlay_delete_and_open_folder(bench: TrainingBench, qtbot, monkeypatch) -> None:
    first, second = _train(bench.panel, qtbot).run_id, _train(bench.panel, qtbot).run_id
    runs = bench.runs
    assert runs.runsList.objectName() == "runsList" and runs.runsList.rowCount() == 2
    assert runs.status_of(first) == runs.status_of(second) == "completed"
    row = [runs.runsList.item(0, c).text() for c in range(runs.runsList.columnCount())]
    assert row[:3] == ["completed", "lenet", "digits"] and row[3].endswith("%")
    overlays: list[list] = []
    runs.overlayChanged.connect(overlays.append)
    runs.select_runs([first, second])
    assert {curves.run_id for curves in overlays[-1]} == {first, second}
    assert bench.plots.overlay_count() >= 2
    opened: list[str] = []
    monkeypatch.setattr("workbench.ui.runs_panel.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toLocalFile()) or True)
    runs.select_runs([first])
    assert runs.open_folder() and Path(opened[0]) == runs.folder_of(first)
    folder = runs.folder_of(first)
    monkeypatch.setattr(runs, "confirm_delete", lambda count: False)
    assert runs.delete_selected() == 0 and runs.runsList.rowCount() == 2
    assert runs.delete_selected(confirm=False) == 1
    assert runs.runsList.rowCount() == 1 and runs.status_of(first) is None
    assert not folder.exists()


def test_resume_a_stopped_run(bench: TrainingBench, qtbot) -> None:
    panel = bench.panel
    panel.settings.set_values({"epochs": 3, "max_batches": None})
    with qtbot.waitSignal(panel.stepReported, timeout=120_000):
        panel.start_training()
    with qtbot.waitSignal(panel.runFinished, timeout=10_000) as stopped:
        panel.request_stop()
    run_id = stopped.args[0].run_id
    assert stopped.args[0].status == "stopped"
    runs = bench.runs
    runs.select_runs([run_id])
    assert runs.resumeButton.isEnabled()
    panel.settings.set_values({"epochs": 3, "max_batches": 2})  # resume uses the run's own config
    live_steps: list = []
    panel.stepReported.connect(live_steps.append)
    with qtbot.waitSignal(panel.runStarted, timeout=60_000) as started, \
            qtbot.waitSignal(runs.historyLoaded, timeout=60_000) as history, \
            qtbot.waitSignal(panel.runFinished, timeout=300_000) as finished:
        runs.resumeButton.click()
    assert started.args[0].run_id == run_id
    # The curves are the whole run: the steps stored before the stop come before the resumed ones.
    assert history.args[0].run_id == run_id and history.args[0].metrics.get("step_loss")
    assert bench.plots.point_count("step_accuracy") > len(live_steps)
    assert finished.args[0].run_id == run_id and finished.args[0].status == "completed"
    assert runs.status_of(run_id) == "completed"


def test_runs_table_sorts_stretches_hints_and_labels_overlays(qtbot, workspace: Path) -> None:
    from PySide6.QtCore import Qt

    from workbench.ui.runs_panel import RunsPanel

    runs = RunsPanel(workspace)
    qtbot.addWidget(runs)
    store = runs.store
    ids = []
    for name, best in (("", 0.9), ("my baseline", 0.5), ("", 0.7)):
        rid = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 1},
                               device="cpu", name=name)
        store.log_metrics(rid, [(1, 10, "val_accuracy", best, 0.0)])
        store.update_run(rid, status="completed", best_val_accuracy=best, epochs_completed=1)
        ids.append(rid)
    runs.refresh()
    table = runs.runsList
    assert table.horizontalHeader().stretchLastSection() and table.isSortingEnabled()
    assert "overlay" in runs.hintLabel.text()
    best_col = 3
    table.sortByColumn(best_col, Qt.SortOrder.AscendingOrder)
    assert [table.item(r, best_col).text() for r in range(3)] == ["50.00 %", "70.00 %", "90.00 %"]
    runs.select_runs(ids)
    assert set(runs.selected_run_ids()) == set(ids)
    labels = {curves.run_id: curves.label for curves in runs.overlay_data()}
    assert labels[ids[1]] == "my baseline"
    # Runs that differ in nothing are numbered in creation order, never labelled by a timestamp.
    assert (labels[ids[0]], labels[ids[2]]) == ("lenet on digits #1", "lenet on digits #2")
    runs.active_run_id = ids[0]  # the live run is drawn by the live curves, not overlaid again
    assert {curves.run_id for curves in runs.overlay_data()} == {ids[1], ids[2]}
    runs.active_run_id = None
    runs.close_store()


def test_resumed_history_is_loaded_off_the_gui_thread_and_merged(bench: TrainingBench, qtbot) -> None:
    from workbench.training.events import EpochMetrics, FitStart, StepMetrics

    store, plots = bench.runs.store, bench.plots
    rid = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 4}, device="cpu")
    store.log_metrics(rid, [(1, 5, "step_loss", 2.0, 0.0), (1, 10, "step_loss", 1.6, 0.0),
                            (1, 5, "step_accuracy", 0.3, 0.0), (1, 0, "val_accuracy", 0.5, 0.0),
                            (2, 15, "step_loss", 1.0, 0.0), (2, 0, "val_accuracy", 0.7, 0.0)])
    store.update_run(rid, status="stopped", epochs_completed=2)
    start = FitStart(run_id=rid, arch="lenet", dataset="digits", device="cpu", epochs=4, start_epoch=2,
                     batches_per_epoch=10, train_size=320, val_size=32, num_classes=10, amp="off",
                     channels_last=False)
    with qtbot.waitSignal(bench.runs.historyLoaded, timeout=10_000):
        bench.panel.runStarted.emit(start)        # as the panel reports a resumed run
        bench.panel.stepReported.emit(StepMetrics(run_id=rid, epoch=3, step=25, batch=5, batches=10, loss=0.8,
                                                  accuracy=0.8, lr=0.01, images_per_second=5.0, eta_seconds=1.0,
                                                  time=0.0))
    bench.panel.epochReported.emit(EpochMetrics(run_id=rid, epoch=3, epochs=4, train_loss=0.7, train_accuracy=0.8,
                                                val_loss=0.8, val_accuracy=0.8, lr=0.01, images_per_second=5.0,
                                                epoch_seconds=1.0, best_val_accuracy=0.8, is_best=True, time=0.0))
    plots.redraw()
    assert plots.curves["val_accuracy"].getData()[0].tolist() == [1.0, 2.0, 3.0]
    x, _ = plots.curves["step_loss"].getData()
    assert x.tolist() == pytest.approx([0.5, 1.0, 1.5, 2.5])   # stored epochs 1-2, then the resumed epoch 3
