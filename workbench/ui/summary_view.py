"""The Layers tab: the totals line (with the lecture's notes under it), a non-modal message line, the layer tree
(layer_tree.py) and the bar charts of parameters and Mult-Adds (layer_chart.py, built once pyqtgraph may be
imported). While a new summary is computed the one shown is marked out of date (greyed, "computing…")."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.layer_tree import COLUMNS, LAYER_ROLE, SORT_ROLE, LayerTreeModel, human, shape_text

if TYPE_CHECKING:
    from workbench.models.summary import ModelSummary
    from workbench.ui.layer_chart import LayerChart

__all__ = ["COLUMNS", "LAYER_ROLE", "SORT_ROLE", "LayerTreeModel", "SummaryView", "human", "shape_text"]
CHART_MIN_HEIGHT = 160
TREE_MIN_HEIGHT = 120
NAME_WIDTH = 170       # before the first summary
MIN_NAME_WIDTH = 90
CHART_DIM_DELAY_MS = 400   # a summary that takes longer dims the charts as well as greying the table
CHART_DELAY_MS = 20        # the charts follow a new table once it has painted (both in one paint: ~2 frames)
MAX_COLUMN_WIDTH = 260
TREE_STRETCH, CHART_STRETCH = 11, 9   # resizing keeps about the 55:45 share attach_chart() gives them


class SummaryView(QWidget):
    """Totals line, lecture notes, "computing…" note, non-modal message line, layer tree and bar charts."""

    layerSelected = Signal(object)  # LayerRow
    staleChanged = Signal(bool)     # the table shown stopped (True) / started again (False) being the selection's

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary: ModelSummary | None = None
        self.totals = QLabel("Select an architecture to see its layers.")
        self.totals.setObjectName("summaryTotals")
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes = QLabel()
        self.notes.setObjectName("summaryNotes")
        self.notes.setWordWrap(True)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes.setToolTip("Where the lecture's slide prints something this network does differently.")
        self.notes.hide()
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
        # Widths are fitted once per summary (fit_columns); Qt's ResizeToContents would re-measure every visible
        # cell on each expand, scroll and repaint, which costs more than the paint itself on large networks.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, NAME_WIDTH)
        self.tree.selectionModel().currentRowChanged.connect(self._on_row_changed)
        # The "computing…" note floats over the tree: showing and hiding it re-lays out nothing (a layout change
        # would resize the charts, and a resized chart paints twice).
        self.pending = QLabel(self.tree.viewport())
        self.pending.setObjectName("summaryPending")
        self.pending.setAutoFillBackground(True)
        self.pending.setBackgroundRole(QPalette.ColorRole.ToolTipBase)
        self.pending.setForegroundRole(QPalette.ColorRole.ToolTipText)
        self.pending.setContentsMargins(8, 4, 8, 4)
        self.pending.hide()

        self.chart: LayerChart | None = None  # built by attach_chart() once pyqtgraph may be imported
        self._chart_timer = QTimer(self, singleShot=True, interval=CHART_DELAY_MS)
        self._chart_timer.timeout.connect(self._update_chart)
        self._dim_timer = QTimer(self, singleShot=True, interval=CHART_DIM_DELAY_MS)
        self._dim_timer.timeout.connect(self._dim_chart)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("summarySplitter")
        self.tree.setMinimumHeight(TREE_MIN_HEIGHT)
        # The notes share the tree's pane: when they come and go with the architecture the tree gives way, not
        # the charts (a resized chart repaints, ~10-20 ms per plot on a 2-core machine).
        tree_pane = QWidget()
        pane_layout = QVBoxLayout(tree_pane)
        pane_layout.setContentsMargins(0, 0, 0, 0)
        pane_layout.addWidget(self.notes)
        pane_layout.addWidget(self.tree, 1)
        self.splitter.addWidget(tree_pane)
        chart_placeholder = QLabel("Charts load with the engine…")
        chart_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.splitter.addWidget(chart_placeholder)
        self.splitter.setStretchFactor(0, TREE_STRETCH)
        self.splitter.setStretchFactor(1, CHART_STRETCH)
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
        from workbench.ui.layer_chart import LayerChart

        sizes = self.splitter.sizes()
        self.chart = LayerChart()
        self.chart.barClicked.connect(self.select_layer)
        self.chart.setMinimumHeight(CHART_MIN_HEIGHT)
        old = self.splitter.replaceWidget(1, self.chart)
        if old is not None:
            old.deleteLater()
        self.splitter.setStretchFactor(1, CHART_STRETCH)  # the placeholder's stretch went with it
        total = sum(sizes) or 700
        if sizes[1] < 250:  # the placeholder's size: give the charts a usable share
            sizes = [int(total * 0.55), total - int(total * 0.55)]
        self.splitter.setSizes(sizes)
        if self.summary is not None:   # drawn a turn later, merged with a summary that arrives meanwhile
            self._chart_timer.start()

    def set_pending(self, arch: str) -> None:
        """A new summary is being computed: the one shown stays visible, greyed, with a "computing…" note."""
        self.message.hide()
        if self.summary is None:
            self.totals.setText(f"Summarizing {arch}…")
            return
        self.pending.setText(f"<i>Computing the summary of {html.escape(arch)}… this table still shows "
                             f"{html.escape(self.summary.arch)}.</i>")
        viewport = self.tree.viewport()
        self.pending.setWordWrap(False)
        width = min(self.pending.sizeHint().width(), max(120, viewport.width() - 16))
        self.pending.setWordWrap(True)  # a narrow window: the note wraps instead of running off the table
        self.pending.setFixedWidth(width)
        self.pending.setFixedHeight(self.pending.heightForWidth(width))
        self.pending.move(max(0, viewport.width() - width - 8), 6)
        self.pending.show()
        self.pending.raise_()
        self._set_stale(True)

    def is_stale(self) -> bool:
        """True while the table shown is not the summary of the current selection."""
        return self.model.is_stale()

    def _set_stale(self, stale: bool) -> None:
        if stale != self.model.is_stale():
            self.model.set_stale(stale)
            self.tree.viewport().update()
            self.staleChanged.emit(stale)
        if stale:
            self._dim_timer.start()  # the charts too, unless the new summary comes first (two fewer paints)
        else:
            self._dim_timer.stop()
            self.pending.hide()

    def _dim_chart(self) -> None:
        if self.chart is not None and self.is_stale():
            self.chart.set_stale(True)

    def chart_is_current(self) -> bool:
        """Whether the charts show the summary shown (they follow it one event-loop turn later)."""
        return self.chart is not None and not self._chart_timer.isActive()

    def _update_chart(self) -> None:
        if self.chart is not None and self.summary is not None:
            self.chart.set_layers(self.summary.layers)
            self.chart.set_stale(self.is_stale() and not self._dim_timer.isActive())

    def set_summary(self, summary: ModelSummary) -> None:
        """Show a ModelSummary: totals, tree (top two levels expanded), chart."""
        self.summary = summary
        self.message.hide()
        self._set_stale(False)
        t = summary.totals
        shape = "×".join(str(d) for d in summary.input_shape[-3:])
        self.totals.setText(
            f"<b>{summary.arch}</b> · input {shape} · {summary.num_classes} classes<br>"
            f"Parameters <b>{t.total_params:,}</b> · trainable {t.trainable_params:,} · "
            f"Mult-Adds {human(t.mult_adds)} ({t.mult_adds:,}) · "
            f"estimated memory {t.total_mb:,.1f} MB (params {t.params_mb:,.1f} MB, "
            f"activations {t.forward_backward_mb:,.1f} MB)"
        )
        notes = getattr(summary, "notes", ())
        self.notes.setText("<br>".join(f"<b>Lecture note:</b> {html.escape(n)}" for n in notes))
        self.notes.setVisible(bool(notes))
        self.model.set_layers(summary.layers)
        self.tree.expandToDepth(2)
        self.fit_columns()
        # The charts are drawn on the next turn of the event loop: the tree's paint and theirs then come in two
        # frames of ~20 ms each instead of one of ~50 ms on a 2-core machine.
        self._chart_timer.start()

    def fit_columns(self) -> None:
        """Size every column to its widest text (header included; the names with their indentation), once."""
        header = self.tree.header()
        metrics = QFontMetrics(self.tree.font())
        header_metrics = QFontMetrics(header.font())
        padding = 2 * self.tree.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 12
        indent = self.tree.indentation()
        names = zip(self.model.layers(), self.model.column_texts(0))
        widest_name = max((indent * (row.depth + 1) + metrics.horizontalAdvance(text) for row, text in names),
                          default=0)
        header.resizeSection(0, min(MAX_COLUMN_WIDTH, max(MIN_NAME_WIDTH, widest_name + padding)))
        for column in range(1, len(COLUMNS)):
            texts = set(self.model.column_texts(column))
            widest = max((metrics.horizontalAdvance(t) for t in texts), default=0)
            header_width = header_metrics.horizontalAdvance(COLUMNS[column]) + 8
            header.resizeSection(column, min(MAX_COLUMN_WIDTH, max(widest, header_width) + padding))

    def set_error(self, message: str, details: str = "") -> None:
        """An engine error while editing (e.g. input too small): a message here, not a crash or dialog."""
        self.message.setText(f"⚠ {message}")
        self.message.setToolTip(details[-4000:] if details else "")
        self.message.show()
        self.pending.hide()
        if self.summary is None:
            self.totals.setText("No summary.")
        else:
            self._set_stale(True)  # the table shown is not the selection's

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
