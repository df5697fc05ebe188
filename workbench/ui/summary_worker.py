"""Model summaries computed off the GUI thread.

Every `request()` gets a new id; only the result of the latest request is delivered. A result that comes
back after the selection has moved on (its id is no longer the latest) is dropped, so a slow summary of
a large model can never overwrite the summary of the architecture the user is looking at now.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

# (arch, input_shape, num_classes, options) -> ModelSummary; the engine's summarize is thread-safe.
ComputeFn = Callable[[str, tuple[int, int, int] | None, int | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class SummaryRequest:
    """What to summarize; `request_id` identifies it in the worker's signals."""

    request_id: int
    arch: str
    input_shape: tuple[int, int, int] | None
    num_classes: int | None
    options: dict[str, Any] = field(default_factory=dict)


def engine_summarize(
    arch: str, input_shape: tuple[int, int, int] | None, num_classes: int | None, options: dict[str, Any]
) -> Any:
    """The engine's summarize (imported lazily: it pulls in torch)."""
    from workbench.models import summarize

    return summarize(arch, input_shape=input_shape, num_classes=num_classes, options=options)


class _Relay(QObject):
    """Lives in the GUI thread; the runnable emits through it, so delivery is queued to the GUI."""

    done = Signal(int, object)
    error = Signal(int, str, str, bool)


class _SummaryJob(QRunnable):
    def __init__(self, request: SummaryRequest, compute: ComputeFn, relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._request = request
        self._compute = compute
        self._relay = relay

    def run(self) -> None:
        r = self._request
        try:
            result = self._compute(r.arch, r.input_shape, r.num_classes, dict(r.options))
        except Exception as exc:  # reported to the GUI, never raised in a pool thread
            from workbench.errors import WorkbenchError
            from workbench.ui.dialogs import error_text

            message, details = error_text(exc)
            self._relay.error.emit(r.request_id, message, details or traceback.format_exc(),
                                   isinstance(exc, WorkbenchError))
            return
        self._relay.done.emit(r.request_id, result)


class SummaryWorker(QObject):
    """Runs summaries in a private thread pool and delivers only the latest one."""

    started = Signal(int)                 # request id
    finished = Signal(int, object)        # request id, ModelSummary (the latest request only)
    failed = Signal(int, str, str, bool)  # request id, one-sentence message, details, is a WorkbenchError
    dropped = Signal(int)                 # request id of a stale result that was ignored

    def __init__(self, compute: ComputeFn | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._compute: ComputeFn = compute or engine_summarize
        self._pool = QThreadPool(self)
        # Two threads: a new request can start while a stale, slow one is still finishing.
        self._pool.setMaxThreadCount(2)
        self._pool.setExpiryTimeout(2000)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._relay.error.connect(self._on_error)
        self._lock = threading.Lock()
        self._next_id = 0
        self._latest = 0
        self._answered = True  # whether the latest request has been delivered (or failed)

    @property
    def latest_id(self) -> int:
        """Id of the most recent request (0 before the first)."""
        return self._latest

    def is_busy(self) -> bool:
        """True while the latest request has not been answered yet."""
        return not self._answered

    def request(
        self,
        arch: str,
        *,
        input_shape: tuple[int, int, int] | None = None,
        num_classes: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> int:
        """Queue a summary; returns its id. Requests queued but not yet started are discarded."""
        with self._lock:
            self._next_id += 1
            rid = self._next_id
            self._latest = rid
        # Jobs still waiting in the queue are already stale: drop them without running them.
        self._pool.clear()
        request = SummaryRequest(rid, arch, input_shape, num_classes, dict(options or {}))
        self._answered = False
        self._pool.start(_SummaryJob(request, self._compute, self._relay))
        self.started.emit(rid)
        return rid

    def invalidate(self) -> None:
        """Forget the latest request: whatever is in flight will be dropped when it arrives."""
        with self._lock:
            self._next_id += 1
            self._latest = self._next_id
        self._answered = True
        self._pool.clear()

    def _accept(self, rid: int) -> bool:
        if rid != self._latest:
            self.dropped.emit(rid)
            return False
        self._answered = True
        return True

    def _on_done(self, rid: int, result: object) -> None:
        if self._accept(rid):
            self.finished.emit(rid, result)

    def _on_error(self, rid: int, message: str, details: str, user_error: bool) -> None:
        if self._accept(rid):
            self.failed.emit(rid, message, details, user_error)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Discard queued work and wait for running jobs; True when the pool is idle."""
        self.invalidate()
        return bool(self._pool.waitForDone(timeout_ms))
