"""Latest request wins, on one TaskRunner: background work where only the last click matters (the Analysis tab's
and the Compare view's requests, a folder scan, a timing measurement).

`LatestTask.request(task) -> id` runs `task(sink)` (a Qt-free task function, see `ui/tasks.py`) in a worker
thread. Requests of one LatestTask never run at once: a request made while one computes waits, replacing any
older waiting request (that one is `dropped` without running), and the running task is asked to cancel
(`sink.cancelled()`). A result that arrives after a newer request was made is `dropped`, so the user only ever
sees the answer to the last thing they clicked. One LatestTask per kind of request (evaluation, thumbnails,
image inspection); since one kind never runs twice at once, a model used by only one kind is never run by two
threads together.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from workbench.ui.tasks import Task, TaskRunner


class LatestTask(QObject):
    """One kind of background request; only the latest request's answer is delivered."""

    done = Signal(int, object)        # request id, the task's result (the latest request only)
    failed = Signal(int, str, str)    # request id, one-sentence message, details ("" for a WorkbenchError)
    dropped = Signal(int)             # request id of a stale request (never ran, or its answer came too late)
    progressed = Signal(int, str, float)   # request id, stage, fraction (< 0: unknown) of the latest request
    partial = Signal(int, object)     # request id, a value the latest request's task reported on the way
    idle = Signal()                   # nothing runs or waits any more

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._runner = TaskRunner(name, self)
        self._runner.done.connect(self._on_done)
        self._runner.failed.connect(self._on_failed)
        self._runner.finished.connect(self._on_finished)
        self._runner.progressed.connect(self._on_progress)
        self._runner.partial.connect(self._on_partial)
        self._next_id = 0
        self._latest = 0
        self._running_id = 0
        self._waiting: tuple[int, Task] | None = None
        self._unanswered = False           # the latest request has neither answered nor been invalidated

    def is_busy(self) -> bool:
        """True until the latest request has answered (a task of an invalidated request may still be ending)."""
        return self._unanswered

    def request(self, task: Task) -> int:
        """Queue `task`; returns its id. An older waiting request is dropped, a running one asked to cancel."""
        self._next_id += 1
        self._latest = rid = self._next_id
        self._unanswered = True
        if self._waiting is not None:
            self.dropped.emit(self._waiting[0])
        self._waiting = (rid, task)
        if self._runner.is_running():
            self._runner.cancel()
        else:
            self._start_waiting()
        return rid

    def invalidate(self) -> None:
        """Forget every request: a waiting one never runs, a running one's answer is dropped."""
        self._next_id += 1
        self._latest = self._next_id
        self._unanswered = False
        if self._waiting is not None:
            self.dropped.emit(self._waiting[0])
            self._waiting = None
        if self._runner.is_running():
            self._runner.cancel()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Drop waiting work and wait for the running task; True when none is left."""
        self.invalidate()
        return self._runner.wait(timeout_ms)

    def _start_waiting(self) -> None:
        if self._waiting is None:
            self.idle.emit()
            return
        (rid, task), self._waiting = self._waiting, None
        self._running_id = rid
        self._runner.start(task)

    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if self._running_id == self._latest:
            self.progressed.emit(self._running_id, stage, fraction)

    @Slot(object)
    def _on_partial(self, value: object) -> None:
        if self._running_id == self._latest:
            self.partial.emit(self._running_id, value)

    @Slot(object)
    def _on_done(self, result: object) -> None:
        rid = self._running_id
        if rid == self._latest:
            self._unanswered = False
            self.done.emit(rid, result)
        else:
            self.dropped.emit(rid)

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        rid = self._running_id
        if rid == self._latest:
            self._unanswered = False
            self.failed.emit(rid, message, details)
        else:
            self.dropped.emit(rid)

    @Slot()
    def _on_finished(self) -> None:
        self._running_id = 0
        self._start_waiting()
