"""The app follows runs it did not start: the runs list and the curves update live for a run another process
trains, the store is polled at most twice a second off the GUI thread and only while there is something to follow,
and Stop asks that run to stop through the store."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.runs import RunStore
from workbench.runs.owner import process_start_token
from workbench.ui.plots import LivePlots
from workbench.ui.run_watch import POLL_MS
from workbench.ui.runs_panel import RunsPanel
from workbench.ui.training_panel import TrainingPanel
from workbench.ui.training_wiring import wire_training


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen]:
    """A live process that is not this one, to own a run as a CLI run would."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait(10)


def owned_by(store: RunStore, run_id: str, pid: int) -> None:
    """Make `pid` the owner of a running run (what `workbench train` in that process would have written)."""
    with store._write("update a run in") as conn:
        conn.execute("UPDATE runs SET owner_pid = ?, owner_start = ? WHERE id = ?",
                     (pid, process_start_token(pid), run_id))


class Curves:
    """A runs panel and live plots wired as the window wires them."""

    def __init__(self, qtbot: Any, workspace: Path) -> None:
        self.runs, self.plots = RunsPanel(workspace), LivePlots()
        self.panel = TrainingPanel(workspace)
        for widget in (self.runs, self.plots, self.panel):
            qtbot.addWidget(widget)
        wire_training(self.panel, self.plots, self.runs)


def test_following_a_run_of_another_process_and_stopping_it(qtbot: Any, workspace: Path,
                                                            other_process: subprocess.Popen) -> None:
    bench = Curves(qtbot, workspace)
    runs, plots = bench.runs, bench.plots
    assert runs.watcher.timer.interval() >= POLL_MS >= 500        # at most 2 Hz
    store = runs.store
    done = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 1}, device="cpu")
    store.update_run(done, status="completed")
    runs.refresh()
    assert not runs.watcher.active                                 # nothing to follow, nobody looking: no polling
    rid = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 30, "lr": 0.01},
                           device="cpu")
    owned_by(store, rid, other_process.pid)
    with qtbot.waitSignal(runs.watcher.polled, timeout=5000):
        runs.watcher.poll()                                        # (the curves/runs tab being shown polls too)
    assert runs.watcher.active and runs.is_external(runs.store.get_run(rid))
    status_col = runs.runsList.column_of("status")
    row = next(r for r in range(2) if runs.runsList.item(r, runs.runsList.column_of("run_id")).text() == rid)
    assert runs.runsList.item(row, status_col).text() == f"running (process {other_process.pid})"
    # Selecting it shows its curves as the main curves, live, from the store.
    with qtbot.waitSignal(runs.followChanged, timeout=5000):
        runs.select_runs([rid])
    assert plots.followed == rid and plots.overlay_count() == 0
    started = time.monotonic()
    store.log_metrics(rid, [(1, 5, "step_loss", 2.0, 0.0), (1, 10, "step_loss", 1.8, 0.0),
                            (1, 10, "step_lr", 0.01, 0.0), (1, 0, "val_accuracy", 0.6, 0.0),
                            (1, 0, "train_loss", 1.9, 0.0)], heartbeat=True)
    qtbot.waitUntil(lambda: plots.point_count("val_accuracy") == 1, timeout=5000)
    assert time.monotonic() - started < 5
    assert plots.point_count("step_loss") == 2 and "another process" in plots.run_label
    store.log_metrics(rid, [(2, 15, "step_loss", 1.2, 0.0), (2, 0, "val_accuracy", 0.8, 0.0)], heartbeat=True)
    qtbot.waitUntil(lambda: plots.point_count("val_accuracy") == 2, timeout=5000)
    # Stop asks the other process through the store; the row says so until that process ends the run.
    assert runs.stopButton.isEnabled()
    runs.stopButton.click()
    assert store.get_run(rid).stop_requested
    assert runs.runsList.item(row, status_col).text() == "running (stop requested)"
    assert not runs.stopButton.isEnabled()
    store.update_run(rid, status="stopped", message="Stopped by request in epoch 3 after 4 batch(es).")
    qtbot.waitUntil(lambda: runs.status_of(rid) == "stopped", timeout=5000)
    qtbot.waitUntil(lambda: not runs.watcher.active, timeout=5000)   # nothing left to follow
    runs.close_store()


def test_curves_tab_on_screen_polls_for_new_runs(qtbot: Any, workspace: Path) -> None:
    bench = Curves(qtbot, workspace)
    runs = bench.runs
    runs.refresh()
    assert not runs.watcher.active
    bench.plots.show()
    qtbot.waitExposed(bench.plots)
    assert runs.curves_visible and runs.watcher.active
    rid = runs.store.create_run(arch="lenet", arch_options={}, dataset="digits", config={}, device="cpu")
    qtbot.waitUntil(lambda: runs.status_of(rid) is not None, timeout=5000)   # listed without a refresh
    bench.plots.hide()
    runs.store.update_run(rid, status="completed")
    runs.refresh()
    assert not runs.watcher.active
    runs.close_store()


@pytest.mark.slow
def test_following_and_stopping_a_cli_run(qtbot: Any, workspace: Path) -> None:
    """A real `workbench train` in a subprocess: listed, followed live, stopped from the app."""
    bench = Curves(qtbot, workspace)
    runs, plots = bench.runs, bench.plots
    cli = subprocess.Popen([sys.executable, "-m", "workbench", "train", "--arch", "lenet", "--dataset", "digits",
                            "--device", "cpu", "--epochs", "30", "--workspace", str(workspace), "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        plots.show()        # the curves on screen: the app polls and finds the new run
        qtbot.waitUntil(lambda: any(runs.is_external(r) for r in runs.records), timeout=120_000)
        rid = next(r.run_id for r in runs.records if runs.is_external(r))
        runs.select_runs([rid])
        qtbot.waitUntil(lambda: plots.followed == rid and plots.point_count("val_accuracy") >= 1, timeout=120_000)
        runs.stop_selected()
        qtbot.waitUntil(lambda: runs.status_of(rid) == "stopped", timeout=60_000)
        assert cli.wait(60) == 130                 # the CLI's exit code for a run stopped by request
        assert 1 <= runs.store.get_run(rid).epochs_completed < 30
    finally:
        cli.kill()
        cli.wait(10)
        runs.close_store()
