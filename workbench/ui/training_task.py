"""Training as a background task: the engine's callback events cross to the GUI as they are (typed, plain data).

`training_task(job, control)` is Qt-free: run it with a `RecordingSink` to test it, or with a `TaskRunner`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.training.callbacks import Callback
from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics
from workbench.ui.tasks import Task, TaskSink

if TYPE_CHECKING:
    from workbench.training.config import TrainJob
    from workbench.training.control import TrainControl


@dataclass(frozen=True)
class TrainingFailure:
    """The engine reported a failed run (before its FitResult arrives): a sentence and the traceback."""

    message: str
    details: str


@dataclass(frozen=True)
class NotStarted:
    """The run was stopped while its data loaded or its model was built: nothing was created."""

    message: str


class SinkCallback(Callback):
    """Forwards the trainer's events to a task sink; step events at most every `min_interval` seconds (the last
    batch of an epoch always goes through, so a progress bar can reach its end)."""

    def __init__(self, sink: TaskSink, min_interval: float = 0.05) -> None:
        self.sink = sink
        self.min_interval = min_interval
        self._last_step = float("-inf")

    def on_fit_start(self, e: FitStart) -> None:
        self.sink.partial(e)

    def on_train_batch_end(self, e: StepMetrics) -> None:
        now = time.monotonic()
        if e.batch >= e.batches or now - self._last_step >= self.min_interval:
            self._last_step = now
            self.sink.partial(e)

    def on_epoch_end(self, e: EpochMetrics) -> None:
        self.sink.partial(e)

    def on_exception(self, message: str, details: str) -> None:
        self.sink.partial(TrainingFailure(message, details))


RunFn = Callable[..., FitResult]
BACKGROUND_NICE = 5  # a training thread's nice value above the window's


def yield_cpu_to_window() -> None:
    """Raise the calling worker thread's nice value by BACKGROUND_NICE, so that when it and the window's thread both
    want a core (a 2-core machine at the start of a run) the window gets it first; the torch worker threads it
    starts inherit it. Linux only (elsewhere a nice value is per process), never the main thread."""
    if not sys.platform.startswith("linux") or threading.current_thread() is threading.main_thread():
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))


def training_task(job: TrainJob, control: TrainControl, *, run: RunFn | None = None,
                  min_step_interval: float = 0.05) -> Task:
    """A task that trains `job` (stopped through `control`) and returns its FitResult, or NotStarted when a stop
    came before training began. Bad input raises the engine's WorkbenchError (the runner reports it)."""

    def task(sink: TaskSink) -> FitResult | NotStarted:
        from workbench.training.job import StoppedBeforeStartError, run_training

        train: Any = run or run_training
        yield_cpu_to_window()
        try:
            return train(job, callbacks=[SinkCallback(sink, min_step_interval)], control=control,
                         progress=sink.progress)
        except StoppedBeforeStartError as exc:  # the user's own Stop while loading: not an error
            return NotStarted(str(exc))

    return task
