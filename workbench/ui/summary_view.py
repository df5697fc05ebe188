"""The layer tree (a QAbstractItemModel over ModelSummary.layers), the totals line above it and a pyqtgraph
bar chart of parameters and Mult-Adds per leaf layer; clicking a bar selects the layer's row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractItemModel, QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from workbench.models.summary import LayerRow, ModelSummary


LAYER_ROLE = Qt.ItemDataRole.UserRole + 1   # the LayerRow of an index
SORT_ROLE = Qt.ItemDataRole.UserRole + 2    # raw number for sorting
COLUMNS = ("Name", "Type", "Kernel", "Output shape", "Params", "Mult-Adds", "% of params")
PARAMS_COLOUR = "#4c9be8"    # mid-tone colours: readable on light and dark backgrounds
MACS_COLOUR = "#e8a33c"

_Index = QModelIndex | QPersistentModelIndex


def _pg() -> Any:
    """pyqtgraph, imported on first use (it takes about a second: never before the first paint)."""
    import pyqtgraph

    return pyqtgraph


def human(n: float, unit: str = "") -> str:
    """1234567 → '1.23 M' (SI prefixes, three significant digits)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def shape_text(shape: Sequence[int] | None) -> str:
    """[1, 64, 56, 56] → '64×56×56' (batch dimension dropped)."""
    if not shape:
        return ""
    dims = list(shape)[1:] if len(shape) > 1 else list(shape)
    return "×".join(str(d) for d in dims)


