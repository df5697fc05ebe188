"""The Compare view's table and bar charts: one row / one bar per compared architecture."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.chart_style import PaletteChart, YGrid, colour_plot_item
from workbench.ui.compare_rows import COLUMNS, CompareOutcome, cell_text, chart_value

if TYPE_CHECKING:
    from workbench.analysis.compare import CompareRow

BAR_COLOURS = ("#4c9be8", "#e8a33c", "#5cb85c", "#d9534f", "#9467bd", "#8c564b", "#17becf", "#bcbd22")
CHART_COLUMNS = 3
HEADERS = ("Architecture", "Input", *(title for title, _key in COLUMNS))


class _NumberItem(QTableWidgetItem):
    """A cell that sorts by its number, not its text."""

    def __init__(self, text: str, key: float) -> None:
        super().__init__(text)
        self.key = key
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumberItem):
            return self.key < other.key
        return super().__lt__(other)


class CompareTable(QTableWidget):
    """Architecture, input, then every figure of `COLUMNS`; failed entries show their reason."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setObjectName("compareTable")
        self.setHorizontalHeaderLabels(HEADERS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)   # tick order until a click
        self.setSortingEnabled(True)

    def set_outcomes(self, outcomes: Sequence[CompareOutcome], labels: Sequence[str]) -> None:
        """One row per outcome (in the order given; the user may sort by any column)."""
        self.setSortingEnabled(False)
        self.clearContents()
        self.clearSpans()
        self.setRowCount(len(outcomes))
        for r, (outcome, label) in enumerate(zip(outcomes, labels)):
            name = QTableWidgetItem(label)
            name.setData(Qt.ItemDataRole.UserRole, outcome.entry.arch)
            self.setItem(r, 0, name)
            row = outcome.row
            if row is None:
                error = QTableWidgetItem(outcome.error)
                error.setToolTip(outcome.error)
                self.setItem(r, 1, error)
                self.setSpan(r, 1, 1, len(HEADERS) - 1)
                continue
            self.setItem(r, 1, QTableWidgetItem("×".join(map(str, row.input)) + f" /{row.classes}"))
            for c, (_title, key) in enumerate(COLUMNS, start=2):
                value = getattr(row, key)
                self.setItem(r, c, _NumberItem(cell_text(key, value), chart_value(key, value)))
        self.setSortingEnabled(True)

    def column_texts(self, title: str) -> list[str]:
        """The texts of one column, top to bottom (for tests)."""
        c = HEADERS.index(title)
        items = (self.item(r, c) for r in range(self.rowCount()))
        return [item.text() if item is not None else "" for item in items]


COUNT_KEYS = frozenset({"params", "mult_adds", "train_images_per_second", "infer_images_per_second"})


class CompareCharts(PaletteChart):
    """A grid of small bar charts, one per numeric column; bar i is the i-th compared architecture."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        from workbench.ui.layer_chart import CountAxis

        self.setObjectName("compareCharts")
        self.view = pg.GraphicsLayoutWidget()
        self.plots: dict[str, Any] = {}
        self.titles = {key: title for title, key in COLUMNS}
        self.legend = QLabel()
        self.legend.setObjectName("compareLegend")
        self.legend.setWordWrap(True)
        self._values: dict[str, list[float]] = {}
        self.grids: list[YGrid] = []
        self._bars: dict[str, Any] = {}
        for n, (title, key) in enumerate(COLUMNS):
            if key == "runs":
                continue
            counts = key in COUNT_KEYS   # "10 M", not "1e+07"
            plot = self.view.addPlot(row=n // CHART_COLUMNS, col=n % CHART_COLUMNS, title=title,
                                     axisItems={"left": CountAxis()} if counts else None)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            self.grids.append(YGrid(plot))
            self.plots[key] = plot
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.legend)
        layout.addWidget(self.view, 1)
        self.setMinimumHeight(260)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Background and axes from the current palette (light or dark)."""
        background, text = self.colours()
        self.view.setBackground(background)
        self._text = text
        for plot in self.plots.values():
            colour_plot_item(plot, text, size="9pt")
        for grid in self.grids:
            grid.set_colour(text)

    def set_rows(self, rows: Sequence[CompareRow | None], labels: Sequence[str]) -> None:
        """Bars of every chart for these rows (None: an entry without figures, drawn as no bar)."""
        import pyqtgraph as pg

        brushes = [BAR_COLOURS[i % len(BAR_COLOURS)] for i in range(len(rows))]
        self.legend.setText("  ".join(f'<span style="color:{brushes[i]}">■</span>&nbsp;{html.escape(label)}'
                                      for i, label in enumerate(labels)))
        for key, plot in self.plots.items():
            if key in self._bars:   # the bars only: plot.clear() would take the grid's lines too
                plot.removeItem(self._bars.pop(key))
            values = [chart_value(key, getattr(row, key)) if row is not None else 0.0 for row in rows]
            self._values[key] = values
            known = any(row is not None and getattr(row, key) is not None for row in rows)
            title = self.titles[key] + ("" if known else " (none yet)" if key == "best_val_accuracy"
                                        else " (not measured)" if key.endswith("per_second") else "")
            plot.setTitle(title, color=self._text, size="9pt")
            if values:
                self._bars[key] = pg.BarGraphItem(x=list(range(len(values))), height=values, width=0.7,
                                                  brushes=brushes, pen=None)
                plot.addItem(self._bars[key])
                plot.setXRange(-0.6, len(values) - 0.4, padding=0)
            plot.getAxis("bottom").setTicks([[], []])
            if known:
                plot.enableAutoRange(axis="y")
            else:
                plot.setYRange(0, 1, padding=0)

    def values(self, key: str) -> list[float]:
        """The bar heights of one chart (a COLUMNS key), left to right."""
        return list(self._values.get(key, []))


