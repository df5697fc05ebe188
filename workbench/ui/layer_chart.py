"""Bar charts of parameters and Mult-Adds per leaf layer (pyqtgraph, imported only when the charts are built).

The x axis is labelled with the layers' names (as many as fit; zoom with the mouse wheel for more), hovering a
bar shows its layer (name, type, parameters, Mult-Adds) and clicking one selects its row in the layer tree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QCursor, QFontMetrics, QPalette
from PySide6.QtWidgets import QToolTip, QVBoxLayout, QWidget

from workbench.ui.chart_style import PaletteChart, YGrid, colour_plot_item
from workbench.ui.layer_tree import human

if TYPE_CHECKING:
    from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent

    from workbench.models.summary import LayerRow

PARAMS_COLOUR = "#4c9be8"    # mid-tone colours: readable on light and dark backgrounds
MACS_COLOUR = "#e8a33c"
LABEL_GAP_PX = 8             # space between two layer names on the axis
STALE_OPACITY = 0.3
COUNT_AXIS_WIDTH = 52
TICKS_HEIGHT = 12            # tick marks and their gap to the names


def bar_label(row: LayerRow) -> str:
    """The name a bar is labelled with: the layer's qualified name (its type for an unnamed root)."""
    return row.name or row.type


def hover_text(row: LayerRow) -> str:
    """What hovering a bar says about its layer."""
    return (f"{bar_label(row)} ({row.type})\n{row.params:,} parameters\n"
            f"{row.mult_adds:,} Mult-Adds ({human(row.mult_adds)})")


