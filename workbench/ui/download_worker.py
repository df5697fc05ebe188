"""Downloading a data set off the GUI thread, with a progress dialog and Cancel.

`download_task` is Qt-free (run it with a RecordingSink in tests); `DownloadRunner` runs it on a TaskRunner and
shows a QProgressDialog whose Cancel asks the engine to stop (it polls the task's cancel flag per chunk).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from workbench.errors import DataUnavailableError, WorkbenchError
from workbench.ui.tasks import Task, TaskRunner, TaskSink


@dataclass(frozen=True)
class DownloadProgress:
    """Bytes downloaded so far of a data set's files (total 0 when unknown)."""

    done: int
    total: int


def download_task(name: str, root: Path | None, *, download: Callable[..., Any] | None = None,
                  min_interval: float = 0.05) -> Task:
    """A task that downloads data set `name` into `root`; returns True when complete, False when cancelled.
    Progress goes to the sink as DownloadProgress, at most every `min_interval` s (big jumps and the end always)."""

    def task(sink: TaskSink) -> bool:
        fetch = download
        if fetch is None:
            import workbench.data as data  # looked up now, so tests can replace workbench.data.download

            fetch = data.download
        last = [float("-inf"), -1.0]  # time and fraction of the last report

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            fraction = done / total if total else 0.0
            if now - last[0] >= min_interval or fraction - last[1] >= 0.05 or (total and done >= total):
                last[0], last[1] = now, fraction
                sink.partial(DownloadProgress(int(done), int(total)))

        try:
            fetch(name, root, progress=progress, cancel=sink.cancelled)
        except WorkbenchError:
            if sink.cancelled():
                return False
            raise
        except OSError as exc:  # the network or the disk failed: what happened, and what to do
            raise DataUnavailableError(f"Downloading {name} failed ({exc}); check the connection and the data "
                                       "folder, then try again.") from exc
        return not sink.cancelled()

    return task


class DownloadRunner(QObject):
    """One download at a time, with a progress dialog; emits `finished(ok, message, details)` (an empty message
    with ok False means the user cancelled)."""

    finished = Signal(bool, str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = TaskRunner("download", self)
        self.dialog: QProgressDialog | None = None
        self._result: tuple[bool, str, str] = (False, "", "")
        self.runner.partial.connect(self._on_progress)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)

    def is_running(self) -> bool:
        return self.runner.is_running()

    def start(self, name: str, root: Path | None, dialog_parent: QWidget | None = None) -> None:
        """Download `name` into `root` (ignored while a download runs)."""
        if self.runner.is_running():
            return
        dialog = QProgressDialog(f"Downloading {name}…", "Cancel", 0, 0, dialog_parent)
        dialog.setObjectName("downloadProgress")
        dialog.setWindowTitle("Download")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.cancel)
        dialog.show()
        self.dialog = dialog
        self._result = (False, "", "")
        self.runner.start(download_task(name, root))

    @Slot()
    def cancel(self) -> None:
        """Ask the download to stop (the engine removes partial files)."""
        self.runner.cancel()

    def wait(self, timeout_ms: int) -> bool:
        """Cancel and wait for the download thread; True when none is left."""
        return self.runner.wait(timeout_ms)

    @Slot(object)
    def _on_done(self, ok: object) -> None:
        self._result = (bool(ok), "", "")

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self._result = (False, message, details)

    @Slot(object)
    def _on_progress(self, p: DownloadProgress) -> None:
        if self.dialog is None:
            return
        if p.total > 0:
            # QProgressDialog takes ints; scale bytes to kilobytes so large files fit.
            self.dialog.setMaximum(max(1, p.total // 1024))
            self.dialog.setValue(min(p.done, p.total) // 1024)
            self.dialog.setLabelText(f"Downloading… {p.done / 1e6:.1f} of {p.total / 1e6:.1f} MB")
        else:
            self.dialog.setLabelText(f"Downloading… {p.done / 1e6:.1f} MB")

    @Slot()
    def _on_finished(self) -> None:
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        ok, message, details = self._result
        self.finished.emit(ok, message, details)
