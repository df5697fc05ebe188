"""The runs list: every run in the workspace's run store, with its hyper-parameters, and what can be done with runs.

- The table (`runsList`, see runs_table.py) sorts on any column; runs of an experiment are grouped under one row,
  and selecting that row selects its runs. Parameter counts are computed off the GUI thread and filled in later.
- Selecting runs overlays their curves (`overlayChanged`), labelled by their names or by what differs between them
  (run_labels.py); "Show only what differs" (`differsOnly`) hides the columns in which the selected runs agree.
- Runs trained by another process (a CLI or torchrun run) are followed: the store is polled off the GUI thread
  (run_watch.py) while such a run is running or this tab or the curves are on screen; selecting one such run shows
  its curves live (`followChanged`), and Stop asks it to stop through the store.
- A run that starts here gets its stored history (a resumed run's earlier epochs) through `historyLoaded`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.runs.experiments import experiment_names
from workbench.runs.records import RunStatus
from workbench.ui.plot_data import RunCurves, overlay_metric_names
from workbench.ui.run_labels import difference_labels
from workbench.ui.run_watch import (
    FollowRequest,
    PollResult,
    RunWatcher,
    history_task,
    parameters_task,
    run_curves,
)
from workbench.ui.runs_actions import RunActions
from workbench.ui.runs_table import KEYS, RunsModel, RunsView
from workbench.ui.tasks import TaskRunner

if TYPE_CHECKING:
    from PySide6.QtGui import QCloseEvent, QHideEvent

    from workbench.runs import RunRecord, RunStore
    from workbench.training.events import FitResult, FitStart

__all__ = ["RunCurves", "RunsPanel"]

HINT = "Select runs to overlay their curves (an experiment: all its runs); double-click a name to rename."


class RunsPanel(RunActions):
    """`overlayChanged(list[RunCurves])`, `followChanged(RunCurves | None)` (a run of another process to show as the
    main curves), `historyLoaded(RunCurves)` (the stored points of the run that started here), `resumeRequested(run
    id)`, `errorOccurred(message, details)`."""

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.workspace = Path(workspace)
        self._store: RunStore | None = None
        self.records: list[RunRecord] = []
        self.active_run_id: str | None = None   # the run being trained here (never overlaid/deleted)
        self.parameters: dict[str, int | None] = {}
        self.experiments: dict[str, str] = {}    # experiment id -> name
        self._counted: set[str] = set()
        self.curves_visible = False
        self.following: str | None = None        # the run of another process shown as the main curves
        self._stamps: dict[str, float] = {}      # updated_at of the runs whose curves are shown
        self._pending_history: FitStart | None = None
        self.model = RunsModel(self)
        self.runsList = RunsView(self.model)
        self.runsList.itemSelectionChanged.connect(self._on_selection)
        self.model.itemChanged.connect(self._on_item_changed)
        self.hintLabel = QLabel(HINT)
        self.hintLabel.setObjectName("runsHint")
        self.hintLabel.setWordWrap(True)
        self.hintLabel.setEnabled(False)  # drawn in the palette's muted text colour
        self.differsOnly = QCheckBox("Show only what differs")
        self.differsOnly.setObjectName("differsOnly")
        self.differsOnly.setToolTip("With several runs selected, hide the columns in which they all agree.")
        self.differsOnly.toggled.connect(self._apply_differs)
        buttons = QHBoxLayout()
        self.resumeButton = self._button("Resume", "resumeRunButton", self.resume_selected, buttons)
        self.stopButton = self._button("Stop", "stopRunButton", self.stop_selected, buttons)
        self.stopButton.setToolTip("Ask a run trained by another process (e.g. the CLI) to stop; it checkpoints.")
        self.renameButton = self._button("Rename…", "renameRunButton", self.rename_selected, buttons)
        self.deleteButton = self._button("Delete…", "deleteRunButton", self._on_delete_clicked, buttons)
        self.openButton = self._button("Open folder", "openRunFolderButton", self._on_open_clicked, buttons)
        buttons.addStretch(1)
        top = QHBoxLayout()   # the check box beside the hint: the button row stays narrow (1024-pixel windows)
        top.addWidget(self.hintLabel, 1)
        top.addWidget(self.differsOnly, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.runsList)
        layout.addLayout(buttons)
        self.watcher = RunWatcher(self._get_store, self)
        self.watcher.polled.connect(self._on_polled)
        self.watcher.failed.connect(self._on_poll_failed)
        self.history_runner = TaskRunner("run-history", self)
        self.history_runner.done.connect(self._on_history)
        self.history_runner.failed.connect(self._on_history_failed)
        self.history_runner.finished.connect(self._next_history)
        self.params_runner = TaskRunner("run-parameters", self)
        self.params_runner.done.connect(self._on_parameters)
        self._update_buttons()

    def _button(self, text: str, name: str, slot: Callable[[], object], layout: QHBoxLayout) -> QToolButton:
        button = QToolButton()
        button.setText(text)
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

    def set_workspace(self, workspace: Path) -> None:
        """List another workspace's runs (its store opened on first use)."""
        self.close_store()
        self.workspace = Path(workspace)
        self.active_run_id = self.following = None
        self.refresh()

    def _get_store(self) -> RunStore:
        return self.store

    def close_store(self) -> None:
        self.shutdown()
        if self._store is not None:
            self._store.close()
            self._store = None

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop polling and wait for this panel's background reads."""
        ok = self.watcher.shutdown(timeout_ms)
        self._pending_history = None
        return all([ok, self.history_runner.wait(timeout_ms), self.params_runner.wait(timeout_ms)])

    # ----- listing -------------------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Reload the runs from the store now (in this thread), keeping the selection. (No Refresh button: the list
        polls the store while it is on screen.)"""
        try:
            records = self.store.list_runs()
            self.experiments = dict(experiment_names(self.store))
        except Exception as exc:
            self.errorOccurred.emit(f"Could not read the run list: {exc}", "")
            return
        self._apply(records)

    def is_external(self, record: RunRecord) -> bool:
        """True for a run being trained right now by another process (not by this app)."""
        if record.status != RunStatus.RUNNING or record.run_id == self.active_run_id:
            return False
        return (record.owner_pid, record.owner_host) != (os.getpid(), socket.gethostname())

    def _apply(self, records: list[RunRecord]) -> None:
        self.records = list(records)
        external = {r.run_id for r in records if self.is_external(r)}
        if self.model.sync(records, self.parameters, external, self.experiments):
            self.runsList.setRootIsDecorated(bool(self.model.groups))
            self.runsList.expandAll()
            for column in range(len(KEYS) - 1):
                self.runsList.resizeColumnToContents(column)
        self._update_buttons()
        self._count_parameters()
        self._update_watch()
        if self.following is None and any(
                self._stamps.get(r.run_id, r.updated_at) != r.updated_at for r in records):
            self._emit_curves()   # an overlaid run changed (it trains elsewhere, or was renamed)

    def _count_parameters(self) -> None:
        """Count the parameters of runs not counted yet, off the GUI thread, while the table is on screen."""
        missing = [r for r in self.records if r.run_id not in self._counted]
        if missing and self.isVisible() and not self.params_runner.is_running():
            self._counted.update(r.run_id for r in missing)
            self.params_runner.start(parameters_task(missing))

    def _on_parameters(self, counts: dict[str, int | None]) -> None:
        self.parameters.update(counts)
        self.model.sync(self.records, self.parameters, {r.run_id for r in self.records if self.is_external(r)},
                        self.experiments)
        self._count_parameters()

    def run_started(self, start: FitStart) -> None:
        """A run is being trained here: list it and load what the store already has of it (a resumed run)."""
        self.active_run_id = start.run_id
        if self.following is not None:   # the live curves are this run's now
            self.following = self.watcher.follow = None
        self.refresh()
        self._pending_history = start
        self._next_history()

    def _next_history(self) -> None:
        start = self._pending_history
        if start is None or self.history_runner.is_running():
            return
        self._pending_history = None
        label = f"{start.arch} on {start.dataset}"
        self.history_runner.start(history_task(self.store, start.run_id, label, start.epochs,
                                               start.batches_per_epoch))

    def _on_history(self, curves: RunCurves) -> None:
        self.historyLoaded.emit(curves)

    def _on_history_failed(self, message: str, details: str) -> None:
        self.errorOccurred.emit(f"Could not load the earlier curves of the run: {message}", details)

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

    def selected_run_ids(self) -> list[str]:
        """Selected runs in display order; a selected experiment stands for all its runs."""
        return self.runsList.selected_run_ids()

    def select_runs(self, run_ids: list[str]) -> None:
        """Select rows by run id (this also updates the overlays)."""
        self.runsList.select_runs(run_ids)

    def select_experiment(self, experiment_id: str) -> None:
        """Select an experiment's group row (its runs are overlaid together)."""
        self.runsList.select_experiment(experiment_id)

    def _record(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.records if r.run_id == run_id), None)

    def _update_buttons(self) -> None:
        ids = self.selected_run_ids()
        records = [r for i in ids if (r := self._record(i)) is not None]
        one = records[0] if len(records) == 1 else None
        self.resumeButton.setEnabled(one is not None and one.status.can_resume and self.active_run_id is None)
        self.deleteButton.setEnabled(any(r.run_id != self.active_run_id and r.status != RunStatus.RUNNING
                                         for r in records))
        self.openButton.setEnabled(one is not None)
        self.renameButton.setEnabled(one is not None)
        self.stopButton.setEnabled(any(self.is_external(r) and not r.stop_requested for r in records))
        self.differsOnly.setEnabled(len(records) >= 2)

    # ----- curves --------------------------------------------------------------------------------------------
    @Slot()
    def _on_selection(self) -> None:
        self._update_buttons()
        self._apply_differs()
        self._emit_curves()

    def _emit_curves(self) -> None:
        """Overlay the selected runs, or follow the one selected run that another process trains."""
        ids = [i for i in self.selected_run_ids() if i != self.active_run_id]
        single = self._record(ids[0]) if len(ids) == 1 else None
        if single is not None and self.active_run_id is None and (
                self.is_external(single) or self.following == single.run_id):
            if self.following != single.run_id:
                self.following = single.run_id
                self.watcher.follow = FollowRequest(single.run_id, difference_labels([single])[single.run_id])
                self._stamps = {}
                self.overlayChanged.emit([])
                self.watcher.poll()
            return
        if self.following is not None:
            self.following = None
            self.watcher.follow = None
            self.followChanged.emit(None)
        self.overlayChanged.emit(self.overlay_data())

    def overlay_data(self) -> list[RunCurves]:
        """Epoch curves of the selected runs (the live run excluded), labelled by what differs between them."""
        records = [r for i in self.selected_run_ids() if i != self.active_run_id and (r := self._record(i))]
        active = self._record(self.active_run_id) if self.active_run_id else None
        labels = difference_labels(records, [active] if active is not None else [])
        out: list[RunCurves] = []
        self._stamps = {}
        for rec in records:
            try:
                out.append(run_curves(self.store, rec, labels[rec.run_id], overlay_metric_names()))
            except Exception as exc:
                self.errorOccurred.emit(f"Could not read the metrics of run {rec.run_id}: {exc}", "")
                continue
            self._stamps[rec.run_id] = rec.updated_at
        return out

    # ----- following runs of other processes -----------------------------------------------------------------
    def set_curves_visible(self, visible: bool) -> None:
        """The curves tab is (not) on screen: poll while it is, so a CLI run that starts shows up."""
        self.curves_visible = visible
        self._update_watch()

    def polling_wanted(self) -> bool:
        """Poll while a run trains in another process, or while this tab or the curves are on screen."""
        return self.isVisible() or self.curves_visible or any(self.is_external(r) for r in self.records)

    def _update_watch(self) -> None:
        self.watcher.set_wanted(self.polling_wanted())

    def _on_polled(self, result: PollResult) -> None:
        self.experiments = dict(result.experiments)
        self._apply(list(result.records))
        followed = result.followed
        follow = self.watcher.follow
        if followed is not None and follow is not None and followed.run_id == self.following == follow.run_id:
            record = self._record(followed.run_id)
            self.watcher.follow = FollowRequest(follow.run_id, follow.label, record.updated_at if record else None)
            self.followChanged.emit(followed)

    def _on_poll_failed(self, message: str) -> None:
        self.watcher.set_wanted(False)   # e.g. the workspace went away: say it once, not twice a second
        self.errorOccurred.emit(f"Could not follow the runs of this workspace: {message}", "")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._update_watch()
        self.watcher.poll()
        self._count_parameters()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown(1000)
        super().closeEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if not self.window().isVisible():   # the window closes: no more reads behind its back
            self.shutdown(1000)
        else:
            self._update_watch()

    # ----- actions -------------------------------------------------------------------------------------------
    @Slot()
    def _on_delete_clicked(self) -> None:
        self.delete_selected()

    @Slot()
    def _on_open_clicked(self) -> None:
        self.open_folder()

    def _apply_differs(self) -> None:
        """Hide the columns in which the selected runs agree (with "Show only what differs" ticked)."""
        records = [r for i in self.selected_run_ids() if (r := self._record(i)) is not None]
        self.runsList.show_only_differing(records if self.differsOnly.isChecked() else [])

    def visible_columns(self) -> list[str]:
        """The keys of the columns shown."""
        return self.runsList.visible_columns()

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