class LayerAxis(pg.AxisItem):
    """A bottom axis whose ticks are bar positions labelled with layer names; labels that would overlap are
    thinned to every k-th bar (every bar keeps its tick mark)."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.names: list[str] = []
        self._step = 1

    def set_names(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.picture = None
        self.update()

    def label_step(self, first: float, last: float, width_px: float) -> int:
        """Label every k-th bar (k a power of two) so that the longest visible name fits between two labels."""
        visible = self.names[max(0, int(first)):max(0, int(last) + 1)] or self.names
        if not visible or width_px <= 0:
            return 1
        metrics = QFontMetrics(self.style.get("tickFont") or self.font())
        longest = max(metrics.horizontalAdvance(n) for n in visible)
        per_bar = width_px / max(1e-9, last - first)
        step = 1
        while step * per_bar < longest + LABEL_GAP_PX and step < len(self.names):
            step *= 2
        return step

    def tickValues(self, min_val: float, max_val: float, size: float) -> list[tuple[float, list[float]]]:
        first, last = max(0, math.ceil(min_val)), min(len(self.names) - 1, math.floor(max_val))
        if last < first:
            return []
        self._step = step = self.label_step(min_val, max_val, size)
        labelled = [float(i) for i in range(first, last + 1) if i % step == 0]
        others = [float(i) for i in range(first, last + 1) if i % step != 0]
        return [(float(step), labelled), (1.0, others)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if spacing == 1.0 and self._step > 1:
            return ["" for _ in values]  # the bars between two thinned labels
        return [self.names[int(v)] if 0 <= int(v) < len(self.names) else "" for v in values]


class CountAxis(pg.AxisItem):
    """A left axis of counts written as people read them ("100 M", not "1e+08")."""

    def __init__(self) -> None:
        super().__init__("left")
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [human(v) for v in values]


class LayerChart(PaletteChart):
    """Bar charts of parameters and Mult-Adds per leaf layer (layers with neither are left out)."""

    barClicked = Signal(int)  # LayerRow.index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params_plot = pg.PlotWidget(axisItems={"bottom": LayerAxis(), "left": CountAxis()})
        self.params_plot.setObjectName("paramsChart")
        self.axis = LayerAxis()
        self.macs_plot = pg.PlotWidget(axisItems={"bottom": self.axis, "left": CountAxis()})
        self.macs_plot.setObjectName("multAddsChart")
        self.macs_plot.setXLink(self.params_plot)
        self._rows: list[LayerRow] = []
        self._bars = [pg.BarGraphItem(x=[], height=[], width=0.8, brush=colour, pen=None)
                      for colour in (PARAMS_COLOUR, MACS_COLOUR)]
        self._highlight: list[pg.BarGraphItem] = []
        self._grids: list[YGrid] = []
        for plot, title, bars in ((self.params_plot, "Parameters per layer", self._bars[0]),
                                  (self.macs_plot, "Mult-Adds per layer", self._bars[1])):
            plot.setTitle(title)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=True, y=False)
            plot.getPlotItem().hideButtons()
            plot.getAxis("left").setWidth(COUNT_AXIS_WIDTH)  # "999 M" fits: a new range never re-lays the plot out
            plot.addItem(bars)
            plot.disableAutoRange()  # set_layers sets both ranges: auto-ranging at paint time would repaint again
            self._grids.append(YGrid(plot.getPlotItem()))
        # Bound methods per plot, not lambdas: Qt drops them with this widget.
        self.params_plot.scene().sigMouseClicked.connect(self._on_params_click)
        self.macs_plot.scene().sigMouseClicked.connect(self._on_macs_click)
        self.params_plot.scene().sigMouseMoved.connect(self._on_params_hover)
        self.macs_plot.scene().sigMouseMoved.connect(self._on_macs_hover)
        self.params_plot.getAxis("bottom").setStyle(showValues=False)
        self.macs_plot.setLabel("bottom", "leaf layer (hover for details, click to select it in the tree)")
        # Fixed heights: an axis sized by the text it last drew resizes its plot (and repaints it) on a new summary.
        line = QFontMetrics(self.axis.font()).height()
        self.axis.setHeight(2 * line + TICKS_HEIGHT)
        self.params_plot.getAxis("bottom").setHeight(TICKS_HEIGHT)
        self._stale = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.params_plot)
        layout.addWidget(self.macs_plot)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Background and axes from the current palette (light or dark)."""
        background, text = self.colours()
        for plot in (self.params_plot, self.macs_plot):
            plot.setBackground(background)
            colour_plot_item(plot.getPlotItem(), text)
        for grid in self._grids:
            grid.set_colour(text)

    def set_stale(self, stale: bool) -> None:
        """Dim the bars while the summary they show is being replaced."""
        self._stale = stale
        for item in (*self._bars, *self._highlight):
            item.setOpacity(STALE_OPACITY if stale else 1.0)

    def is_stale(self) -> bool:
        return self._stale

    def set_layers(self, layers: Sequence[LayerRow]) -> None:
        """Draw one bar per leaf layer that has parameters or Mult-Adds, labelled with its name.

        The bars are updated in place and both ranges set outright (no auto-range, fixed axis widths), so a new
        summary costs one paint of each plot rather than three (auto-range and axis re-layouts repaint again)."""
        self.highlight(None)
        self._rows = [r for r in layers if r.is_leaf and (r.params or r.mult_adds)]
        x = list(range(len(self._rows)))
        names = [bar_label(r) for r in self._rows]
        self.axis.set_names(names)
        self.params_plot.getAxis("bottom").set_names(names)  # tick marks under every bar, names below the other
        for plot, bars, heights in ((self.params_plot, self._bars[0], [r.params for r in self._rows]),
                                    (self.macs_plot, self._bars[1], [r.mult_adds for r in self._rows])):
            bars.setOpts(x=x, height=heights, width=0.8)
            plot.setYRange(0, max(heights, default=0) * 1.05 or 1.0, padding=0)
        self.params_plot.setXRange(-0.6, max(1, len(self._rows)) - 0.4, padding=0)
        self.set_stale(False)
        for plot in (self.params_plot, self.macs_plot):
            plot.scene().prepareForPaint()  # the new transforms now, not in the paint (which would paint twice)

    def layer_ids(self) -> list[int]:
        """LayerRow indices of the bars, left to right."""
        return [r.index for r in self._rows]

    def tick_labels(self) -> list[str]:
        """The name under each bar, left to right."""
        return list(self.axis.names)

    def highlight(self, layer_index: int | None) -> None:
        """Outline the bars of one layer (None: clear)."""
        for plot, item in zip((self.params_plot, self.macs_plot), self._highlight):
            plot.removeItem(item)
        self._highlight = []
        ids = self.layer_ids()
        if layer_index is None or layer_index not in ids:
            return
        i = ids.index(layer_index)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        for plot, bars in zip((self.params_plot, self.macs_plot), self._bars):
            height = bars.opts["height"][i]
            item = pg.BarGraphItem(x=[i], height=[height], width=0.8, brush=colour, pen=pg.mkPen(colour, width=2))
            item.setOpacity(STALE_OPACITY if self._stale else 1.0)
            plot.addItem(item)
            self._highlight.append(item)

    def bar_at(self, plot: pg.PlotWidget, scene_pos: QPointF) -> LayerRow | None:
        """The layer of the bar under a scene position of `plot`, or None."""
        vb = plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos) or not self._rows:
            return None
        i = round(vb.mapSceneToView(scene_pos).x())
        return self._rows[i] if 0 <= i < len(self._rows) else None

    def _on_params_click(self, event: MouseClickEvent) -> None:
        self._click(self.params_plot, event)

    def _on_macs_click(self, event: MouseClickEvent) -> None:
        self._click(self.macs_plot, event)

    def _click(self, plot: pg.PlotWidget, event: MouseClickEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        row = self.bar_at(plot, event.scenePos())
        if row is not None:
            self.barClicked.emit(row.index)

    def _on_params_hover(self, scene_pos: QPointF) -> None:
        self.hover(self.params_plot, scene_pos)

    def _on_macs_hover(self, scene_pos: QPointF) -> None:
        self.hover(self.macs_plot, scene_pos)

    def hover(self, plot: pg.PlotWidget, scene_pos: QPointF) -> str:
        """The mouse is at `scene_pos` over `plot`: its tooltip names the bar's layer there ("" between bars)."""
        row = self.bar_at(plot, scene_pos)
        text = hover_text(row) if row is not None else ""
        if text != plot.toolTip():
            plot.setToolTip(text)
            if QToolTip.isVisible() or text:
                QToolTip.showText(QCursor.pos(), text, plot)
        return text
