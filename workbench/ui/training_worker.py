"""Training off the GUI thread: engine callbacks become Qt signals carrying plain data.

`run_training_task` is the Qt-free heart: it runs the engine and reports through a `TrainingSink`
(any object with the six methods below, e.g. a `unittest.mock.Mock`). `TrainingWorker` is the QObject
that implements the sink by emitting signals, and `TrainingRunner` owns the QThread it lives in.
Nothing here touches a widget; everything emitted is a dict, float or string (never a tensor).
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from workbench.errors import WorkbenchError
from workbench.ui.thread_runner import ThreadRunner


class TrainingSink(Protocol):
    """Where the task reports; every argument is plain data."""

    def fit_started(self, info: dict) -> None: ...
    def step(self, metrics: dict) -> None: ...
    def epoch(self, metrics: dict) -> None: ...
    def finished(self, result: dict) -> None: ...
    def failed(self, message: str, details: str) -> None: ...
    def progress(self, stage: str, fraction: float) -> None: ...


def _plain(event: Any) -> dict:
    """A dataclass event as a dict of plain values (defensive: anything odd becomes a string)."""
    data = dataclasses.asdict(event) if dataclasses.is_dataclass(event) else dict(event)
    for key, value in data.items():
        if value is not None and not isinstance(value, (bool, int, float, str, list, tuple, dict)):
            data[key] = str(value)
    return data


class _Forwarder:
    """An engine Callback (duck-typed) that forwards events to a sink, throttling per-step events."""

    def __init__(self, sink: TrainingSink, min_step_interval: float) -> None:
        self._sink = sink
        self._min_interval = min_step_interval
        self._last_step = float("-inf")
        self.reported_failure = False

    def on_fit_start(self, e: Any) -> None:
        self._sink.fit_started(_plain(e))

    def on_train_batch_end(self, e: Any) -> None:
        now = time.monotonic()
        # The last batch of an epoch always goes through so the batch bar can reach its maximum.
        last = getattr(e, "batch", 0) >= getattr(e, "batches", 1)
        if last or now - self._last_step >= self._min_interval:
            self._last_step = now
            self._sink.step(_plain(e))

    def on_epoch_end(self, e: Any) -> None:
        self._sink.epoch(_plain(e))

    def on_fit_end(self, r: Any) -> None:  # the result is reported once, by run_training_task
        pass

    def on_exception(self, message: str, details: str) -> None:
        self.reported_failure = True
        self._sink.failed(str(message), str(details))


def run_training_task(job: Any, sink: TrainingSink, control: Any = None, *,
                      run: Callable[..., Any] | None = None,
                      min_step_interval: float = 0.05) -> dict | None:
    """Run one training job, reporting through `sink`; returns the FitResult as a dict (None on error).

    A WorkbenchError raised before the run starts becomes `sink.failed(message, "")`; any other
    exception becomes `sink.failed(...)` with the traceback as details. Never raises.
    """
    if run is None:
        from workbench.training import run_training as run
    forwarder = _make_callback(sink, min_step_interval)
    try:
        result = run(job, callbacks=[forwarder], control=control,
                     progress=lambda stage, fraction: sink.progress(str(stage), float(fraction)))
    except WorkbenchError as exc:
        from workbench.training.job import StoppedBeforeStartError

        if isinstance(exc, StoppedBeforeStartError):  # the user's own Stop: not an error
            data = {"run_id": "", "status": "stopped", "reported_failure": False,
                    "message": "Stopped before training started; no run was created."}
            sink.finished(data)
            return data
        sink.failed(str(exc), "")
        return None
    except Exception as exc:  # a bug or a crash: report it, keep the app alive
        sink.failed(f"Training failed unexpectedly ({type(exc).__name__}); see the details and try "
                    "again with other settings.", traceback.format_exc())
        return None
    data = _plain(result)
    data["reported_failure"] = forwarder.reported_failure
    sink.finished(data)
    return data


def _make_callback(sink: TrainingSink, min_step_interval: float) -> _Forwarder:
    """A forwarder that is also an instance of the engine's Callback class when it is importable."""
    try:
        from workbench.training import Callback
    except ImportError:
        return _Forwarder(sink, min_step_interval)
    cls = type("QtForwarder", (_Forwarder, Callback), {})
    return cls(sink, min_step_interval)


class TrainingWorker(QObject):
    """Lives in the worker thread; implements TrainingSink by emitting queued signals."""

    fitStarted = Signal(dict)
    stepMetrics = Signal(dict)
    epochMetrics = Signal(dict)
    fitFinished = Signal(dict)
    fitFailed = Signal(str, str)
    progressed = Signal(str, float)
    done = Signal()

    def __init__(self, job: Any, control: Any, run: Callable[..., Any] | None = None) -> None:
        super().__init__()
        self._job, self._control, self._run = job, control, run

    def fit_started(self, info: dict) -> None:
        self.fitStarted.emit(info)

    def step(self, metrics: dict) -> None:
        self.stepMetrics.emit(metrics)

    def epoch(self, metrics: dict) -> None:
        self.epochMetrics.emit(metrics)

    def finished(self, result: dict) -> None:
        self.fitFinished.emit(result)

    def failed(self, message: str, details: str) -> None:
        self.fitFailed.emit(message, details)

    def progress(self, stage: str, fraction: float) -> None:
        self.progressed.emit(stage, fraction)

    @Slot()
    def run(self) -> None:
        try:
            run_training_task(self._job, self, self._control, run=self._run)
        finally:
            # Hand the object back to the GUI thread so it is destroyed there, then let the thread quit.
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())
            self.done.emit()


class TrainingRunner(ThreadRunner):
    """Starts one TrainingWorker in its own QThread and tears it down cleanly."""

    fitStarted = Signal(dict)
    stepMetrics = Signal(dict)
    epochMetrics = Signal(dict)
    fitFinished = Signal(dict)
    fitFailed = Signal(str, str)
    progressed = Signal(str, float)
    stopped = Signal()  # the thread has ended (after fitFinished/fitFailed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.control: Any = None

    def start(self, job: Any, control: Any = None, run: Callable[..., Any] | None = None) -> None:
        """Run `job` in a new thread; `control` defaults to a fresh engine TrainControl."""
        if self._thread is not None:
            raise RuntimeError("a training run is already in progress")
        if control is None:
            from workbench.training import TrainControl
            control = TrainControl()
        self.control = control
        worker = TrainingWorker(job, control, run)
        for name in ("fitStarted", "stepMetrics", "epochMetrics", "fitFinished", "fitFailed", "progressed"):
            getattr(worker, name).connect(getattr(self, name))
        self.launch(worker, "trainingThread")

    def stop(self) -> None:
        """Ask the run to stop cooperatively (it checkpoints and ends within one step)."""
        if self.control is not None:
            if getattr(self.control, "paused", False):
                self.control.resume()
            self.control.stop()

    def request_stop(self) -> None:
        self.stop()

    def thread_ended(self) -> None:
        self.stopped.emit()
