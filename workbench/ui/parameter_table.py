"""The parameter table: every named parameter of the model, sortable and filterable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.layer_tree import stale_colour

if TYPE_CHECKING:
    from workbench.models.summary import ParamRow


PARAM_COLUMNS = ("Qualified name", "Shape", "Count", "Trainable")
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
ROW_ROLE = Qt.ItemDataRole.UserRole + 1

_Index = QModelIndex | QPersistentModelIndex


class ParameterModel(QAbstractTableModel):
    """Rows are ParamRow objects (name, shape, count, trainable, layer)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ParamRow] = []
        self._stale = False

    def set_parameters(self, rows: Sequence[ParamRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def set_stale(self, stale: bool) -> None:
        """Grey every row (read at paint time, like the layer tree's) while the rows shown are being replaced."""
        self._stale = stale

    def is_stale(self) -> bool:
        return self._stale

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(PARAM_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return PARAM_COLUMNS[section] if orientation == Qt.Orientation.Horizontal else str(section + 1)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        p, col = self._rows[index.row()], index.column()
        if role == ROW_ROLE:
            return p
        if role == Qt.ItemDataRole.DisplayRole:
            return (p.name, "×".join(str(d) for d in p.shape) or "scalar", f"{p.count:,}",
                    "yes" if p.trainable else "no")[col]
        if role == SORT_ROLE:
            # Shapes sort by element count, then lexicographically.
            return (p.name, p.count * 1_000_000 + len(p.shape), p.count, int(p.trainable))[col]
        if role == Qt.ItemDataRole.ForegroundRole and self._stale:
            return stale_colour()
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == 0 and p.layer:
            return f"in layer {p.layer}"
        return None


class ParameterFilter(QSortFilterProxyModel):
    """Case-insensitive substring filter on the qualified name (and the owning layer)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self.setSortRole(SORT_ROLE)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if not self._needle:
            return True
        p = self.sourceModel().index(source_row, 0, source_parent).data(ROW_ROLE)
        return p is not None and (self._needle in p.name.lower()
                                  or self._needle in str(getattr(p, "layer", "")).lower())


class ParameterTable(QWidget):
    """Filter box, count label and the sortable table (object name "parameterTable")."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ParameterModel(self)
        self.proxy = ParameterFilter(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QLineEdit(placeholderText="Filter parameters by name, e.g. conv or layer2.0")
        self.filter.setObjectName("parameterFilter")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter)
        self.count = QLabel()
        self.count.setObjectName("parameterCount")
        self.table = QTableView()
        self.table.setObjectName("parameterTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # registry order until a header is clicked
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self._update_count()

    def set_parameters(self, rows: Sequence[ParamRow]) -> None:
        """Show ModelSummary.parameters."""
        self.model.set_parameters(rows)
        self._update_count()

    def set_pending(self, pending: bool = True) -> None:
        """The rows shown are not the selection's (True: a new summary is computed, or it failed): they stay,
        greyed, and the count says so. The window follows the layer tree's `staleChanged`."""
        if pending == self.model.is_stale():
            return
        self.model.set_stale(pending)
        self._show_count()  # only the "(out of date)" note changes: no recount (a large model has 200+ rows)
        self.table.viewport().update()

    def is_pending(self) -> bool:
        return self.model.is_stale()

    def _on_filter(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        counts = [self.proxy.index(r, 0).data(ROW_ROLE).count for r in range(shown)]
        self._count_text = f"{shown} of {total} tensors · {sum(counts):,} values"
        self._show_count()

    def _show_count(self) -> None:
        self.count.setText(self._count_text + (" (out of date)" if self.model.is_stale() else ""))

    def visible_names(self) -> list[str]:
        """Qualified names in the current (filtered, sorted) order."""
        return [self.proxy.index(r, 0).data() for r in range(self.proxy.rowCount())]
