"""The runs list: every run in the workspace's run store, with overlay, resume, delete and open-folder."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.plots import RunCurves

if TYPE_CHECKING:
    from workbench.runs import RunRecord, RunStatus, RunStore
    from workbench.training.events import FitResult, FitStart

if TYPE_CHECKING:
    from workbench.runs import RunStatus

COLUMNS = ("Status", "Architecture", "Dataset", "Best val acc", "Epochs", "Date", "Run")
HINT = "Select one or more runs (Ctrl/Shift-click) to overlay their curves on the training plots."


class _SortItem(QTableWidgetItem):
    """A cell that sorts by a hidden key (numbers, timestamps) instead of its text."""

    def __init__(self, text: str, key: float | str) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _SortItem) and type(self.key) is type(other.key):
            return bool(self.key < other.key)  # type: ignore[operator]
        return self.text() < other.text()


def run_label(rec: RunRecord) -> str:
    """How a run is named in legends: its name, else architecture/dataset and its start date and time."""
    if getattr(rec, "name", ""):
        return str(rec.name)
    when = _dt.datetime.fromtimestamp(rec.created_at).strftime("%Y-%m-%d %H:%M:%S")
    return f"{rec.arch}/{rec.dataset} {when}"


class RunsPanel(QWidget):
    """`overlayChanged(list[RunCurves])` carries the selected stored runs' curves; `resumeRequested(run_id)` asks
    for a run to be continued; `errorOccurred(message, details)`."""

    overlayChanged = Signal(object)
    resumeRequested = Signal(str)
    errorOccurred = Signal(str, str)

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.workspace = Path(workspace)
        self._store: RunStore | None = None
        self.records: list[RunRecord] = []
        self.active_run_id: str | None = None   # the run being trained here (never overlaid/deleted)
        self.runsList = QTableWidget(0, len(COLUMNS))
        self.runsList.setObjectName("runsList")
        self.runsList.setHorizontalHeaderLabels(COLUMNS)
        self.runsList.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runsList.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runsList.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runsList.verticalHeader().setVisible(False)
        header = self.runsList.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.runsList.setSortingEnabled(True)
        self.runsList.sortByColumn(COLUMNS.index("Date"), Qt.SortOrder.DescendingOrder)
        self.runsList.itemSelectionChanged.connect(self._on_selection)
        self.hintLabel = QLabel(HINT)
        self.hintLabel.setObjectName("runsHint")
        self.hintLabel.setWordWrap(True)
        self.hintLabel.setEnabled(False)  # drawn in the palette's muted text colour
        buttons = QHBoxLayout()
        self.refreshButton = self._button("Refresh", "refreshRunsButton", self.refresh, buttons)
        self.resumeButton = self._button("Resume", "resumeRunButton", self.resume_selected, buttons)
        self.deleteButton = self._button("Delete…", "deleteRunButton", lambda: self.delete_selected(), buttons)
        self.openButton = self._button("Open folder", "openRunFolderButton", lambda: self.open_folder(), buttons)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hintLabel)
        layout.addWidget(self.runsList)
        layout.addLayout(buttons)
        self._update_buttons()

    def _button(self, text: str, name: str, slot: Callable[[], object], layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    @property
    def store(self) -> RunStore:
        """The RunStore (opened on first use)."""
        if self._store is None:
            from workbench.runs import RunStore

            self._store = RunStore(self.workspace)
        return self._store

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # ----- listing -------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Reload the runs from the store, keeping the selection."""
        try:
            records = self.store.list_runs()
        except Exception as exc:
            self.errorOccurred.emit(f"Could not read the run list: {exc}", "")
            return
        selected = set(self.selected_run_ids())
        self.runsList.blockSignals(True)
        self.runsList.setSortingEnabled(False)  # rows would move while they are filled
        self.runsList.setRowCount(len(records))
        for row, rec in enumerate(records):
            best = rec.best_val_accuracy
            date = _dt.datetime.fromtimestamp(rec.created_at).strftime("%Y-%m-%d %H:%M")
            planned = rec.config.get("epochs") if isinstance(rec.config, dict) else None
            values: tuple[tuple[str, float | str], ...] = (
                      (rec.status, rec.status), (rec.arch, rec.arch), (rec.dataset, rec.dataset),
                      ("" if best is None else f"{100 * best:.2f} %", -1.0 if best is None else best),
                      (f"{rec.epochs_completed}/{planned}" if planned else str(rec.epochs_completed),
                       rec.epochs_completed), (date, rec.created_at), (rec.name or rec.run_id, rec.name or rec.run_id))
            for col, (text, key) in enumerate(values):
                item = _SortItem(str(text), key)
                item.setData(Qt.ItemDataRole.UserRole, rec.run_id)
                if rec.message:
                    item.setToolTip(rec.message)
                self.runsList.setItem(row, col, item)
        self.records = records
        self.runsList.setSortingEnabled(True)
        self.runsList.clearSelection()
        for row in range(self.runsList.rowCount()):
            if self._row_run_id(row) in selected:
                self.runsList.selectRow(row)
        self.runsList.blockSignals(False)
        self._update_buttons()

    def run_started(self, start: FitStart) -> None:
        """A run is being trained here: list it (it is never overlaid or deleted while live)."""
        self.active_run_id = start.run_id
        self.refresh()

    def run_finished(self, _result: FitResult) -> None:
        """The live run ended: show how."""
        self.active_run_id = None
        self.refresh()

    def status_of(self, run_id: str) -> RunStatus | None:
        """The status shown for `run_id` (None if it is not listed)."""
        rec = self._record(run_id)
        return None if rec is None else rec.status

    def newest_run_id(self) -> str | None:
        """The most recently created run in the list."""
        records = sorted(self.records, key=lambda r: r.created_at, reverse=True)
        return records[0].run_id if records else None

    def _row_run_id(self, row: int) -> str | None:
        item = self.runsList.item(row, 0)
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def selected_run_ids(self) -> list[str]:
        """Selected runs in the table's (sorted) row order."""
        rows = sorted({index.row() for index in self.runsList.selectionModel().selectedRows()})
        return [rid for r in rows if (rid := self._row_run_id(r))]

    def select_runs(self, run_ids: list[str]) -> None:
        """Select rows by run id (this also updates the overlays)."""
        self.runsList.clearSelection()
        mode = self.runsList.selectionMode()
        self.runsList.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in range(self.runsList.rowCount()):
            if self._row_run_id(row) in run_ids:
                self.runsList.selectRow(row)
        self.runsList.setSelectionMode(mode)

    def _record(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.records if r.run_id == run_id), None)

    def _update_buttons(self) -> None:
        ids = self.selected_run_ids()
        one = self._record(ids[0]) if len(ids) == 1 else None
        self.resumeButton.setEnabled(one is not None and one.status.can_resume)
        self.deleteButton.setEnabled(bool(ids) and self.active_run_id not in ids)
        self.openButton.setEnabled(one is not None)

    # ----- overlays ------------------------------------------------------------------------
    @Slot()
    def _on_selection(self) -> None:
        self._update_buttons()
        self.overlayChanged.emit(self.overlay_data())

    def overlay_data(self) -> list[RunCurves]:
        """Metrics of the selected runs (the live run excluded)."""
        out: list[RunCurves] = []
        for run_id in self.selected_run_ids():
            if run_id == self.active_run_id:
                continue
            rec = self._record(run_id)
            try:
                metrics = self.store.metrics(run_id)
            except Exception as exc:
                self.errorOccurred.emit(f"Could not read the metrics of run {run_id}: {exc}", "")
                continue
            out.append(RunCurves(run_id, run_label(rec) if rec else run_id, metrics))
        return out

    # ----- actions -------------------------------------------------------------------------
    def resume_selected(self) -> None:
        ids = self.selected_run_ids()
        if len(ids) == 1 and (rec := self._record(ids[0])) is not None and rec.status.can_resume:
            self.resumeRequested.emit(rec.run_id)

    def confirm_delete(self, count: int) -> bool:
        """Ask before deleting (tests monkeypatch this or call delete_selected(confirm=False))."""
        answer = QMessageBox.question(self, "Delete runs",
                                      f"Delete {count} run(s) with their checkpoints and metrics?")
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self, confirm: bool = True) -> int:
        """Delete the selected runs (rows and folders); returns how many were deleted."""
        ids = [i for i in self.selected_run_ids() if i != self.active_run_id]
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

    def folder_of(self, run_id: str) -> Path:
        return Path(self.store.run_dir(run_id))

    def open_folder(self, run_id: str | None = None) -> bool:
        """Open the run's folder in the system file manager."""
        ids = [run_id] if run_id else self.selected_run_ids()
        if not ids:
            return False
        folder = self.folder_of(ids[0])
        if not folder.is_dir():
            self.errorOccurred.emit(f"The folder of run {ids[0]} no longer exists; refresh the run list.", "")
            return False
        return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))))
