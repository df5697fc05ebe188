"""The one way work leaves the GUI thread: a Qt-free task function in a worker thread, reporting through a sink.

A task is `fn(sink) -> result`. It reports with `sink.partial(value)` (typed events, e.g. the trainer's
StepMetrics) and `sink.progress(stage, fraction)`, and polls `sink.cancelled()`. The runner emits `partial`,
`progressed`, `done(result)` or `failed(message, details)`, then `finished`, all in the GUI thread and in that
order. Task functions never touch widgets, so they are tested with a plain sink (see `RecordingSink`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from workbench.ui.dialogs import error_text


class TaskSink(Protocol):
    """What a task function reports through (thread-safe)."""

    def partial(self, value: object) -> None: ...
    def progress(self, stage: str, fraction: float) -> None: ...
    def cancelled(self) -> bool: ...


Task = Callable[[TaskSink], Any]


class RecordingSink:
    """A sink that keeps what a task reported (for tests and for synchronous use)."""

    def __init__(self) -> None:
        self.partials: list[object] = []
        self.stages: list[tuple[str, float]] = []
        self.cancel = threading.Event()

    def partial(self, value: object) -> None:
        self.partials.append(value)

    def progress(self, stage: str, fraction: float) -> None:
        self.stages.append((stage, fraction))

    def cancelled(self) -> bool:
        return self.cancel.is_set()


class _Sink:
    """The runner's sink: emits the runner's signals from the worker thread (Qt queues them to the GUI)."""

    def __init__(self, runner: TaskRunner, cancel: threading.Event, abandoned: threading.Event) -> None:
        self._runner, self._cancel, self._abandoned = runner, cancel, abandoned

    def partial(self, value: object) -> None:
        if not self._abandoned.is_set():
            self._runner.partial.emit(value)

    def progress(self, stage: str, fraction: float) -> None:
        if not self._abandoned.is_set():
            self._runner.progressed.emit(str(stage), float(fraction))

    def cancelled(self) -> bool:
        return self._cancel.is_set()


class TaskRunner(QObject):
    """Runs one task at a time in a worker thread; a runner can be reused once `finished` was emitted."""

    partial = Signal(object)          # whatever the task reported (typed, plain data)
    progressed = Signal(str, float)   # stage, fraction 0..1 (or < 0: unknown)
    done = Signal(object)             # the task's return value
    failed = Signal(str, str)         # one-sentence message, details (a traceback for bugs, "" for user errors)
    finished = Signal()               # after done/failed; the thread is gone
    _ended = Signal()                 # the worker's last word, queued behind everything it emitted
    _result = Signal(object)          # the worker's done/failed, delivered unless the task was abandoned
    _error = Signal(str, str)

    def __init__(self, name: str = "task", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._on_cancel: Callable[[], None] | None = None
        self._abandoned = threading.Event()
        self._ended.connect(self._on_ended)
        self._result.connect(self._deliver_result)
        self._error.connect(self._deliver_error)

    def is_running(self) -> bool:
        """True from `start` until `finished` was emitted."""
        return self._thread is not None

    def start(self, task: Task, on_cancel: Callable[[], None] | None = None) -> None:
        """Run `task(sink)` in a new thread. `on_cancel` is called (in the GUI thread) by `cancel()`, for tasks
        that are stopped through their own control (the trainer's TrainControl) rather than by polling."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._cancel = threading.Event()
        self._abandoned = threading.Event()
        self._on_cancel = on_cancel
        sink = _Sink(self, self._cancel, self._abandoned)
        self._thread = threading.Thread(target=self._run, args=(task, sink), name=f"workbench-{self.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self, task: Task, sink: _Sink) -> None:
        try:
            result = task(sink)
        except BaseException as exc:  # reported, never raised in a worker thread
            message, details = error_text(exc)
            self._error.emit(message, details)
        else:
            self._result.emit(result)
        finally:
            self._ended.emit()

    def cancel(self) -> None:
        """Ask the task to end soon (it decides how: polling `cancelled()`, or through `on_cancel`)."""
        self._cancel.set()
        if self._on_cancel is not None and self._thread is not None:
            self._on_cancel()

    def abandon(self) -> None:
        """Cancel, and deliver nothing more of this task (no partial, done or failed; `finished` still comes when
        the thread ends): for work that may be left unfinished when the app quits, such as an import that only
        defines modules. The thread is a daemon: it never keeps the process alive."""
        self._abandoned.set()
        self.cancel()

    @Slot(object)
    def _deliver_result(self, result: object) -> None:
        if not self._abandoned.is_set():
            self.done.emit(result)

    @Slot(str, str)
    def _deliver_error(self, message: str, details: str) -> None:
        if not self._abandoned.is_set():
            self.failed.emit(message, details)

    def wait(self, timeout_ms: int) -> bool:
        """Cancel and wait up to `timeout_ms` for the task; its last signals are delivered before returning."""
        thread = self._thread
        if thread is None:
            return True
        self.cancel()
        thread.join(max(0, timeout_ms) / 1000)
        if thread.is_alive():
            return False
        # Deliver what the worker queued (done/failed, then _ended) before returning.
        QCoreApplication.sendPostedEvents(None, 0)
        if self._thread is thread:
            self._on_ended()
        return True

    @Slot()
    def _on_ended(self) -> None:
        thread = self._thread
        if thread is None:
            return
        thread.join()
        self._thread = None
        self.finished.emit()
