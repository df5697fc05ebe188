"""Downloading a data set off the GUI thread, with progress and cancel.

`run_download` is Qt-free (testable with a Mock sink); `DownloadRunner` runs it in a QThread and shows a
QProgressDialog whose Cancel button sets the cancel flag the engine polls.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from workbench.errors import WorkbenchError
from workbench.ui.thread_runner import ThreadRunner


class DownloadSink(Protocol):
    def progress(self, done: int, total: int) -> None: ...
    def finished(self, ok: bool, message: str, details: str) -> None: ...


def run_download(name: str, root: Path | None, sink: DownloadSink, cancel: threading.Event, *,
                 download: Callable[..., Any] | None = None, min_interval: float = 0.05) -> bool:
    """Download data set `name` into `root`, reporting to `sink`; never raises. Returns success."""
    if download is None:
        import workbench.data as data

        download = data.download
    last = [float("-inf"), -1.0]  # time and fraction of the last report

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        fraction = done / total if total else 0.0
        # Report at most every min_interval, but never hide a big jump (or the end) behind the throttle.
        if now - last[0] >= min_interval or fraction - last[1] >= 0.05 or (total and done >= total):
            last[0], last[1] = now, fraction
            sink.progress(int(done), int(total))

    try:
        download(name, root, progress=progress, cancel=cancel.is_set)
    except WorkbenchError as exc:
        sink.finished(False, "" if cancel.is_set() else str(exc), "")
        return False
    except Exception as exc:  # network or disk failure: report, keep the app alive
        sink.finished(False, f"Downloading {name} failed ({type(exc).__name__}); check the connection and "
                             "the data folder, then try again.", traceback.format_exc())
        return False
    if cancel.is_set():
        sink.finished(False, "", "")
        return False
    sink.finished(True, "", "")
    return True


class _DownloadWorker(QObject):
    progressed = Signal(int, int)
    ended = Signal(bool, str, str)
    done = Signal()

    def __init__(self, name: str, root: Path | None, cancel: threading.Event) -> None:
        super().__init__()
        self._name, self._root, self._cancel = name, root, cancel

    def progress(self, done: int, total: int) -> None:
        self.progressed.emit(done, total)

    def finished(self, ok: bool, message: str, details: str) -> None:
        self.ended.emit(ok, message, details)

    @Slot()
    def run(self) -> None:
        try:
            # Looked up at call time so tests can monkeypatch workbench.data.download.
            import workbench.data as data

            run_download(self._name, self._root, self, self._cancel, download=data.download)
        finally:
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())
            self.done.emit()


class DownloadRunner(ThreadRunner):
    """One download at a time, with a progress dialog; emits `finished(ok, message, details)`."""

    finished = Signal(bool, str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self.dialog: QProgressDialog | None = None
        self._result: tuple[bool, str, str] = (False, "", "")

    def start(self, name: str, root: Path | None, dialog_parent: QWidget | None = None) -> None:
        if self._thread is not None:
            return
        self.cancel_event = threading.Event()
        dialog = QProgressDialog(f"Downloading {name}…", "Cancel", 0, 0, dialog_parent)
        dialog.setObjectName("downloadProgress")
        dialog.setWindowTitle("Download")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.cancel)
        dialog.show()
        self.dialog = dialog
        worker = _DownloadWorker(name, root, self.cancel_event)
        worker.progressed.connect(self._on_progress)
        worker.ended.connect(self._on_ended)
        self.launch(worker, "downloadThread")

    @Slot()
    def cancel(self) -> None:
        """Ask the download to stop (the engine removes partial files)."""
        self.cancel_event.set()

    def request_stop(self) -> None:
        self.cancel()

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self.dialog is None:
            return
        if total > 0:
            # QProgressDialog takes ints; scale bytes to kilobytes so large files fit.
            self.dialog.setMaximum(max(1, total // 1024))
            self.dialog.setValue(min(done, total) // 1024)
            self.dialog.setLabelText(f"Downloading… {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            self.dialog.setLabelText(f"Downloading… {done / 1e6:.1f} MB")

    @Slot(bool, str, str)
    def _on_ended(self, ok: bool, message: str, details: str) -> None:
        self._result = (ok, message, details)

    def thread_ended(self) -> None:
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        ok, message, details = self._result
        self._result = (False, "", "")
        self.finished.emit(ok, message, details)
