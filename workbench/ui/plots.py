"""Live training curves (pyqtgraph): loss, accuracy, learning rate and throughput.

Curves are created once. The engine's StepMetrics / EpochMetrics events are appended to growable numpy buffers
in the slot; a QTimer (~20 Hz) pushes them to the curves with `setData` only when something changed.
Long runs are drawn with pyqtgraph's peak downsampling and clip-to-view.

The engine's StepMetrics carry the *running mean of the epoch so far* (loss and accuracy). Smoothing
those again would lag twice and restart with a sawtooth at every epoch, so the loss curve is rebuilt
from consecutive running means: the mean loss of the batches between two events is
(L2 * b2 - L1 * b1) / (b2 - b1), b being the batch count of the epoch; that per-interval loss is drawn
faintly and EMA-smoothed. Accuracy is drawn as what it is, the epoch's running mean, in percent.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QWidget

if TYPE_CHECKING:
    from workbench.training.events import EpochMetrics, FitStart, StepMetrics

REDRAW_MS = 50          # each plot about 20 Hz; the timer ticks 4x as often and redraws one plot per tick
EMA_ALPHA = 0.1         # smoothing of the per-interval training loss
LEGEND_ALPHA = 170      # legend background: the plot's background colour, semi-transparent
GRID_ALPHA = 45         # grid lines: the text colour, faint

# (plot attribute, series name, legend label, colour, pen style: per-step curves are thin lines,
# per-epoch curves get symbols)
_SERIES = (
    ("lossPlot", "step_loss", "train loss (per interval)", (150, 150, 150), "raw"),
    ("lossPlot", "step_loss_ema", "train loss (per interval, smoothed)", (31, 119, 180), "line"),
    ("lossPlot", "train_loss", "train loss (epoch)", (255, 127, 14), "epoch"),
    ("lossPlot", "val_loss", "val loss (epoch)", (214, 39, 40), "epoch"),
    ("accuracyPlot", "step_accuracy", "train accuracy (epoch running mean)", (150, 150, 150), "raw"),
    ("accuracyPlot", "train_accuracy", "train accuracy (epoch)", (255, 127, 14), "epoch"),
    ("accuracyPlot", "val_accuracy", "val accuracy (epoch)", (44, 160, 44), "epoch"),
    ("lrPlot", "lr", "learning rate", (148, 103, 189), "line"),
    ("throughputPlot", "images_per_second", "images/s", (140, 86, 75), "line"),
)
# Metric names (as the run store logs them) drawn for overlaid runs, and the plot they go to.
OVERLAY_METRICS = {"train_loss": "lossPlot", "val_loss": "lossPlot",
                   "train_accuracy": "accuracyPlot", "val_accuracy": "accuracyPlot"}
# Series whose engine values are fractions (0..1) but are plotted in percent.
PERCENT_SERIES = frozenset({"step_accuracy", "train_accuracy", "val_accuracy"})
TITLES = {"lossPlot": ("Loss", "loss"), "accuracyPlot": ("Accuracy", "accuracy (%)"),
          "lrPlot": ("Learning rate", "lr"), "throughputPlot": ("Throughput", "images/s")}


@dataclass(frozen=True)
class RunCurves:
    """A stored run's metrics to overlay: name -> [(epoch, step, value)] as the run store returns them."""

    run_id: str
    label: str
    metrics: dict[str, list[tuple[int, int, float]]]


def interval_mean(prev_mean: float, prev_batches: int, mean: float, batches: int) -> float | None:
    """Mean over the batches between two running means of the same epoch (None when none were added)."""
    if batches <= prev_batches:
        return None
    return (mean * batches - prev_mean * prev_batches) / (batches - prev_batches)


