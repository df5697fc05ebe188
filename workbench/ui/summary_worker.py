"""Model summaries computed off the GUI thread, the latest request winning, answered from a cache when it can.

A request the cache can answer (`lookup`, in the GUI thread: a dictionary look-up) is answered at once, before
`request()` returns: switching back to an architecture already summarised costs no computation. Every
`request()` gets a new id; only the result of the latest request is delivered. A result that comes back
after the selection has moved on is dropped, so a slow summary of a large model can never overwrite the summary
of the architecture the user is looking at now. Summaries are computed one at a time (the engine's by the app's
summary helper process): a request made while one computes waits for it (about 1 s at most, for the largest
torchvision models), replacing any older waiting request, so the newest goes next. `shutdown()` cancels the one
in flight through its `Cancellation` (for the engine's: its helper is ended).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from workbench.ui.tasks import TaskRunner

if TYPE_CHECKING:
    from workbench.models.summary import ModelSummary
    from workbench.models.summary_process import Cancellation

# (arch, input_shape, num_classes, options, cancellation) -> ModelSummary, called in a worker thread.
ComputeFn = Callable[[str, tuple[int, int, int] | None, int | None, dict[str, Any], "Cancellation"], Any]
# The same arguments -> the cached result, or None (called in the GUI thread: must be a cheap look-up).
LookupFn = Callable[[str, tuple[int, int, int] | None, int | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class SummaryRequest:
    """What to summarize; `request_id` identifies it in the worker's signals."""

    request_id: int
    arch: str
    input_shape: tuple[int, int, int] | None
    num_classes: int | None
    options: dict[str, Any] = field(default_factory=dict)


def engine_summarize(arch: str, input_shape: tuple[int, int, int] | None, num_classes: int | None,
                     options: dict[str, Any], cancellation: Cancellation | None = None) -> ModelSummary:
    """The engine's summarize through the session's summary cache (imported lazily: it pulls in torch), computed in
    a helper process so that this thread never holds the GIL for long; a result that arrives too late to be shown
    is still cached. `cancellation` abandons it (at shutdown)."""
    from workbench.models.summary_process import summarize_in_helper

    return summarize_in_helper(arch, input_shape=input_shape, num_classes=num_classes, options=options,
                               cancellation=cancellation)


def engine_lookup(arch: str, input_shape: tuple[int, int, int] | None, num_classes: int | None,
                  options: dict[str, Any]) -> ModelSummary | None:
    """The session cache's summary for these arguments, or None."""
    from workbench.models.summary_cache import session_cache

    return session_cache().lookup(arch, input_shape=input_shape, num_classes=num_classes, options=options)


class SummaryWorker(QObject):
    """Runs summaries on TaskRunners and delivers only the latest one; `lookup` answers from a cache first."""

    started = Signal(int)                 # request id
    finished = Signal(int, object)        # request id, ModelSummary (the latest request only)
    failed = Signal(int, str, str, bool)  # request id, one-sentence message, details, is a WorkbenchError
    dropped = Signal(int)                 # request id of a stale result that was ignored

    def __init__(self, compute: ComputeFn | None = None, parent: QObject | None = None, *,
                 lookup: LookupFn | None = None) -> None:
        """Without `compute`, the engine's summarize and the session cache (`lookup` defaults to it)."""
        super().__init__(parent)
        self._compute: ComputeFn = compute or engine_summarize
        self._lookup: LookupFn | None = lookup if compute is not None or lookup is not None else engine_lookup
        self.computations = 0             # requests sent to a thread
        self.cache_hits = 0               # requests answered by `lookup`
        self._next_id = 0
        self._latest = 0
        self._answered = True             # whether the latest request has been delivered (or failed)
        self._running: list[TaskRunner] = []
        self._waiting: SummaryRequest | None = None

    @property
    def latest_id(self) -> int:
        """Id of the most recent request (0 before the first)."""
        return self._latest

    def is_busy(self) -> bool:
        """True while the latest request has not been answered yet."""
        return not self._answered

    def request(self, arch: str, *, input_shape: tuple[int, int, int] | None = None,
                num_classes: int | None = None, options: dict[str, Any] | None = None) -> int:
        """Queue a summary; returns its id. A request still waiting to start is replaced by this one. A cached
        summary is delivered (`finished`) before this returns."""
        self._next_id += 1
        self._latest = rid = self._next_id
        self._answered = False
        request = SummaryRequest(rid, arch, input_shape, num_classes, dict(options or {}))
        if self._waiting is not None:
            self.dropped.emit(self._waiting.request_id)
            self._waiting = None
        cached = self._lookup(arch, input_shape, num_classes, dict(request.options)) if self._lookup else None
        if cached is not None:
            self.cache_hits += 1
            self._answered = True
            self.finished.emit(rid, cached)
            return rid
        self._waiting = request
        self._start_waiting()
        return rid

    def invalidate(self) -> None:
        """Forget the latest request: whatever is in flight will be dropped when it arrives."""
        self._next_id += 1
        self._latest = self._next_id
        self._answered = True
        self._waiting = None

    def _start_waiting(self) -> None:
        if self._waiting is None or self._running:  # one at a time
            return
        request, self._waiting = self._waiting, None
        runner = TaskRunner("summary", self)
        runner.setProperty("request_id", request.request_id)
        # Bound slots, not lambdas: Qt drops them with this object, so a late result can never reach a dead one.
        runner.done.connect(self._on_done)
        runner.failed.connect(self._on_error)
        runner.finished.connect(self._on_finished)
        self._running.append(runner)
        self.computations += 1
        from workbench.models.summary_process import Cancellation

        compute, cancellation = self._compute, Cancellation()
        runner.start(lambda sink: compute(request.arch, request.input_shape, request.num_classes,
                                          dict(request.options), cancellation),
                     on_cancel=cancellation.cancel)  # shutdown() ends a helper instead of waiting for its answer
        self.started.emit(request.request_id)

    def _request_id(self) -> int:
        sender = self.sender()
        return int(sender.property("request_id")) if sender is not None else -1

    def _accept(self, rid: int) -> bool:
        if rid != self._latest:
            self.dropped.emit(rid)
            return False
        self._answered = True
        return True

    @Slot(object)
    def _on_done(self, result: object) -> None:
        rid = self._request_id()
        if self._accept(rid):
            self.finished.emit(rid, result)

    @Slot(str, str)
    def _on_error(self, message: str, details: str) -> None:
        rid = self._request_id()
        if self._accept(rid):
            self.failed.emit(rid, message, details, not details)  # a WorkbenchError comes without details

    @Slot()
    def _on_finished(self) -> None:
        runner = self.sender()
        if isinstance(runner, TaskRunner) and runner in self._running:
            self._running.remove(runner)
            runner.deleteLater()
        self._start_waiting()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Discard waiting work, cancel the running summary (one in a helper process ends at once: its helper is
        ended) and wait up to `timeout_ms` in all; one still running then is abandoned (a daemon thread with
        nothing to save). True when none was left running."""
        self.invalidate()
        deadline = time.monotonic() + max(0, timeout_ms) / 1000
        finished = True
        for runner in list(self._running):
            if not runner.wait(max(0, int((deadline - time.monotonic()) * 1000))):
                runner.abandon()
                finished = False
        return finished
