"""The one background-task runner, and the training / download tasks run with a plain sink (no Qt)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

from workbench.errors import DataUnavailableError, InvalidOptionError
from workbench.runs import RunStatus
from workbench.training.control import TrainControl
from workbench.training.events import FitResult, FitStart, StepMetrics
from workbench.ui.download_worker import DownloadProgress, download_task
from workbench.ui.tasks import RecordingSink, TaskRunner
from workbench.ui.training_panel import ending
from workbench.ui.training_task import BACKGROUND_NICE, NotStarted, TrainingFailure, training_task


def _start(run_id: str = "r1", batches: int = 5) -> FitStart:
    return FitStart(run_id=run_id, arch="lenet", dataset="digits", device="cpu", epochs=1, start_epoch=0,
                    batches_per_epoch=batches, train_size=10, val_size=2, num_classes=10, amp="off",
                    channels_last=False)


def _step(batch: int, batches: int) -> StepMetrics:
    return StepMetrics(run_id="r1", epoch=1, step=batch, batch=batch, batches=batches, loss=1.0 / batch,
                       accuracy=0.5, lr=0.1, images_per_second=100.0, eta_seconds=1.0, time=0.0)


def _fake_engine(steps: int = 5, fail_after_start: bool = False) -> tuple[Any, dict]:
    seen: dict = {}

    def run(job: object, callbacks: Any = (), control: Any = None, progress: Any = None) -> FitResult:
        seen["thread"] = threading.current_thread()
        progress("loading data", 0.5)
        for cb in callbacks:
            cb.on_fit_start(_start(batches=steps))
        for i in range(1, steps + 1):
            if control is not None and control.stopped:
                return ending(RunStatus.STOPPED, "stopped by the user", "r1")
            for cb in callbacks:
                cb.on_train_batch_end(_step(i, steps))
        if fail_after_start:
            for cb in callbacks:
                cb.on_exception("Training diverged; lower the learning rate.", "loss is nan")
            return ending(RunStatus.DIVERGED, "Training diverged; lower the learning rate.", "r1")
        return ending(RunStatus.COMPLETED, "", "r1")

    return run, seen


# --- the training task, Qt-free --------------------------------------------------------------------------


def test_task_forwards_the_engine_events_as_they_are() -> None:
    sink = RecordingSink()
    run, _ = _fake_engine(steps=5)
    result = training_task(object(), TrainControl(), run=run, min_step_interval=0.0)(sink)  # type: ignore[arg-type]
    assert isinstance(result, FitResult) and result.status == "completed"
    assert sink.stages == [("loading data", 0.5)]
    assert isinstance(sink.partials[0], FitStart)
    steps = [p for p in sink.partials if isinstance(p, StepMetrics)]
    assert [s.batch for s in steps] == [1, 2, 3, 4, 5] and steps[-1] == _step(5, 5)  # the same typed event


def test_task_throttles_steps_but_always_reports_the_last_batch() -> None:
    sink = RecordingSink()
    run, _ = _fake_engine(steps=50)
    training_task(object(), TrainControl(), run=run, min_step_interval=3600.0)(sink)  # type: ignore[arg-type]
    assert [p.batch for p in sink.partials if isinstance(p, StepMetrics)] == [1, 50]


def test_bad_input_raises_and_a_stop_before_start_is_not_an_error() -> None:
    from workbench.training.job import StoppedBeforeStartError

    def bad(job: object, **_: Any) -> FitResult:
        raise InvalidOptionError("batch_size must be >= 1, got 0.")

    with pytest.raises(InvalidOptionError):
        training_task(object(), TrainControl(), run=bad)(RecordingSink())  # type: ignore[arg-type]

    def stopped(job: object, **_: Any) -> FitResult:
        raise StoppedBeforeStartError("Stopped while the data was loading; no run was created.")

    result = training_task(object(), TrainControl(), run=stopped)(RecordingSink())  # type: ignore[arg-type]
    assert isinstance(result, NotStarted) and "no run was created" in result.message


def test_a_failure_the_engine_reports_is_forwarded_once() -> None:
    sink = RecordingSink()
    run, _ = _fake_engine(steps=2, fail_after_start=True)
    result = training_task(object(), TrainControl(), run=run)(sink)  # type: ignore[arg-type]
    assert result.status == "diverged"
    assert [p for p in sink.partials if isinstance(p, TrainingFailure)] == [
        TrainingFailure("Training diverged; lower the learning rate.", "loss is nan")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice value on Linux")
def test_training_runs_at_a_lower_priority_than_the_window() -> None:
    seen: dict[str, int] = {}

    def run(job: object, **_: Any) -> FitResult:
        seen["training"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return _fake_engine(steps=1)[0](job, **_)

    window = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = threading.Thread(target=training_task(object(), TrainControl(), run=run), args=(RecordingSink(),))
    worker.start()
    worker.join(60)
    assert seen["training"] == min(19, window + BACKGROUND_NICE)
    training_task(object(), TrainControl(), run=run)(RecordingSink())  # type: ignore[arg-type]
    assert seen["training"] == window == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # never the GUI's


# --- the runner -------------------------------------------------------------------------------------------


def test_runner_runs_in_another_thread_and_delivers_in_order(qtbot) -> None:
    runner = TaskRunner("test")
    run, seen = _fake_engine(steps=3)
    order: list[str] = []
    runner.partial.connect(lambda e: order.append(type(e).__name__))
    runner.done.connect(lambda r: order.append(f"done:{r.status}"))
    runner.finished.connect(lambda: order.append("finished"))
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start(training_task(object(), TrainControl(), run=run, min_step_interval=0.0))  # type: ignore[arg-type]
        assert runner.is_running()
    assert order == ["FitStart", "StepMetrics", "StepMetrics", "StepMetrics", "done:completed", "finished"]
    assert seen["thread"] is not threading.main_thread() and not runner.is_running()


def test_runner_reports_user_errors_without_details_and_bugs_with_a_traceback(qtbot) -> None:
    runner = TaskRunner("test")
    failures: list[tuple[str, str]] = []
    runner.failed.connect(lambda m, d: failures.append((m, d)))

    def user_error(sink: object) -> None:
        raise DataUnavailableError("MNIST is not in /data; click Download.")

    def bug(sink: object) -> None:
        raise RuntimeError("boom")

    for task in (user_error, bug):
        with qtbot.waitSignal(runner.finished, timeout=5000):
            runner.start(task)
    assert failures[0] == ("MNIST is not in /data; click Download.", "")
    assert "RuntimeError" in failures[1][0] and "Traceback" in failures[1][1] and "boom" in failures[1][1]


def test_runner_cancel_reaches_the_task_and_wait_delivers_the_last_signals(qtbot) -> None:
    runner = TaskRunner("test")
    control = TrainControl()
    inside = threading.Event()
    results: list[object] = []
    runner.done.connect(results.append)

    def task(sink: Any) -> str:
        inside.set()
        while not (sink.cancelled() and control.stopped):
            control.wait_while_paused(0.01)
        return "stopped"

    runner.start(task, on_cancel=control.stop)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start(task)
    qtbot.waitUntil(inside.is_set, timeout=5000)
    assert runner.wait(5000) and results == ["stopped"] and not runner.is_running()
    assert runner.wait(0)  # nothing left to wait for


# --- downloads -----------------------------------------------------------------------------------------------


def test_download_task_reports_progress_and_honours_cancel() -> None:
    sink = RecordingSink()

    def fetch(name: str, root: object, progress: Any, cancel: Any) -> None:
        for done in range(0, 101, 10):
            progress(done, 100)
        sink.cancel.set()
        if cancel():
            raise DataUnavailableError("Download of mnist was cancelled.")

    assert download_task("mnist", None, download=fetch, min_interval=3600.0)(sink) is False
    reported = [p for p in sink.partials if isinstance(p, DownloadProgress)]
    assert reported[0] == DownloadProgress(0, 100) and reported[-1] == DownloadProgress(100, 100)
    assert len(reported) == 11  # every 10 % jump is shown even when the time throttle is long
