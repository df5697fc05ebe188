"""The layer tree's model: ModelSummary.layers as a QAbstractItemModel, the lecture's table columns (input and
output shape, kernel, parameters, Mult-Adds) plus each layer's receptive field and jump (cumulative stride)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    from workbench.models.summary import LayerRow


LAYER_ROLE = Qt.ItemDataRole.UserRole + 1   # the LayerRow of an index
SORT_ROLE = Qt.ItemDataRole.UserRole + 2    # raw value for sorting
COLUMNS = ("Name", "Type", "Kernel", "Input shape", "Output shape", "RF (jump)", "Params", "Mult-Adds",
           "% of params")
RF_COLUMN = COLUMNS.index("RF (jump)")
NUMERIC_FROM = COLUMNS.index("Params")      # right-aligned columns from here on
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
HEADER_TIPS = {
    "Input shape": "The layer's input, channels × height × width (the batch dimension left out).",
    "Output shape": "The layer's output, channels × height × width (the batch dimension left out).",
    "RF (jump)": "Receptive field: how many input pixels (the larger of height and width) one output value of this "
                 "layer sees. Jump: the cumulative stride, the distance in input pixels between neighbouring outputs. "
                 "Where branches meet, the largest field counts.",
    "Mult-Adds": "Multiply-accumulate operations for one image.",
}

_Index = QModelIndex | QPersistentModelIndex
_ROLES = frozenset({Qt.ItemDataRole.DisplayRole, LAYER_ROLE, Qt.ItemDataRole.ForegroundRole, SORT_ROLE,
                    Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.TextAlignmentRole})


def human(n: float, unit: str = "") -> str:
    """1234567 → '1.23 M' (SI prefixes, three significant digits)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip() if n == int(n) else f"{n:.4g} {unit}".rstrip()


def shape_text(shape: Sequence[int] | None) -> str:
    """[1, 64, 56, 56] → '64×56×56' (batch dimension dropped)."""
    if not shape:
        return ""
    dims = list(shape)[1:] if len(shape) > 1 else list(shape)
    return "×".join(str(d) for d in dims)


def field_text(row: LayerRow) -> str:
    """'14 (4)': receptive field and jump; the field alone once the spatial grid is gone (after a flatten)."""
    if row.receptive_field is None:
        return ""
    return f"{row.receptive_field} ({row.jump})" if row.jump is not None else str(row.receptive_field)


def field_tip(row: LayerRow) -> str:
    """The receptive field and jump in words."""
    if row.receptive_field is None:
        return ""
    rf = row.receptive_field
    text = f"One output value sees {rf}×{rf} input pixels"
    if row.jump is not None:
        return f"{text}; neighbouring outputs are {row.jump} input pixel(s) apart."
    return f"{text} (no spatial grid after this layer)."


class LayerTreeModel(QAbstractItemModel):
    """Tree of LayerRows: each row's parent is the row named by LayerRow.parent (None: top level)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[LayerRow] = []
        self._children: dict[int | None, list[int]] = {None: []}
        self._position: dict[int, int] = {}  # layer index -> row number under its parent
        self._by_index: dict[int, LayerRow] = {}
        self._stale = False

    def set_layers(self, layers: Sequence[LayerRow]) -> None:
        """Replace the tree with `layers` (ModelSummary.layers, depth-first order); no longer out of date."""
        self.beginResetModel()
        self._stale = False
        self._rows = list(layers)
        by_index = {r.index: r for r in self._rows}
        self._children = {None: []}
        self._position = {}
        for r in self._rows:
            parent = r.parent if r.parent in by_index else None
            siblings = self._children.setdefault(parent, [])
            self._position[r.index] = len(siblings)
            siblings.append(r.index)
        self._by_index = by_index
        self.endResetModel()

    def set_stale(self, stale: bool) -> None:
        """Grey every row (the summary shown is being replaced) or restore the colours. The foreground is read at
        paint time: the view repaints its viewport (no model signal, which would re-lay out every row)."""
        self._stale = stale

    def is_stale(self) -> bool:
        return self._stale

    def layers(self) -> list[LayerRow]:
        return list(self._rows)

    def layer(self, index: _Index) -> LayerRow | None:
        """The LayerRow behind a model index (None for the invisible root)."""
        if not index.isValid():
            return None
        return self._by_index.get(index.internalId() - 1)

    def index_of(self, layer_index: int, column: int = 0) -> QModelIndex:
        """The model index of the LayerRow with this `index` field."""
        if layer_index not in self._position:
            return QModelIndex()
        return self.createIndex(self._position[layer_index], column, layer_index + 1)

    def _key(self, parent: _Index) -> int | None:
        row = self.layer(parent) if parent.isValid() else None
        return None if row is None else row.index

    # --- QAbstractItemModel --------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:
        key = self._key(parent)
        siblings = self._children.get(key, [])
        if not (0 <= row < len(siblings) and 0 <= column < len(COLUMNS)):
            return QModelIndex()
        return self.createIndex(row, column, siblings[row] + 1)

    def parent(self, index: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        row = self.layer(index)
        if row is None or row.parent is None or row.parent not in self._position:
            return QModelIndex()
        return self.index_of(row.parent)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        key = self._key(parent)
        return len(self._children.get(key, []))

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(COLUMNS[section])
        if role == Qt.ItemDataRole.TextAlignmentRole and section >= NUMERIC_FROM:
            return RIGHT
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _ROLES:  # the view asks for a dozen roles per cell and paint: answer most at once
            return None
        row = self.layer(index)
        if row is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == LAYER_ROLE:
            return row
        if role == Qt.ItemDataRole.ForegroundRole and self._stale:
            return stale_colour()
        if role == SORT_ROLE:
            return (row.index, row.type, str(row.kernel), row.input_shape, row.output_shape, row.receptive_field,
                    row.params, row.mult_adds, row.param_share)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(row, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= NUMERIC_FROM:
            return RIGHT
        return None

    @staticmethod
    def _tip(row: LayerRow, col: int) -> str | None:
        if col == 0:
            return f"{row.name or '(model)'}  [{row.depth_index}]" if row.depth_index else row.name
        if col in (3, 4) and row.output_shape:
            return f"input {row.input_shape} → output {row.output_shape}"
        if col == RF_COLUMN:
            return field_tip(row) or None
        if col == NUMERIC_FROM:
            return f"{row.params:,} parameters, {row.trainable_params:,} trainable"
        if col == NUMERIC_FROM + 1:
            return f"{row.mult_adds:,} multiply-adds"
        return None

    def column_texts(self, column: int) -> list[str]:
        """What `column` shows for every row (for sizing the column)."""
        return [self._display(row, column) for row in self._rows]

    @staticmethod
    def _display(row: LayerRow, col: int) -> str:
        if col == 0:
            return row.name.rsplit(".", 1)[-1] if row.name else row.type
        if col == 1:
            return row.type
        if col == 2:
            return "×".join(str(k) for k in row.kernel) if row.kernel else ""
        if col == 3:
            return shape_text(row.input_shape)
        if col == 4:
            return shape_text(row.output_shape)
        if col == RF_COLUMN:
            return field_text(row)
        if col == NUMERIC_FROM:
            return f"{row.params:,}" if row.params else "—"
        if col == NUMERIC_FROM + 1:
            return human(row.mult_adds) if row.mult_adds else "—"
        return f"{100 * row.param_share:.2f} %" if row.params else ""


def stale_colour() -> QColor:
    """The palette's disabled text colour: rows of a summary that is being replaced."""
    app = QApplication.instance()
    palette = app.palette() if isinstance(app, QApplication) else QPalette()
    return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
