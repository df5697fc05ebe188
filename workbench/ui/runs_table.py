"""The runs table: a tree model of the run store's rows (experiments as groups), sorted by a proxy, shown by a view.

Columns come from `workbench.runs.table` (RUN_COLUMNS, RunRow.value/text) plus the run's experiment; Status,
Architecture, Data set and Best val acc come first. `RunsModel.sync(records)` updates the rows in place (no reset),
so a poll twice a second keeps the selection, scroll position and sort order. Runs of an experiment are the children
of one group row; selecting the group selects them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QWidget

from workbench.runs.records import RunRecord, RunStatus
from workbench.runs.table import RUN_COLUMNS, RunRow, differing_columns, run_row

RUN_ROLE = Qt.ItemDataRole.UserRole + 1      # run id (run rows) or "" (group rows)
SORT_ROLE = Qt.ItemDataRole.UserRole + 2     # the value the column sorts by (None sorts last)
GROUP_ROLE = Qt.ItemDataRole.UserRole + 3    # experiment id (group rows)


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = False


_BY_KEY = {c.key: Column(c.key, c.title, c.numeric) for c in RUN_COLUMNS}
FIRST = ("status", "arch", "dataset", "best_val_accuracy", "name")
COLUMNS: tuple[Column, ...] = (
    *(_BY_KEY[k] for k in FIRST),
    *(c for k, c in _BY_KEY.items() if k not in FIRST and k != "run_id"),
    Column("experiment", "Experiment"),
    _BY_KEY["run_id"],
)
KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS)
ALWAYS_SHOWN = frozenset({"status", "arch", "name"})   # kept by "show only what differs"


def cell_text(row: RunRow, key: str, record: RunRecord, external: bool) -> str:
    """What a cell shows (RunRow.text, with the app's own wording for status, accuracy and experiment)."""
    if key == "best_val_accuracy":
        return "" if row.best_val_accuracy is None else f"{100 * row.best_val_accuracy:.2f} %"
    if key == "status":
        if record.status == RunStatus.RUNNING and record.stop_requested:
            return "running (stop requested)"
        if record.status == RunStatus.RUNNING and external:
            return f"running (process {record.owner_pid})"
        return str(record.status)
    if key == "experiment":
        return record.experiment_id or ""
    if key == "name":
        return row.name
    return row.text(key)


def cell_value(row: RunRow, key: str, record: RunRecord) -> object:
    if key == "experiment":
        return record.experiment_id or ""
    value = row.value(key)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunsModel(QStandardItemModel):
    """Rows of runs (children of an experiment's group row when they belong to one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels([c.title for c in COLUMNS])
        self.rows: dict[str, list[QStandardItem]] = {}
        self.groups: dict[str, list[QStandardItem]] = {}
        self.run_rows: dict[str, RunRow] = {}
        self._experiment: dict[str, str | None] = {}   # run id -> the group it is listed under

    def sync(self, records: Sequence[RunRecord], parameters: Mapping[str, int | None], external: set[str],
             experiments: Mapping[str, str] | None = None) -> bool:
        """Make the rows match `records` in place (`experiments`: names by experiment id, for the group rows);
        returns whether rows were added or removed."""
        wanted = {r.run_id: r for r in records}
        changed = False
        for run_id in [rid for rid in self.rows if rid not in wanted]:
            self._remove(run_id)
            changed = True
        for record in records:
            row = run_row(record, parameters=parameters.get(record.run_id))
            self.run_rows[record.run_id] = row
            items = self.rows.get(record.run_id)
            if items is not None and self._experiment.get(record.run_id) != (record.experiment_id or None):
                self._remove(record.run_id)
                items = None
            if items is None:
                parent = self._parent_item(record.experiment_id)
                items = [QStandardItem() for _ in COLUMNS]
                for item, column in zip(items, COLUMNS):
                    item.setEditable(column.key == "name")
                    item.setData(record.run_id, RUN_ROLE)
                parent.appendRow(items)
                self.rows[record.run_id] = items
                self._experiment[record.run_id] = record.experiment_id or None
                changed = True
            self._fill(items, row, record, record.run_id in external)
        for exp in [e for e in self.groups if not any(r.experiment_id == e for r in records)]:
            self.removeRow(self.groups.pop(exp)[0].row())
            changed = True
        for exp, items in self.groups.items():
            self._fill_group(items, exp, (experiments or {}).get(exp, ""),
                             [wanted[rid] for rid in self._children(items[0])])
        return changed

    def _parent_item(self, experiment_id: str | None) -> QStandardItem:
        if not experiment_id:
            return self.invisibleRootItem()
        items = self.groups.get(experiment_id)
        if items is None:
            items = [QStandardItem() for _ in COLUMNS]
            for item in items:
                item.setEditable(False)
                item.setData("", RUN_ROLE)
                item.setData(experiment_id, GROUP_ROLE)
            self.appendRow(items)
            self.groups[experiment_id] = items
        return items[0]

    def _children(self, group: QStandardItem) -> list[str]:
        return [str(group.child(i, 0).data(RUN_ROLE)) for i in range(group.rowCount())]

    def _remove(self, run_id: str) -> None:
        items = self.rows.pop(run_id)
        self.run_rows.pop(run_id, None)
        self._experiment.pop(run_id, None)
        parent = items[0].parent() or self.invisibleRootItem()
        parent.removeRow(items[0].row())

    @staticmethod
    def _set(item: QStandardItem, text: str, value: object, tooltip: str = "") -> None:
        if item.text() != text:
            item.setText(text)
        if item.data(SORT_ROLE) != value:
            item.setData(value, SORT_ROLE)
        if item.toolTip() != tooltip:
            item.setToolTip(tooltip)

    def _fill(self, items: list[QStandardItem], row: RunRow, record: RunRecord, external: bool) -> None:
        for item, column in zip(items, COLUMNS):
            tooltip = record.message or ""
            if column.key == "name":
                tooltip = "Double-click to name this run; the name labels its curves."
            self._set(item, cell_text(row, column.key, record, external), cell_value(row, column.key, record),
                      tooltip)

    def _fill_group(self, items: list[QStandardItem], experiment: str, name: str, records: list[RunRecord]
                    ) -> None:
        best = [r.best_val_accuracy for r in records if r.best_val_accuracy is not None]
        running = sum(r.status == RunStatus.RUNNING for r in records)
        archs = ", ".join(dict.fromkeys(r.arch for r in records))
        values: dict[str, tuple[str, object]] = {
            "status": (f"experiment: {len(records)} runs" + (f", {running} running" if running else ""), "experiment"),
            "arch": (archs, archs),
            "dataset": (", ".join(dict.fromkeys(r.dataset for r in records)), ""),
            "best_val_accuracy": (f"{100 * max(best):.2f} %" if best else "", max(best) if best else None),
            "created_at": ("", min((r.created_at for r in records), default=0.0)),
            "experiment": (experiment, experiment),
            "name": (name, name),
        }
        for item, column in zip(items, COLUMNS):
            text, value = values.get(column.key, ("", None))
            self._set(item, text, value, "Select the experiment to overlay all its runs.")


class RunsProxy(QSortFilterProxyModel):
    """Sorts on SORT_ROLE: numbers as numbers, text case-insensitively, missing values last."""

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex
                 ) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            return a is None and b is not None if self.sortOrder() == Qt.SortOrder.DescendingOrder \
                else b is None and a is not None
        if isinstance(a, str) or isinstance(b, str):
            return str(a).lower() < str(b).lower()
        return bool(a < b)


class RunsView(QTreeView):
    """The runs table (object name `runsList`), with table-like helpers: `rowCount()` and `item(row, column)`
    address the run rows in display order (group rows skipped); `itemSelectionChanged` as QTableWidget has it."""

    itemSelectionChanged = Signal()

    def __init__(self, model: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsList")
        self.source = model
        self.proxy = RunsProxy(self)
        self.proxy.setSourceModel(model)
        self.proxy.setDynamicSortFilter(True)
        self.setModel(self.proxy)
        self.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setRootIsDecorated(False)
        self.setAllColumnsShowFocus(True)
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setSortIndicatorShown(True)
        self.setSortingEnabled(True)
        self.sortByColumn(KEYS.index("created_at"), Qt.SortOrder.DescendingOrder)

    def _on_selection_changed(self, *_args: object) -> None:
        self.itemSelectionChanged.emit()

    def horizontalHeader(self) -> QHeaderView:
        """The column header (named as QTableView names it)."""
        return self.header()

    def column_of(self, key: str) -> int:
        return KEYS.index(key)

    def run_indexes(self) -> list[QModelIndex]:
        """Proxy indexes (column 0) of the run rows in display order."""
        out: list[QModelIndex] = []
        for r in range(self.proxy.rowCount()):
            index = self.proxy.index(r, 0)
            if index.data(RUN_ROLE):
                out.append(index)
            else:
                out += [self.proxy.index(c, 0, index) for c in range(self.proxy.rowCount(index))]
        return out

    def rowCount(self) -> int:
        """Run rows shown (experiment groups not counted)."""
        return len(self.run_indexes())

    def columnCount(self) -> int:
        return len(COLUMNS)

    def item(self, row: int, column: int) -> QStandardItem | None:
        """The source item of the `row`-th run row in display order at `column`."""
        indexes = self.run_indexes()
        if not 0 <= row < len(indexes):
            return None
        index = indexes[row]
        source = self.proxy.mapToSource(index.siblingAtColumn(column))
        return self.source.itemFromIndex(source)

    def run_id_at(self, index: QModelIndex) -> str:
        return str(index.siblingAtColumn(0).data(RUN_ROLE) or "")

    def group_run_ids(self, index: QModelIndex) -> list[str]:
        """The run ids of a group row's children (display order)."""
        first = index.siblingAtColumn(0)
        return [str(self.proxy.index(c, 0, first).data(RUN_ROLE)) for c in range(self.proxy.rowCount(first))]

    def selected_run_ids(self) -> list[str]:
        """Selected runs in display order; a selected experiment row stands for all its runs."""
        selected = {(i.parent().row(), i.row()) for i in self.selectionModel().selectedRows()}
        out: list[str] = []
        for r in range(self.proxy.rowCount()):
            index = self.proxy.index(r, 0)
            group = self.group_run_ids(index) if not index.data(RUN_ROLE) else []
            if (-1, r) in selected:
                out += group or [self.run_id_at(index)]
            out += [rid for c, rid in enumerate(group) if (r, c) in selected]
        return list(dict.fromkeys(out))

    def select_runs(self, run_ids: list[str]) -> None:
        """Select the rows of `run_ids` (and nothing else)."""
        selection = QItemSelection()
        for index in self.run_indexes():
            if self.run_id_at(index) in run_ids:
                selection.select(index, index.siblingAtColumn(len(KEYS) - 1))
        self.selectionModel().select(selection, _SELECT)

    def select_experiment(self, experiment_id: str) -> None:
        """Select an experiment's group row."""
        for r in range(self.proxy.rowCount()):
            index = self.proxy.index(r, 0)
            if not index.data(RUN_ROLE) and index.data(GROUP_ROLE) == experiment_id:
                self.selectionModel().select(index, _SELECT)

    def show_only_differing(self, records: Sequence[RunRecord]) -> None:
        """With two or more `records`, hide the columns in which they agree (ALWAYS_SHOWN stay); else show all."""
        rows = [row for r in records if (row := self.source.run_rows.get(r.run_id)) is not None]
        on = len(rows) >= 2
        differing = set(differing_columns(rows)) if on else set()
        if on and len({r.experiment_id or "" for r in records}) > 1:
            differing.add("experiment")
        for column, key in enumerate(KEYS):
            self.setColumnHidden(column, on and key not in ALWAYS_SHOWN and key not in differing)

    def visible_columns(self) -> list[str]:
        """The keys of the columns shown."""
        return [key for column, key in enumerate(KEYS) if not self.isColumnHidden(column)]


_SELECT = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
