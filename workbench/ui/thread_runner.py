"""The QThread + worker-object life cycle shared by the training and download runners."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Slot


class ThreadRunner(QObject):
    """Runs one worker object (with a `run()` slot and a `done` signal) in its own QThread.

    Subclasses say how to ask the work to end (`request_stop`) and what to do once the thread has ended
    (`thread_ended`, called in the GUI thread after the worker's last queued signals were delivered).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: Any = None

    def is_running(self) -> bool:
        return self._thread is not None

    def launch(self, worker: QObject, name: str) -> None:
        """Move `worker` into a new QThread named `name` and start it."""
        if self._thread is not None:
            raise RuntimeError(f"{name} is already running")
        thread = QThread()
        thread.setObjectName(name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)  # type: ignore[attr-defined]
        # Direct: quit must work even while the GUI thread is blocked in wait().
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # type: ignore[attr-defined]
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        thread.start()

    def request_stop(self) -> None:
        """Ask the work to end soon (cooperatively); overridden by subclasses."""

    def thread_ended(self) -> None:
        """Called once per run, in the GUI thread, after the thread has ended; overridden by subclasses."""

    def wait(self, timeout_ms: int) -> bool:
        """Ask the work to stop and wait up to `timeout_ms` for the thread; delivers its last signals."""
        thread = self._thread
        if thread is None:
            return True
        self.request_stop()
        if not thread.wait(max(0, int(timeout_ms))):
            return False
        # Deliver the worker's queued signals (final result, thread finished) before returning.
        QCoreApplication.sendPostedEvents(None, 0)
        QCoreApplication.processEvents()
        if self._thread is thread:
            self._on_thread_finished()
        return True

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        if thread is None:
            return
        self._thread = self._worker = None
        thread.wait()
        del worker, thread  # Python owns both; they are destroyed here, in the GUI thread
        self.thread_ended()
