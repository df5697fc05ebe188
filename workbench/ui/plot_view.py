"""The four PlotWidgets of the training curves: axes in plain units, curves, overlays and fitted view ranges.

Ranges are fitted here rather than by pyqtgraph's auto-range: the loss plot leaves a diverged loss out of its y
range (the clipped points are marked by triangles at the top and the title says so), or shows it whole on a log
scale. While a run is live, x spans its planned epochs and the y range only changes when the data leaves it (an
axis re-layout is the costly part of a frame). A plot the user zooms or pans is left alone until its "A" button.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QPalette

from workbench.ui.chart_style import colour_axes, faint_pen
from workbench.ui.plot_data import (
    PERCENT_SERIES,
    RunCurves,
    YRange,
    aux_count,
    is_aux_metric,
    metric_label,
    robust_y_range,
    total_loss_formula,
)
from workbench.ui.series_list import SeriesEntry

LIVE_HEADROOM = 0.25     # while live, y ranges grow with this much room so they rarely change
OVERLAY_COLOURS = ((23, 190, 207), (188, 189, 34), (227, 119, 194), (127, 127, 127), (255, 187, 120),
                   (31, 119, 180), (44, 160, 44), (214, 39, 40))
MARKER_COLOUR = (214, 39, 40)
# The stored epoch metrics an overlay draws (besides the aux-head losses, on the loss plot) and their plots.
OVERLAY_PLOTS = {"train_loss": "lossPlot", "val_loss": "lossPlot", "train_accuracy": "accuracyPlot",
                 "val_accuracy": "accuracyPlot", "lr": "lrPlot", "images_per_second": "throughputPlot"}


class SeriesSpec(NamedTuple):
    """A live curve: its plot, series name, legend text, colour and style (raw | line | epoch | aux | valaux)."""

    plot: str
    name: str
    label: str
    colour: tuple[int, int, int]
    style: str


# (plot, series name, label, colour, style): per-step curves are thin lines, per-epoch curves get symbols.
LIVE_SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec("lossPlot", "step_loss", "train loss (per interval)", (150, 150, 150), "raw"),
    SeriesSpec("lossPlot", "step_loss_ema", "train loss (per interval, smoothed)", (31, 119, 180), "line"),
    SeriesSpec("lossPlot", "train_loss", "train loss (epoch)", (255, 127, 14), "epoch"),
    SeriesSpec("lossPlot", "val_loss", "val loss (epoch)", (214, 39, 40), "epoch"),
    SeriesSpec("accuracyPlot", "step_accuracy", "train accuracy (epoch running mean)", (150, 150, 150), "raw"),
    SeriesSpec("accuracyPlot", "train_accuracy", "train accuracy (epoch)", (255, 127, 14), "epoch"),
    SeriesSpec("accuracyPlot", "val_accuracy", "val accuracy (epoch)", (44, 160, 44), "epoch"),
    SeriesSpec("lrPlot", "lr", "learning rate", (148, 103, 189), "line"),
    SeriesSpec("throughputPlot", "images_per_second", "images/s", (140, 86, 75), "line"),
)
TITLES = {"lossPlot": ("Loss", "loss"), "accuracyPlot": ("Accuracy", "accuracy (%)"),
          "lrPlot": ("Learning rate", "lr"), "throughputPlot": ("Throughput", "images/s")}

_AUX_COLOURS = ((148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127))


def aux_specs(heads: int) -> list[SeriesSpec]:
    """The live curves of a model with `heads` auxiliary heads: main loss, each head's train and val loss."""
    if heads <= 0:
        return []
    specs = [SeriesSpec("lossPlot", "train_main_loss", "train main loss (epoch)", (23, 190, 207), "epoch")]
    for i in range(1, heads + 1):
        colour = _AUX_COLOURS[(i - 1) % len(_AUX_COLOURS)]
        specs.append(SeriesSpec("lossPlot", f"train_aux{i}_loss", f"train aux{i} loss (epoch)", colour, "aux"))
        specs.append(SeriesSpec("lossPlot", f"val_aux{i}_loss", f"val aux{i} loss (epoch, main: val loss)",
                                colour, "valaux"))
    return specs