class LayerTreeModel(QAbstractItemModel):
    """Tree of LayerRows: each row's parent is the row named by LayerRow.parent (None: top level)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[LayerRow] = []
        self._children: dict[int | None, list[int]] = {None: []}
        self._position: dict[int, int] = {}  # layer index -> row number under its parent
        self._by_index: dict[int, LayerRow] = {}

    def set_layers(self, layers: Sequence[LayerRow]) -> None:
        """Replace the tree with `layers` (ModelSummary.layers, depth-first order)."""
        self.beginResetModel()
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
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole and section >= 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.layer(index)
        if row is None:
            return None
        col = index.column()
        if role == LAYER_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == SORT_ROLE:
            return (row.index, row.type, str(row.kernel), row.output_shape, row.params, row.mult_adds,
                    row.param_share)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                return f"{row.name or '(model)'}  [{row.depth_index}]" if row.depth_index else row.name
            if col == 3 and row.output_shape:
                return f"input {row.input_shape} → output {row.output_shape}"
            if col == 4:
                return f"{row.params:,} parameters, {row.trainable_params:,} trainable"
            if col == 5:
                return f"{row.mult_adds:,} multiply-adds"
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _display(row: LayerRow, col: int) -> str:
        if col == 0:
            return row.name.rsplit(".", 1)[-1] if row.name else row.type
        if col == 1:
            return row.type
        if col == 2:
            return "×".join(str(k) for k in row.kernel) if row.kernel else ""
        if col == 3:
            return shape_text(row.output_shape)
        if col == 4:
            return f"{row.params:,}" if row.params else "—"
        if col == 5:
            return human(row.mult_adds) if row.mult_adds else "—"
        return f"{100 * row.param_share:.2f} %" if row.params else ""


class LayerChart(QWidget):
    """Bar charts of parameters and Mult-Adds per leaf layer (layers with neither are left out)."""

    barClicked = Signal(int)  # LayerRow.index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg = _pg()
        self.params_plot = pg.PlotWidget()
        self.params_plot.setObjectName("paramsChart")
        self.macs_plot = pg.PlotWidget()
        self.macs_plot.setObjectName("multAddsChart")
        self.macs_plot.setXLink(self.params_plot)
        self._layer_ids: list[int] = []
        self._bars: list[Any] = []
        self._highlight: list[Any] = []
        for plot, title in ((self.params_plot, "Parameters per layer"), (self.macs_plot, "Mult-Adds per layer")):
            plot.setTitle(title)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=True, y=False)
            plot.showGrid(y=True, alpha=0.25)
            plot.getPlotItem().hideButtons()
            plot.scene().sigMouseClicked.connect(lambda ev, p=plot: self._on_click(p, ev))
        self.params_plot.getAxis("bottom").setStyle(showValues=False)
        self.macs_plot.setLabel("bottom", "leaf layer (click a bar to select it)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.params_plot)
        layout.addWidget(self.macs_plot)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Background and axes from the current palette (light or dark)."""
        pal = self.palette()
        background, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        for plot in (self.params_plot, self.macs_plot):
            plot.setBackground(background)
            item = plot.getPlotItem()
            item.titleLabel.setText(item.titleLabel.text, color=text)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(text)
                axis.setTextPen(text)

    def changeEvent(self, event: QEvent) -> None:

        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)

    def set_layers(self, layers: Sequence[LayerRow]) -> None:
        """Draw one bar per leaf layer that has parameters or Mult-Adds."""
        pg = _pg()
        leaves = [r for r in layers if r.is_leaf and (r.params or r.mult_adds)]
        self._layer_ids = [r.index for r in leaves]
        x = list(range(len(leaves)))
        for plot in (self.params_plot, self.macs_plot):
            plot.clear()
        self._bars = [
            pg.BarGraphItem(x=x, height=[r.params for r in leaves], width=0.8, brush=PARAMS_COLOUR, pen=None),
            pg.BarGraphItem(x=x, height=[r.mult_adds for r in leaves], width=0.8, brush=MACS_COLOUR, pen=None),
        ]
        self.params_plot.addItem(self._bars[0])
        self.macs_plot.addItem(self._bars[1])
        self._highlight = []
        if leaves:
            self.params_plot.setXRange(-0.6, len(leaves) - 0.4, padding=0)
        for plot in (self.params_plot, self.macs_plot):
            plot.enableAutoRange(axis="y")

    def layer_ids(self) -> list[int]:
        """LayerRow indices of the bars, left to right."""
        return list(self._layer_ids)

    def highlight(self, layer_index: int | None) -> None:
        """Outline the bars of one layer (None: clear)."""
        for plot, item in zip((self.params_plot, self.macs_plot), self._highlight):
            plot.removeItem(item)
        self._highlight = []
        if layer_index is None or layer_index not in self._layer_ids:
            return
        pg = _pg()
        i = self._layer_ids.index(layer_index)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        for plot, bars in zip((self.params_plot, self.macs_plot), self._bars):
            height = bars.opts["height"][i]
            item = pg.BarGraphItem(x=[i], height=[height], width=0.8, brush=colour, pen=pg.mkPen(colour, width=2))
            plot.addItem(item)
            self._highlight.append(item)

    def bar_at(self, plot: Any, scene_pos: Any) -> int | None:
        """LayerRow index of the bar under a scene position, or None."""
        vb = plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos) or not self._layer_ids:
            return None
        i = round(vb.mapSceneToView(scene_pos).x())
        return self._layer_ids[i] if 0 <= i < len(self._layer_ids) else None

    def _on_click(self, plot: Any, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        layer = self.bar_at(plot, event.scenePos())
        if layer is not None:
            self.barClicked.emit(layer)


class SummaryView(QWidget):
    """Totals line, non-modal message line, layer tree and bar chart."""

    layerSelected = Signal(object)  # LayerRow

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary: ModelSummary | None = None
        self.totals = QLabel("Select an architecture to see its layers.")
        self.totals.setObjectName("summaryTotals")
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setObjectName("summaryMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("QLabel { border: 1px solid #d9534f; border-radius: 4px; padding: 6px; }")
        self.message.hide()

        self.model = LayerTreeModel(self)
        self.tree = QTreeView()
        self.tree.setObjectName("layerTree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 200)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.selectionModel().currentRowChanged.connect(self._on_row_changed)

        self.chart: LayerChart | None = None  # built by attach_chart() once pyqtgraph may be imported
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("summarySplitter")
        self.splitter.addWidget(self.tree)
        chart_placeholder = QLabel("Charts load with the engine…")
        chart_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.splitter.addWidget(chart_placeholder)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.totals)
        layout.addWidget(self.message)
        layout.addWidget(self.splitter, 1)

    def attach_chart(self) -> None:
        """Create the bar charts (imports pyqtgraph) in place of their placeholder."""
        if self.chart is not None:
            return
        sizes = self.splitter.sizes()
        self.chart = LayerChart()
        self.chart.barClicked.connect(self.select_layer)
        self.chart.setMinimumHeight(160)
        old = self.splitter.replaceWidget(1, self.chart)
        if old is not None:
            old.deleteLater()
        total = sum(sizes) or 700
        if sizes[1] < 250:  # the placeholder's size: give the charts a usable share
            sizes = [int(total * 0.55), total - int(total * 0.55)]
        self.splitter.setSizes(sizes)
        if self.summary is not None:
            self.chart.set_layers(self.summary.layers)

    def set_pending(self, arch: str) -> None:
        """A new summary is being computed: say so, keep the old one visible meanwhile."""
        self.message.hide()
        if self.summary is None:
            self.totals.setText(f"Summarizing {arch}…")

    def set_summary(self, summary: ModelSummary) -> None:
        """Show a ModelSummary: totals, tree (top two levels expanded), chart."""
        self.summary = summary
        self.message.hide()
        t = summary.totals
        shape = "×".join(str(d) for d in summary.input_shape[-3:])
        self.totals.setText(
            f"<b>{summary.arch}</b> · input {shape} · {summary.num_classes} classes<br>"
            f"Parameters <b>{t.total_params:,}</b> · trainable {t.trainable_params:,} · "
            f"Mult-Adds {human(t.mult_adds)} ({t.mult_adds:,}) · "
            f"estimated memory {t.total_mb:,.1f} MB (params {t.params_mb:,.1f} MB, "
            f"activations {t.forward_backward_mb:,.1f} MB)"
        )
        self.model.set_layers(summary.layers)
        self.tree.expandToDepth(2)
        if self.chart is not None:
            self.chart.set_layers(summary.layers)

    def set_error(self, message: str, details: str = "") -> None:
        """An engine error while editing (e.g. input too small): a message here, not a crash or dialog."""
        self.message.setText(f"⚠ {message}")
        self.message.setToolTip(details[-4000:] if details else "")
        self.message.show()
        if self.summary is None:
            self.totals.setText("No summary.")

    def select_layer(self, layer_index: int) -> None:
        """Select (and scroll to) the row of the LayerRow with this index."""
        index = self.model.index_of(layer_index)
        if not index.isValid():
            return
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)

    def _on_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.layer(current)
        if self.chart is not None:
            self.chart.highlight(row.index if row is not None else None)
        if row is not None:
            self.layerSelected.emit(row)
