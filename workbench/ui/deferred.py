"""`Deferred`: a call made one event-loop turn later with the latest argument given, so that a burst of requests
costs one call and a slow handler does not lengthen the turn that triggered it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, QTimer

T = TypeVar("T")


class Deferred(Generic[T]):
    """`schedule(value)` calls `target(value)` on the next turn of the event loop (only the latest value of a
    burst); `flush()` makes a scheduled call now, `cancel()` drops it."""

    def __init__(self, target: Callable[[T], object], parent: QObject) -> None:
        self._target = target
        self._pending: list[T] = []       # at most one value
        self._timer = QTimer(parent, singleShot=True, interval=0)
        self._timer.timeout.connect(self.flush)

    def schedule(self, value: T) -> None:
        self._pending = [value]
        self._timer.start()

    def is_pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        self._timer.stop()
        if self._pending:
            value = self._pending.pop()
            self._target(value)

    def cancel(self) -> None:
        self._timer.stop()
        self._pending.clear()
