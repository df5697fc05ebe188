"""The curves' legend, kept out of the plots: a compact list of every drawn series with show/hide check boxes.

One group per run (the live or followed run, then each overlaid run, labelled by what differs); each entry shows the
series' pen (colour, dash, symbol) as a small icon. Unchecking an entry (or a whole run) hides its curve; the list
remembers hidden series by key across refreshes, so a live overlay that is redrawn keeps the user's choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

KEY_ROLE = Qt.ItemDataRole.UserRole
ICON_SIZE = QSize(28, 12)


@dataclass(frozen=True)
class SeriesEntry:
    """One legend entry: the curve's key (a live series name, or "run_id:metric"), its text and pen."""

    key: str
    label: str
    colour: tuple[int, int, int]
    style: Qt.PenStyle = Qt.PenStyle.SolidLine
    symbol: bool = False
    faint: bool = False


def pen_icon(entry: SeriesEntry) -> QIcon:
    """A small picture of the entry's line: its colour and dash, a dot for per-epoch points."""
    pixmap = QPixmap(ICON_SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(*entry.colour)
    if entry.faint:
        colour.setAlpha(110)
    pen = QPen(colour, 2.0, entry.style)
    painter.setPen(pen)
    mid = ICON_SIZE.height() / 2
    painter.drawLine(QPointF(1, mid), QPointF(ICON_SIZE.width() - 1, mid))
    if entry.symbol:
        painter.setBrush(colour)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(QPointF(ICON_SIZE.width() / 2, mid), 3.5, 3.5)
    painter.end()
    return QIcon(pixmap)


class SeriesList(QTreeWidget):
    """`toggled(key, visible)` when the user shows or hides a series (object name `seriesList`)."""

    toggled = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("seriesList")
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setIconSize(ICON_SIZE)
        self.setIndentation(12)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("Tick or untick a series (or a whole run) to show or hide its curve.")
        self.hidden: set[str] = set()
        self._groups: dict[str, QTreeWidgetItem] = {}
        self._updating = False
        self.itemChanged.connect(self._on_item_changed)

    def set_group(self, group: str, label: str, entries: list[SeriesEntry], position: int | None = None) -> None:
        """Show `entries` under a run's heading (replacing what the group listed); no entries removes it."""
        self._updating = True
        try:
            item = self._groups.get(group)
            if not entries:
                if item is not None:
                    self.takeTopLevelItem(self.indexOfTopLevelItem(item))
                    del self._groups[group]
                return
            if item is None:
                item = QTreeWidgetItem()
                item.setData(0, KEY_ROLE, "")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsAutoTristate)
                if position is None:
                    self.addTopLevelItem(item)
                else:
                    self.insertTopLevelItem(min(position, self.topLevelItemCount()), item)
                item.setExpanded(True)
                self._groups[group] = item
            item.setText(0, label)
            item.setToolTip(0, label)
            keys = [e.key for e in entries]
            if [self._child(item, i).data(0, KEY_ROLE) for i in range(item.childCount())] != keys:
                item.takeChildren()
                for entry in entries:
                    child = QTreeWidgetItem(item)
                    child.setData(0, KEY_ROLE, entry.key)
                    child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            for i, entry in enumerate(entries):
                child = self._child(item, i)
                child.setText(0, entry.label)
                child.setToolTip(0, f"{label}: {entry.label}")
                child.setIcon(0, pen_icon(entry))
                child.setCheckState(0, Qt.CheckState.Unchecked if entry.key in self.hidden
                                    else Qt.CheckState.Checked)
        finally:
            self._updating = False

    @staticmethod
    def _child(item: QTreeWidgetItem, index: int) -> QTreeWidgetItem:
        child = item.child(index)
        assert child is not None
        return child

    def groups(self) -> list[str]:
        """Group keys in display order."""
        order = {id(item): key for key, item in self._groups.items()}
        return [order[id(item)] for i in range(self.topLevelItemCount()) if (item := self.topLevelItem(i))]

    def group_label(self, group: str) -> str | None:
        item = self._groups.get(group)
        return None if item is None else item.text(0)

    def entries(self, group: str | None = None) -> list[tuple[str, str, bool]]:
        """(key, label, shown) of every entry (of one group)."""
        out = []
        for key, item in self._groups.items():
            if group is not None and key != group:
                continue
            for i in range(item.childCount()):
                child = self._child(item, i)
                out.append((str(child.data(0, KEY_ROLE)), child.text(0),
                            child.checkState(0) == Qt.CheckState.Checked))
        return out

    def set_shown(self, key: str, shown: bool) -> None:
        """Tick or untick an entry as the user would (emits `toggled`)."""
        for item in self._groups.values():
            for i in range(item.childCount()):
                child = self._child(item, i)
                if child.data(0, KEY_ROLE) == key:
                    child.setCheckState(0, Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)

    @Slot(QTreeWidgetItem, int)
    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        key = str(item.data(0, KEY_ROLE) or "")
        if self._updating or not key:
            return
        shown = item.checkState(0) == Qt.CheckState.Checked
        if shown == (key not in self.hidden):
            return
        if shown:
            self.hidden.discard(key)
        else:
            self.hidden.add(key)
        self.toggled.emit(key, shown)