_STYLES: dict[str, tuple[Qt.PenStyle, bool, bool, float]] = {   # pen style, symbol, faint, width
    "raw": (Qt.PenStyle.SolidLine, False, True, 1.0), "line": (Qt.PenStyle.SolidLine, False, False, 2.0),
    "epoch": (Qt.PenStyle.SolidLine, True, False, 2.0), "aux": (Qt.PenStyle.DashDotLine, True, False, 1.5),
    "valaux": (Qt.PenStyle.DashDotDotLine, True, False, 1.5), "train": (Qt.PenStyle.DotLine, False, False, 2.0),
    "val": (Qt.PenStyle.DashLine, False, False, 2.0), "main": (Qt.PenStyle.SolidLine, False, False, 1.0),
}


def overlay_style(metric: str) -> str:
    """The pen style of an overlaid run's metric: dashed validation, dotted training, dash-dot aux heads."""
    if metric in ("lr", "images_per_second"):
        return "line"
    if metric == "train_main_loss":
        return "main"
    if is_aux_metric(metric):
        return "valaux" if metric.startswith("val") else "aux"
    return "val" if metric.startswith("val") else "train"


class _Overlay(NamedTuple):
    plot: str
    key: str
    curve: pg.PlotDataItem


class PlotView(QObject):
    """The plot widgets (`plots`), their curves and ranges; owned by LivePlots. `clipChanged(plot)` when a plot
    starts or stops leaving diverged values out."""

    clipChanged = Signal(str)

    def __init__(self, titles: Mapping[str, tuple[str, str]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.titles = dict(titles)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.grids: dict[str, pg.GridItem] = {}
        self.curves: dict[str, tuple[str, pg.PlotDataItem]] = {}    # key -> (plot, curve): live and overlays
        self.overlays: list[_Overlay] = []
        self.live = False
        self.epochs = 1
        self.manual: set[str] = set()                               # plots the user zoomed or panned
        self.ranges: dict[str, tuple[float, float, float, float]] = {}
        self.clipped: dict[str, YRange] = {}                        # plots whose y range leaves values out
        self._fg = "#000000"
        for attr in titles:
            widget = pg.PlotWidget()
            widget.setObjectName(attr)
            item = widget.getPlotItem()
            for axis in ("left", "bottom"):
                item.getAxis(axis).enableAutoSIPrefix(False)   # "loss (x1e+09)" reads as another unit
            # One GridItem instead of the axes' own grid: axis grids repaint the whole view through
            # each AxisItem and cost ~4x more per frame (measured: 51 ms vs 14 ms for the four plots).
            grid = pg.GridItem(textPen=None)
            grid.setZValue(-100)
            item.addItem(grid, ignoreBounds=True)
            item.disableAutoRange()
            item.getViewBox().sigRangeChangedManually.connect(self._on_manual_range)
            item.autoBtn.clicked.connect(self._on_auto_button)
            self.grids[attr] = grid
            self.plots[attr] = widget
        self.marker = pg.ScatterPlotItem(symbol="t1", size=11, brush=pg.mkBrush(*MARKER_COLOUR), pen=None)
        self.marker.setZValue(50)
        self.plots["lossPlot"].getPlotItem().addItem(self.marker, ignoreBounds=True)

    # ----- curves ------------------------------------------------------------------------------------------
    @staticmethod
    def entry_style(style: str) -> tuple[Qt.PenStyle, bool, bool]:
        """(pen style, has symbols, faint) of a curve style, for the series list's icons."""
        pen_style, symbol, faint, _width = _STYLES[style]
        return pen_style, symbol, faint

    def add_curve(self, plot: str, key: str, label: str, colour: tuple[int, int, int], style: str,
                  x: Sequence[float] = (), y: Sequence[float] = (), hidden: bool = False) -> pg.PlotDataItem:
        """A curve on `plot` registered under `key` (a live series name or "run_id:metric")."""
        pen_style, symbol, faint, width = _STYLES[style]
        kwargs: dict = {"pen": pg.mkPen(colour, width=width, style=pen_style), "name": label}
        if symbol:
            kwargs.update(symbol="o", symbolSize=6 if style == "epoch" else 5, symbolBrush=colour, symbolPen=None)
        curve = self.plots[plot].plot(list(x), list(y), **kwargs)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        if faint:
            curve.setOpacity(0.35)
        curve.setVisible(not hidden)
        self.curves[key] = (plot, curve)
        return curve

    @staticmethod
    def rename(curve: pg.PlotDataItem, label: str) -> None:
        curve.opts["name"] = label

    def set_visible(self, key: str, shown: bool) -> str | None:
        """Show or hide the curve of `key`; returns its plot (None for an unknown key)."""
        found = self.curves.get(key)
        if found is None:
            return None
        found[1].setVisible(shown)
        return found[0]

    def clear_overlays(self) -> None:
        for overlay in self.overlays:
            self.plots[overlay.plot].getPlotItem().removeItem(overlay.curve)
            self.curves.pop(overlay.key, None)
        self.overlays = []

    def add_overlay(self, plot: str, key: str, label: str, colour: tuple[int, int, int], style: str,
                    x: Sequence[float], y: Sequence[float], hidden: bool) -> None:
        curve = self.add_curve(plot, key, label, colour, style, x, y, hidden)
        curve.setDownsampling(auto=False)
        self.overlays.append(_Overlay(plot, key, curve))

    def overlay_count(self) -> int:
        return len(self.overlays)

    # ----- appearance --------------------------------------------------------------------------------------
    def apply_palette(self, palette: QPalette) -> None:
        """Backgrounds, titles, axes and grids in the palette's colours."""
        fg = palette.color(QPalette.ColorRole.WindowText).name()
        bg = palette.color(QPalette.ColorRole.Base).name()
        self._fg = fg
        for attr, (title, ylabel) in self.titles.items():
            widget = self.plots[attr]
            widget.setBackground(bg)
            item = widget.getPlotItem()
            item.setTitle(self._title(attr, title), color=fg)
            item.setLabel("bottom", "epoch", color=fg)
            item.setLabel("left", ylabel, color=fg)
            colour_axes(item, fg)
            self.grids[attr].setPen(faint_pen(fg))

    def _title(self, attr: str, title: str) -> str:
        # Short: a title wider than the plot widens its layout past the widget and cuts the x axis off.
        return title if attr not in self.clipped else f"{title} (▲ clipped)"

    def clip_note(self, plot: str = "lossPlot") -> str:
        """One sentence on a clipped plot ("" when nothing is clipped)."""
        clip = self.clipped.get(plot)
        if clip is None:
            return ""
        where = f" at epoch {min(self.marked_points()):g}" if self.marked_points() else ""
        return (f"The loss diverged{where} (up to {clip.peak:.3g}); the plot is clipped above {clip.hi:.3g} so the "
                "rest stays readable (▲ marks the points above). Tick Log-scale loss to see everything.")

    def set_log_y(self, plot: str, on: bool) -> None:
        self.plots[plot].getPlotItem().setLogMode(False, on)
        self.ranges.pop(plot, None)
        self.manual.discard(plot)

    def is_log_y(self, plot: str) -> bool:
        return bool(self.plots[plot].getPlotItem().getAxis("left").logMode)

    # ----- ranges ------------------------------------------------------------------------------------------
    def start_live(self, epochs: int) -> None:
        """A live run: x spans `epochs`; y ranges only grow (with headroom) until `end_live`."""
        self.live, self.epochs = True, max(1, int(epochs))
        self.manual.clear()
        self.ranges.clear()
        for widget in self.plots.values():
            widget.setXRange(0.0, self.epochs, padding=0.02)

    def end_live(self) -> None:
        self.live = False
        self.ranges.clear()

    def _on_manual_range(self, *_args: object) -> None:
        vb = self.sender()
        for attr, widget in self.plots.items():
            if widget.getPlotItem().getViewBox() is vb:
                self.manual.add(attr)

    def _on_auto_button(self) -> None:
        for attr, widget in self.plots.items():
            item = widget.getPlotItem()
            if item.autoBtn is self.sender():
                item.disableAutoRange()
                self.manual.discard(attr)
                self.ranges.pop(attr, None)
                self.fit(attr)

    def visible_data(self, plot: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(xs, ys) of the shown curves of `plot` (raw data, not log-transformed)."""
        xs, ys = [], []
        for p, curve in self.curves.values():
            if p == plot and curve.isVisible() and curve.yData is not None and len(curve.yData):
                xs.append(np.asarray(curve.xData, dtype=float))
                ys.append(np.asarray(curve.yData, dtype=float))
        return xs, ys

    def fit(self, plot: str) -> None:
        """Fit `plot`'s view to its shown curves (see the module docstring)."""
        if plot in self.manual:
            return
        xs, ys = self.visible_data(plot)
        log = self.is_log_y(plot)
        yr = robust_y_range(ys, log=log, clip=plot == "lossPlot",
                            floor_zero=plot in ("accuracyPlot", "lrPlot", "throughputPlot", "lossPlot"))
        x_hi = max((float(x[-1]) for x in xs if x.size), default=0.0)   # x only grows along a curve
        x1 = max(float(self.epochs), x_hi) if self.live else max(x_hi, 1.0)
        previous = self.clipped.pop(plot, None)
        if yr is not None and yr.clipped:
            self.clipped[plot] = yr
        if yr is None:
            if self.live and self.ranges.get(plot, (0.0, 0.0))[:2] != (0.0, x1):
                y0, y1 = self.ranges.get(plot, (0.0, 1.0, 0.0, 1.0))[2:]
                self._apply(plot, (0.0, x1, y0, y1))
            return
        y0, y1 = yr.lo, yr.hi
        if plot == "accuracyPlot":
            y1 = min(y1, 102.0)
        current = self.ranges.get(plot)
        if self.live:
            tall = current is not None and current[3] - current[2] > 3 * max(y1 - y0, 1e-9)
            fits = current is not None and current[1] >= x1 and current[2] <= y0 and y1 <= current[3]
            if current is not None and fits and not tall and previous == self.clipped.get(plot):
                self._mark(plot, xs, ys, current[3])
                return
            span = y1 - y0
            y1 = y1 + LIVE_HEADROOM * span
            if plot == "accuracyPlot":
                y1 = min(y1, 102.0)
        self._apply(plot, (0.0, x1, y0, y1))
        self._mark(plot, xs, ys, y1)
        if previous != self.clipped.get(plot):
            self.plots[plot].getPlotItem().setTitle(self._title(plot, self.titles[plot][0]), color=self._fg)
            self.clipChanged.emit(plot)

    def _apply(self, plot: str, ranges: tuple[float, float, float, float]) -> None:
        if self.ranges.get(plot) == ranges:
            return
        self.ranges[plot] = ranges
        widget = self.plots[plot]
        widget.setXRange(ranges[0], ranges[1], padding=0.02)
        widget.setYRange(ranges[2], ranges[3], padding=0)

    def _mark(self, plot: str, xs: list[np.ndarray], ys: list[np.ndarray], top: float) -> None:
        """Triangles at the top edge where a diverged loss leaves the clipped range."""
        if plot != "lossPlot":
            return
        clip = self.clipped.get(plot)
        if clip is None:
            self.marker.setData([], [])
            return
        above = [x[y > clip.hi] for x, y in zip(xs, ys)]
        points = np.unique(np.concatenate(above)) if above else np.empty(0)
        bottom = self.ranges.get(plot, (0, 1, 0.0, top))[2]
        self.marker.setData(points, np.full(points.shape, top - 0.04 * (top - bottom)))

    def marked_points(self) -> list[float]:
        """x of the diverged points marked on the loss plot."""
        x, _y = self.marker.getData()
        return [float(v) for v in x] if x is not None else []


def overlay_curves(view: PlotView, runs: Sequence[RunCurves], hidden: set[str]
                   ) -> dict[str, tuple[str, list[SeriesEntry]]]:
    """Replace the view's overlays by `runs`' stored epoch curves (aux-head losses included); returns the series
    list groups: "overlay:<run_id>" -> (run label, entries)."""
    view.clear_overlays()
    groups: dict[str, tuple[str, list[SeriesEntry]]] = {}
    for index, run in enumerate(runs):
        colour = OVERLAY_COLOURS[index % len(OVERLAY_COLOURS)]
        heads = aux_count(run.metrics)
        entries: list[SeriesEntry] = []
        for name, rows in run.metrics.items():
            plot = OVERLAY_PLOTS.get(name, "lossPlot")
            if not rows or not (name in OVERLAY_PLOTS or is_aux_metric(name)):
                continue
            scale = 100.0 if name in PERCENT_SERIES else 1.0
            points = [(float(e), scale * float(v)) for e, _s, v in rows if math.isfinite(v)]
            text = metric_label(name)
            if name == "train_loss" and heads and run.aux_weight:
                text = f"train loss = {total_loss_formula(run.aux_weight, heads)}"
            key, style = f"{run.run_id}:{name}", overlay_style(name)
            view.add_overlay(plot, key, f"{run.label} {text}", colour, style, [p[0] for p in points],
                             [p[1] for p in points], key in hidden)
            entries.append(SeriesEntry(key, text, colour, *view.entry_style(style)))
        entries.sort(key=lambda e: _ORDER.get(e.key.split(":", 1)[1], 99))
        groups[f"overlay:{run.run_id}"] = (run.label, entries)
    return groups


_ORDER = {"train_loss": 0, "val_loss": 1, "train_main_loss": 2, "train_accuracy": 20, "val_accuracy": 21, "lr": 30,
          "images_per_second": 31}
