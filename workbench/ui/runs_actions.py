"""What the runs list's buttons do to the selected runs: resume, stop (a run of another process, through the
store), rename, delete. The base class of RunsPanel, kept apart so the panel reads as its listing and curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QStandardItem
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from workbench.runs.records import RunStatus
from workbench.ui.runs_table import KEYS, RUN_ROLE

if TYPE_CHECKING:
    from workbench.runs import RunRecord, RunStore
    from workbench.ui.plot_data import RunCurves


class RunActions(QWidget):
    """Signals and actions of the runs list (see RunsPanel)."""

    overlayChanged = Signal(object)
    followChanged = Signal(object)
    historyLoaded = Signal(object)
    resumeRequested = Signal(str)
    errorOccurred = Signal(str, str)

    active_run_id: str | None

    if TYPE_CHECKING:   # provided by RunsPanel
        @property
        def store(self) -> RunStore: ...
        def selected_run_ids(self) -> list[str]: ...
        def _record(self, run_id: str) -> RunRecord | None: ...
        def refresh(self) -> None: ...
        def is_external(self, record: RunRecord) -> bool: ...
        def overlay_data(self) -> list[RunCurves]: ...

    def resume_selected(self) -> None:
        ids = self.selected_run_ids()
        if len(ids) == 1 and (rec := self._record(ids[0])) is not None and rec.status.can_resume:
            self.resumeRequested.emit(rec.run_id)

    def stop_selected(self) -> int:
        """Ask the selected runs that other processes train to stop (through the store); returns how many."""
        asked = 0
        for run_id in self.selected_run_ids():
            rec = self._record(run_id)
            if rec is None or not self.is_external(rec):
                continue
            try:
                self.store.request_stop(run_id)
                asked += 1
            except Exception as exc:
                self.errorOccurred.emit(f"Could not ask run {run_id} to stop: {exc}", "")
        self.refresh()
        return asked

    def rename_run(self, run_id: str, name: str) -> bool:
        """Give a run a name (it labels its curves); an empty name goes back to the automatic label."""
        try:
            self.store.update_run(run_id, name=name.strip())
        except Exception as exc:
            self.errorOccurred.emit(f"Could not rename run {run_id}: {exc}", "")
            return False
        self.refresh()
        return True

    def rename_selected(self) -> bool:
        ids = self.selected_run_ids()
        rec = self._record(ids[0]) if len(ids) == 1 else None
        if rec is None:
            return False
        name, ok = QInputDialog.getText(self, "Rename run", f"Name of run {rec.run_id}:", QLineEdit.EchoMode.Normal,
                                        rec.name)
        return bool(ok) and self.rename_run(rec.run_id, name)

    def _on_item_changed(self, item: QStandardItem) -> None:
        run_id = str(item.data(RUN_ROLE) or "")
        rec = self._record(run_id)
        if rec is not None and item.column() == KEYS.index("name") and item.text().strip() != rec.name:
            self.rename_run(run_id, item.text())

    def confirm_delete(self, count: int) -> bool:
        """Ask before deleting (tests monkeypatch this or call delete_selected(confirm=False))."""
        answer = QMessageBox.question(self, "Delete runs",
                                      f"Delete {count} run(s) with their checkpoints and metrics?")
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self, confirm: bool = True) -> int:
        """Delete the selected runs (rows and folders); returns how many were deleted."""
        ids = [i for i in self.selected_run_ids() if i != self.active_run_id
               and (rec := self._record(i)) is not None and rec.status != RunStatus.RUNNING]
        if not ids or (confirm and not self.confirm_delete(len(ids))):
            return 0
        deleted = 0
        for run_id in ids:
            try:
                self.store.delete_run(run_id)
                deleted += 1
            except Exception as exc:
                self.errorOccurred.emit(str(exc), "")
        self.refresh()
        self.overlayChanged.emit(self.overlay_data())
        return deleted
