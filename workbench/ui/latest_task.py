"""One background task at a time where only the latest request matters (a folder scan, a timing measurement).

A request made while another runs cancels that one and waits for it to end before starting; results of any
request but the latest are dropped, so an answer about an old folder or an old architecture never arrives late.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from workbench.ui.tasks import Task, TaskRunner


class LatestTask(QObject):
    """Runs tasks on one TaskRunner; `done`/`failed`/`progressed` only for the latest request."""

    done = Signal(object)            # the latest task's result
    failed = Signal(str, str)        # message, details
    progressed = Signal(str, float)  # stage, fraction of the latest task
    partial = Signal(object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = TaskRunner(name, self)
        self._waiting: Task | None = None
        self._current = 0       # id of the task running
        self._latest = 0        # id of the latest request
        self._unanswered = False   # the latest request has neither delivered a result nor failed yet
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.progressed.connect(self._on_progress)
        self.runner.partial.connect(self._on_partial)
        self.runner.finished.connect(self._on_finished)

    def request(self, task: Task) -> None:
        """Run `task` as soon as the one in flight (cancelled now) has ended."""
        self._latest += 1
        self._waiting = task
        self._unanswered = True
        if self.runner.is_running():
            self.runner.cancel()
        else:
            self._start()

    def discard(self) -> None:
        """Forget the waiting request and cancel the running one (its result will be dropped)."""
        self._latest += 1
        self._waiting = None
        self._unanswered = False
        if self.runner.is_running():
            self.runner.cancel()

    def is_busy(self) -> bool:
        """True until the latest request has answered (a discarded task may still be ending: see `wait`)."""
        return self._unanswered

    def wait(self, timeout_ms: int) -> bool:
        """Discard waiting work, cancel and wait for the running task; True when nothing is left running."""
        self.discard()
        return self.runner.wait(timeout_ms)

    def _start(self) -> None:
        task, self._waiting = self._waiting, None
        if task is not None:
            self._current = self._latest
            self.runner.start(task)

    def _is_latest(self) -> bool:
        return self._current == self._latest

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if self._is_latest():
            self._unanswered = False
            self.done.emit(result)

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        if self._is_latest():
            self._unanswered = False
            self.failed.emit(message, details)

    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if self._is_latest():
            self.progressed.emit(stage, fraction)

    @Slot(object)
    def _on_partial(self, value: object) -> None:
        if self._is_latest():
            self.partial.emit(value)

    @Slot()
    def _on_finished(self) -> None:
        self._start()
