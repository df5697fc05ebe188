"""The training worker: the Qt-free task with a Mock sink, and the QThread runner with a fake engine."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from unittest.mock import Mock

import pytest

from workbench.errors import InvalidOptionError
from workbench.ui.training_worker import TrainingRunner, run_training_task


@dataclass
class _Step:
    run_id: str
    epoch: int
    batch: int
    batches: int
    loss: float


@dataclass
class _Result:
    run_id: str
    status: str
    message: str


def _fake_engine(steps: int = 5, status: str = "completed", fail_after_start: bool = False):
    seen: dict = {}

    def run(job, callbacks=(), control=None, progress=None):
        seen["thread"] = threading.current_thread()
        seen["control"] = control
        progress("loading data", 0.5)
        for cb in callbacks:
            cb.on_fit_start(_Step("r1", 1, 0, steps, 0.0))
        for i in range(1, steps + 1):
            if control is not None and control.stopped:
                return _Result("r1", "stopped", "stopped by the user")
            for cb in callbacks:
                cb.on_train_batch_end(_Step("r1", 1, i, steps, 1.0 / i))
        if fail_after_start:
            for cb in callbacks:
                cb.on_exception("Training diverged; lower the learning rate.", "loss is nan")
            return _Result("r1", "diverged", "Training diverged; lower the learning rate.")
        return _Result("r1", status, "")

    return run, seen


def test_task_forwards_plain_dicts_to_a_mock_sink() -> None:
    sink = Mock()
    run, _ = _fake_engine(steps=5)
    result = run_training_task(object(), sink, None, run=run, min_step_interval=0.0)
    assert result is not None and result["status"] == "completed"
    sink.progress.assert_called_once_with("loading data", 0.5)
    sink.fit_started.assert_called_once()
    assert sink.step.call_count == 5
    payload = sink.step.call_args_list[-1].args[0]
    assert payload == {"run_id": "r1", "epoch": 1, "batch": 5, "batches": 5, "loss": 0.2}
    assert all(type(v) in (str, int, float) for v in payload.values())
    finished = sink.finished.call_args.args[0]
    assert finished["status"] == "completed" and finished["run_id"] == "r1"
    sink.failed.assert_not_called()


def test_task_throttles_steps_but_always_reports_the_last_batch() -> None:
    sink = Mock()
    run, _ = _fake_engine(steps=50)
    run_training_task(object(), sink, None, run=run, min_step_interval=3600.0)
    batches = [c.args[0]["batch"] for c in sink.step.call_args_list]
    assert batches == [1, 50]


def test_task_reports_workbench_error_before_start() -> None:
    sink = Mock()

    def run(job, **_):
        raise InvalidOptionError("batch_size must be >= 1, got 0.")

    assert run_training_task(object(), sink, None, run=run) is None
    sink.failed.assert_called_once_with("batch_size must be >= 1, got 0.", "")
    sink.finished.assert_not_called()


def test_stop_before_start_is_a_quiet_stop_not_an_error() -> None:
    from workbench.training.job import StoppedBeforeStartError

    sink = Mock()

    def run(job, **_):
        raise StoppedBeforeStartError("Stopped while the data was loading; no run was created.")

    result = run_training_task(object(), sink, None, run=run)
    assert result is not None and result["status"] == "stopped"
    sink.failed.assert_not_called()
    sink.finished.assert_called_once()


def test_task_reports_a_crash_with_traceback() -> None:
    sink = Mock()

    def run(job, **_):
        raise RuntimeError("boom")

    assert run_training_task(object(), sink, None, run=run) is None
    message, details = sink.failed.call_args.args
    assert "RuntimeError" in message and "boom" in details and "Traceback" in details


def test_task_marks_failures_already_reported_by_on_exception() -> None:
    sink = Mock()
    run, _ = _fake_engine(steps=2, fail_after_start=True)
    result = run_training_task(object(), sink, None, run=run, min_step_interval=0.0)
    assert result["status"] == "diverged" and result["reported_failure"] is True
    sink.failed.assert_called_once()


def test_runner_runs_in_another_thread_and_delivers_signals(qtbot) -> None:
    runner = TrainingRunner()
    run, seen = _fake_engine(steps=3)
    steps: list[dict] = []
    runner.stepMetrics.connect(steps.append)
    with qtbot.waitSignal(runner.fitFinished, timeout=5000) as finished, \
            qtbot.waitSignal(runner.stopped, timeout=5000):
        runner.start(object(), control=Mock(stopped=False, paused=False), run=run)
        assert runner.is_running()
    assert finished.args[0]["status"] == "completed"
    assert seen["thread"] is not threading.main_thread()
    assert steps and steps[-1]["batch"] == 3
    assert not runner.is_running()


def test_runner_wait_stops_cooperatively(qtbot) -> None:
    from workbench.training.control import TrainControl

    gate = threading.Event()

    def run(job, callbacks=(), control=None, progress=None):
        gate.set()
        while not control.stopped:
            control.wait_while_paused(0.01)
            gate.wait(0.01)
        return _Result("r2", "stopped", "stopped by the user")

    runner = TrainingRunner()
    results: list[dict] = []
    runner.fitFinished.connect(results.append)
    runner.start(object(), control=TrainControl(), run=run)
    qtbot.waitUntil(gate.is_set, timeout=5000)
    assert runner.wait(2000)
    assert not runner.is_running()
    assert results and results[0]["status"] == "stopped"


def test_runner_refuses_a_second_start(qtbot) -> None:
    runner = TrainingRunner()
    release = threading.Event()

    def run(job, **_):
        release.wait(5)
        return _Result("r3", "completed", "")

    runner.start(object(), control=Mock(stopped=False, paused=False), run=run)
    with pytest.raises(RuntimeError):
        runner.start(object(), control=Mock(), run=run)
    release.set()
    with qtbot.waitSignal(runner.stopped, timeout=5000):
        pass