class Series:
    """An append-only (x, y) buffer backed by numpy arrays that double when full."""

    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        if self.size == len(self._x):
            self._x = np.resize(self._x, 2 * self.size)
            self._y = np.resize(self._y, 2 * self.size)
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1

    def clear(self) -> None:
        self.size = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class LivePlots(QWidget):
    """Four PlotWidgets fed by `add_step`/`add_epoch`, redrawn by a timer only when dirty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("livePlots")
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.grids: dict[str, pg.GridItem] = {}
        for index, attr in enumerate(TITLES):
            widget = pg.PlotWidget()
            widget.setObjectName(attr)
            item = widget.getPlotItem()
            if attr in ("accuracyPlot", "lrPlot"):
                # Small values would otherwise be relabelled "(x0.001)", reading as a different unit.
                item.getAxis("left").enableAutoSIPrefix(False)
            # One GridItem instead of the axes' own grid: axis grids repaint the whole view through
            # each AxisItem and cost ~4x more per frame (measured: 51 ms vs 14 ms for the four plots).
            grid = pg.GridItem(textPen=None)
            grid.setZValue(-100)
            item.addItem(grid, ignoreBounds=True)
            self.grids[attr] = grid
            item.addLegend(offset=(-10, 10))
            setattr(self, attr, widget)
            self.plots[attr] = widget
            layout.addWidget(widget, index // 2, index % 2)
        self.series: dict[str, Series] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for attr, name, label, colour, style in _SERIES:
            pen = pg.mkPen(colour, width=1 if style == "raw" else 2)
            kwargs: dict = {"pen": pen, "name": label}
            if style == "epoch":
                kwargs.update(symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=None)
            curve = self.plots[attr].plot([], [], **kwargs)
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            if style == "raw":
                curve.setOpacity(0.35)
            self.series[name] = Series()
            self.curves[name] = curve
        self._overlays: list[tuple[str, pg.PlotDataItem]] = []
        self._ema: float | None = None
        self._steps = 0
        self._last: tuple[int, int, float] | None = None   # (epoch, batches, running mean loss)
        self.apply_palette()
        self._live = False
        self._yranges: dict[str, tuple[float, float]] = {}
        self._stale: set[str] = set()   # plots whose curves lag behind their buffers
        self._turn = 0
        self.redraw_count = 0
        self.timer = QTimer(self)
        # One plot per tick: painting all four at once blocks the event loop for one long frame
        # (~13 ms idle, several times that while training competes for the cores).
        self.timer.setInterval(REDRAW_MS // len(self.plots))
        self.timer.timeout.connect(self._redraw_next)
        self.timer.start()

    def _palette_colours(self) -> tuple[str, str]:
        palette = self.palette()
        return (palette.color(QPalette.ColorRole.WindowText).name(),
                palette.color(QPalette.ColorRole.Base).name())

    def apply_palette(self) -> None:
        """(Re-)colour backgrounds, titles, axes and legends from the widget's current palette."""
        fg, bg = self._palette_colours()
        legend_bg = QColor(bg)
        legend_bg.setAlpha(LEGEND_ALPHA)
        for attr, (title, ylabel) in TITLES.items():
            widget = self.plots[attr]
            widget.setBackground(bg)
            item = widget.getPlotItem()
            item.setTitle(title, color=fg)
            item.setLabel("bottom", "epoch", color=fg)
            item.setLabel("left", ylabel, color=fg)
            for axis in ("left", "bottom"):
                item.getAxis(axis).setPen(fg)
                item.getAxis(axis).setTextPen(fg)
            grid_colour = QColor(fg)
            grid_colour.setAlpha(GRID_ALPHA)
            self.grids[attr].setPen(pg.mkPen(grid_colour))
            legend = item.legend
            if legend is not None:
                legend.setBrush(pg.mkBrush(legend_bg))
                legend.setPen(pg.mkPen(fg, width=0.5))
                legend.setLabelTextColor(fg)
                for _sample, label in legend.items:  # setLabelTextColor does not re-render existing labels
                    label.setText(label.text, color=fg)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)

    # ----- feeding -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the live run's points (overlays stay)."""
        for series in self.series.values():
            series.clear()
        self._ema = None
        self._steps = 0
        self._last = None
        self._stale.update(self.plots)

    def stale_plots(self) -> set[str]:
        """Object names of the plots whose curves lag behind their buffers."""
        return set(self._stale)

    @property
    def dirty(self) -> bool:
        """Whether some curve lags behind its buffered points."""
        return bool(self._stale)

    def begin_run(self, start: FitStart) -> None:
        """A run started: forget the previous live curves and fix the x range to its epochs."""
        self.reset()
        self.start_run(start.epochs)

    def start_run(self, epochs: int) -> None:
        """Fix the x range to the planned epochs while a run is live.

        Redrawing an axis (its tick text) is the costly part of a frame, so while training the view ranges
        only change when the data leaves them (y grows with headroom); `end_run` restores auto-range.
        """
        self._live = True
        self._yranges = {}
        for widget in self.plots.values():
            widget.getPlotItem().disableAutoRange()
            widget.setXRange(0.0, max(1, int(epochs)), padding=0.02)

    def end_run(self, _result: object = None) -> None:
        """Back to pyqtgraph's auto-range (one final re-layout of the axes)."""
        self._live = False
        self.redraw()
        for widget in self.plots.values():
            widget.getPlotItem().enableAutoRange()

    def _ratchet_ranges(self, only: str) -> None:
        bounds: dict[str, list[float]] = {}
        for attr, name, *_ in _SERIES:
            if attr != only:
                continue
            y = self.series[name].y
            if y.size:
                lo, hi = float(y.min()), float(y.max())
                b = bounds.setdefault(attr, [lo, hi])
                b[0], b[1] = min(b[0], lo), max(b[1], hi)
        for attr, (lo, hi) in bounds.items():
            current = self._yranges.get(attr)
            if current is not None and current[0] <= lo and hi <= current[1]:
                continue
            span = max(hi - lo, abs(hi) * 0.1, 1e-6)
            new = (lo - 0.25 * span if lo < 0 or attr == "lossPlot" else 0.0, hi + 0.25 * span)
            new = (max(new[0], 0.0) if lo >= 0 else new[0], new[1])
            if attr == "accuracyPlot":
                new = (new[0], min(new[1], 102.0))
            self._yranges[attr] = new
            self.plots[attr].setYRange(*new, padding=0)

    def add_step(self, m: StepMetrics) -> None:
        """Buffer one StepMetrics event (running means of the epoch so far); x is the fractional epoch."""
        batches = max(1, m.batches)
        epoch, batch = m.epoch, m.batch
        x = (epoch - 1) + batch / batches
        loss = _finite(m.loss)
        if loss is not None:
            prev_batches, prev_mean = 0, 0.0
            if self._last is not None and self._last[0] == epoch and self._last[1] <= batch:
                prev_batches, prev_mean = self._last[1], self._last[2]
            interval = interval_mean(prev_mean, prev_batches, loss, batch)
            self._last = (epoch, batch, loss)
            if interval is not None and math.isfinite(interval):
                self._steps += 1
                self._ema = interval if self._ema is None else EMA_ALPHA * interval + (1 - EMA_ALPHA) * self._ema
                self.series["step_loss"].append(x, interval)
                self.series["step_loss_ema"].append(x, self._ema)
        for value, name in ((_finite(m.accuracy), "step_accuracy"), (_finite(m.lr), "lr"),
                            (_finite(m.images_per_second), "images_per_second")):
            if value is not None:
                self.series[name].append(x, 100.0 * value if name in PERCENT_SERIES else value)
        self._stale.update(self.plots)

    def add_epoch(self, m: EpochMetrics) -> None:
        """Buffer one EpochMetrics event at x = epoch."""
        x = float(m.epoch)
        for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            value = _finite(getattr(m, name))
            if value is not None:
                self.series[name].append(x, 100.0 * value if name in PERCENT_SERIES else value)
        self._stale.update(("lossPlot", "accuracyPlot"))

    def point_count(self, name: str) -> int:
        """Points buffered for one series (e.g. "val_accuracy")."""
        return self.series[name].size

    def redraw(self) -> bool:
        """Push every stale plot's buffers to its curves now; returns whether anything was stale."""
        if not self._stale:
            return False
        for attr in list(self._stale):
            self._push(attr)
        self.redraw_count += 1
        return True

    def _redraw_next(self) -> None:
        """Timer tick: bring the next stale plot (round robin) up to date."""
        order = list(self.plots)
        for offset in range(len(order)):
            attr = order[(self._turn + offset) % len(order)]
            if attr in self._stale:
                self._turn = (self._turn + offset + 1) % len(order)
                self._push(attr)
                if not self._stale:
                    self.redraw_count += 1
                return

    def _push(self, attr: str) -> None:
        for plot_attr, name, *_ in _SERIES:
            if plot_attr == attr:
                series = self.series[name]
                self.curves[name].setData(series.x, series.y)
        if self._live:
            self._ratchet_ranges(attr)
        self._stale.discard(attr)

    # ----- overlays ------------------------------------------------------------------------
    def set_overlays(self, runs: list[RunCurves]) -> None:
        """Overlay stored runs' epoch curves (dashed validation, dotted training)."""
        for attr, curve in self._overlays:
            self.plots[attr].getPlotItem().removeItem(curve)
        self._overlays = []
        colours = [(23, 190, 207), (188, 189, 34), (227, 119, 194), (127, 127, 127), (255, 187, 120)]
        for index, run in enumerate(runs):
            colour = colours[index % len(colours)]
            for name, attr in OVERLAY_METRICS.items():
                rows = run.metrics.get(name) or []
                if not rows:
                    continue
                style = pg.QtCore.Qt.PenStyle.DashLine if name.startswith("val") else pg.QtCore.Qt.PenStyle.DotLine
                scale = 100.0 if name in PERCENT_SERIES else 1.0
                curve = self.plots[attr].plot(
                    [float(r[0]) for r in rows], [scale * float(r[2]) for r in rows],
                    pen=pg.mkPen(colour, width=2, style=style),
                    name=f"{run.label} {name.replace('_', ' ')}")
                self._overlays.append((attr, curve))

    def overlay_count(self) -> int:
        return len(self._overlays)

    # ----- export --------------------------------------------------------------------------
    def export_png(self, plot: str, path: Path | str, width: int = 1200) -> Path:
        """Render one plot ("lossPlot", "accuracyPlot", "lrPlot", "throughputPlot") to a PNG file."""
        from pyqtgraph.exporters import ImageExporter

        self.redraw()
        exporter = ImageExporter(self.plots[plot].getPlotItem())
        exporter.parameters()["width"] = int(width)
        path = Path(path)
        exporter.export(str(path))
        return path

    def export_csv(self, path: Path | str) -> Path:
        """Write every buffered point as rows of series, x (epoch), value (accuracies as 0..1 fractions)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["series", "epoch", "value"])
            for name, series in self.series.items():
                scale = 0.01 if name in PERCENT_SERIES else 1.0
                for x, y in zip(series.x.tolist(), series.y.tolist()):
                    writer.writerow([name, f"{x:.6g}", repr(scale * y)])
        return path
