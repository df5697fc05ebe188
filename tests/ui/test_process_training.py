"""Training in several processes from the app: a child `workbench train --nproc N`, followed through the store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ui.conftest import TrainingBench
from workbench.runs import RunStore
from workbench.training.config import TrainJob
from workbench.training.events import FitResult
from workbench.ui.process_training import ProcessRunStarted, process_command, process_training_task
from workbench.ui.tasks import RecordingSink, TaskRunner

# A stand-in for `workbench train --nproc N --json`: makes a run, waits for Ctrl-C (or a file), prints its JSON line.
_CHILD = r"""
import json, signal, sys, time
from pathlib import Path
from workbench.runs import RunStore
store = RunStore(sys.argv[1])
run = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 3}, device="cpu",
                       world_size=2)
stopped = []
signal.signal(signal.SIGINT, lambda *a: stopped.append(1))
while not stopped and not Path(sys.argv[2]).exists():
    time.sleep(0.05)
status = "stopped" if stopped else "completed"
store.update_run(run, status=status, epochs_completed=1)
print(json.dumps({"run_id": run, "status": status, "message": status, "epochs_completed": 1, "train_loss": 0.5,
                  "train_accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7, "best_val_accuracy": 0.7,
                  "images_per_second": 10.0, "device": "cpu", "checkpoint": None, "world_size": 2}))
sys.exit(130 if stopped else 0)
"""


def _job(ws: Path) -> TrainJob:
    return TrainJob(arch="lenet", dataset="digits", workspace=ws)


def test_the_command_is_the_job_in_n_processes(tmp_path: Path) -> None:
    cmd = process_command(_job(tmp_path), 3)
    assert cmd[:4] == [sys.executable, "-m", "workbench", "train"]
    assert cmd[cmd.index("--nproc") + 1] == "3" and "--json" in cmd and "--workspace" in cmd


def test_the_task_announces_the_run_and_returns_the_childs_result(tmp_path: Path) -> None:
    done = tmp_path / "done"
    sink = RecordingSink()
    task = process_training_task(_job(tmp_path), 2, [sys.executable, "-c", _CHILD, str(tmp_path), str(done)])
    import threading

    def finish_when_announced() -> None:
        while not sink.partials:
            threading.Event().wait(0.05)
        done.touch()

    helper = threading.Thread(target=finish_when_announced)
    helper.start()
    result = task(sink)
    helper.join()
    started = [p for p in sink.partials if isinstance(p, ProcessRunStarted)]
    assert len(started) == 1 and started[0].processes == 2
    assert isinstance(result, FitResult) and result.status == "completed" and result.run_id == started[0].run_id
    assert RunStore(tmp_path).get_run(result.run_id).world_size == 2


@pytest.mark.parametrize(("printed", "said"), [
    ('{"run_id": "x"', "JSONDecodeError"),          # cut off mid-line
    ('{"run_id": "x"}', "KeyError"),                 # a line from another version
])
def test_a_result_line_the_app_cannot_read_is_one_sentence(tmp_path: Path, printed: str, said: str) -> None:
    from workbench.errors import WorkbenchError

    task = process_training_task(_job(tmp_path), 2, [sys.executable, "-c", f"print({printed!r})"])
    with pytest.raises(WorkbenchError, match=rf"with a result the app cannot read \({said}.*see the run"):
        task(RecordingSink())


def test_a_stop_reaches_the_child_as_ctrl_c(tmp_path: Path, qtbot) -> None:
    runner = TaskRunner("processes")
    announced: list[str] = []
    results: list[FitResult] = []
    runner.partial.connect(lambda e: announced.append(e.run_id))
    runner.done.connect(results.append)
    runner.start(process_training_task(_job(tmp_path), 2, [sys.executable, "-c", _CHILD, str(tmp_path),
                                                            str(tmp_path / "never")]))
    qtbot.waitUntil(lambda: bool(announced), timeout=30_000)
    with qtbot.waitSignal(runner.finished, timeout=30_000):
        runner.cancel()
    assert results and results[0].status == "stopped" and results[0].run_id == announced[0]


@pytest.mark.slow
def test_the_panel_trains_in_two_processes_and_the_runs_list_follows(lenet_digits_panel, qtbot) -> None:
    bench: TrainingBench = lenet_digits_panel(epochs=1, max_batches=4)
    panel = bench.panel
    panel.processesSpin.setValue(2)
    followed: list[str] = []
    panel.processRunStarted.connect(lambda run_id: (followed.append(run_id), bench.runs.select_runs([run_id])))
    with qtbot.waitSignal(panel.runFinished, timeout=240_000) as finished:
        panel.start_training()
    result = finished.args[0]
    assert result.status == "completed", result.message
    assert followed == [result.run_id]
    assert RunStore(panel.workspace).get_run(result.run_id).world_size == 2
