"""Live training curves (pyqtgraph): loss, accuracy, learning rate and throughput, with the legend beside them.

Curves are created once (GoogLeNet's aux-loss curves when its first epoch reports them). The engine's StepMetrics /
EpochMetrics events are appended to growable numpy buffers; a QTimer redraws one stale plot per tick with `setData`.
Long runs are drawn with pyqtgraph's peak downsampling and clip-to-view.

Nothing is drawn over the data: the legend is the `seriesList` beside the plots (below them when the tab is
narrow), where each series can be shown or hidden. Axes read in the user's units (no "x0.001" rescaling); the
view ranges are fitted here (see plot_view.py): a diverged loss is clipped and marked, or shown whole on a log
scale (`lossLogScale`). A resumed run's stored history is merged in front of its live points (`merge_history`), and
a run trained by another process is shown from the store (`follow`). The helpers without Qt are in plot_data.py.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QHideEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from workbench.ui.chart_style import PaletteChart
from workbench.ui.plot_data import (
    PERCENT_SERIES,
    RunCurves,
    Series,
    StepLossTracker,
    finite,
    history_points,
    interval_mean,
    is_aux_metric,
    total_loss_formula,
)
from workbench.ui.plot_svg import export_grid_svg, export_plot_svg
from workbench.ui.plot_view import LIVE_SERIES, TITLES, PlotView, SeriesSpec, aux_specs, overlay_curves
from workbench.ui.series_list import SeriesEntry, SeriesList

if TYPE_CHECKING:
    from workbench.training.events import EpochMetrics, FitStart, StepMetrics

__all__ = ["LivePlots", "RunCurves", "Series", "interval_mean"]

REDRAW_MS = 50          # each plot about 20 Hz; the timer ticks 4x as often and redraws one plot per tick
NARROW = 900            # below this width the series list goes under the plots
LIVE_GROUP = "live"

class LivePlots(PaletteChart):
    """Four PlotWidgets fed by `add_step`/`add_epoch`, redrawn by a timer only when dirty; `seriesList` beside.
    `visibilityChanged(bool)` when the curves come on or leave the screen."""

    visibilityChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("livePlots")
        self.grid = QWidget()
        self.grid.setObjectName("plotGrid")
        grid_layout = QGridLayout(self.grid)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.setSpacing(2)
        self.view = PlotView(TITLES, self)
        self.plots: dict[str, pg.PlotWidget] = self.view.plots
        self.grids = self.view.grids
        for index, (attr, widget) in enumerate(self.plots.items()):
            setattr(self, attr, widget)
            grid_layout.addWidget(widget, index // 2, index % 2)
        self.lossLogScale = QCheckBox("Log-scale loss")
        self.lossLogScale.setObjectName("lossLogScale")
        self.lossLogScale.setToolTip("Show the loss on a log scale: a diverged loss is shown whole instead of clipped.")
        self.lossLogScale.toggled.connect(self._on_log_scale)
        self.clipNote = QLabel("")
        self.clipNote.setObjectName("clipNote")
        self.clipNote.setWordWrap(True)
        self.clipNote.setVisible(False)
        self.view.clipChanged.connect(self._on_clip_changed)
        self.seriesList = SeriesList()
        self.seriesList.toggled.connect(self._on_toggled)
        self.side = side = QWidget()
        side.setObjectName("seriesPanel")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 0, 0)
        side_layout.addWidget(self.lossLogScale)
        side_layout.addWidget(self.clipNote)
        side_layout.addWidget(self.seriesList, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("plotsSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self._sized = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self.specs: dict[str, SeriesSpec] = {}
        self.series: dict[str, Series] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for spec in LIVE_SERIES:
            self._add_live_series(spec)
        self.run_id: str | None = None
        self.run_label = ""
        self.own_live = False                 # a run of this app is live (begin_run .. end_run)
        self._listed = False                  # the live run's series are in the series list
        self.followed: str | None = None      # the run of another process shown instead
        self.aux_weight = 0.0
        self.aux_heads = 0
        self._tracker = StepLossTracker()
        self._overlay_groups: list[str] = []
        self._stale: set[str] = set()   # plots whose curves lag behind their buffers
        self._turn = 0
        self.redraw_count = 0
        self.apply_palette()
        self.timer = QTimer(self)
        # One plot per tick: painting all four at once blocks the event loop for one long frame
        # (~13 ms idle, several times that while training competes for the cores).
        self.timer.setInterval(REDRAW_MS // len(self.plots))
        self.timer.timeout.connect(self._redraw_next)
        self.timer.start()

    def _add_live_series(self, spec: SeriesSpec) -> None:
        self.specs[spec.name] = spec
        self.series[spec.name] = Series()
        self.curves[spec.name] = self.view.add_curve(spec.plot, spec.name, spec.label, spec.colour, spec.style)

    # ----- appearance --------------------------------------------------------------------------------------
    def apply_palette(self) -> None:
        """(Re-)colour backgrounds, titles, axes and grids from the widget's current palette."""
        self.view.apply_palette(self.palette())

    def resizeEvent(self, event: QResizeEvent) -> None:
        narrow = self.width() < NARROW
        orientation = Qt.Orientation.Vertical if narrow else Qt.Orientation.Horizontal
        if self.splitter.orientation() != orientation or not self._sized:
            self.splitter.setOrientation(orientation)
            if narrow:   # the list under the plots, a quarter of the height
                side = max(120, event.size().height() // 4)
                self.splitter.setSizes([event.size().height() - side, side])
            else:        # the list beside the plots
                side = min(320, max(240, event.size().width() // 4))
                self.splitter.setSizes([event.size().width() - side, side])
            self._sized = True
        super().resizeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.visibilityChanged.emit(True)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.visibilityChanged.emit(False)

    @property
    def log_scale(self) -> bool:
        return self.lossLogScale.isChecked()

    @Slot(bool)
    def _on_log_scale(self, on: bool) -> None:
        self.view.set_log_y("lossPlot", on)
        self._stale.add("lossPlot")

    @Slot(str)
    def _on_clip_changed(self, plot: str) -> None:
        if plot == "lossPlot":
            note = self.view.clip_note(plot)
            self.clipNote.setText(note)
            self.clipNote.setVisible(bool(note))

    @Slot(str, bool)
    def _on_toggled(self, key: str, shown: bool) -> None:
        attr = self.view.set_visible(key, shown)
        if attr is not None:
            self._stale.add(attr)

    # ----- feeding -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the live run's points (overlays stay)."""
        for series in self.series.values():
            series.clear()
        self._tracker = StepLossTracker()
        self._stale.update(self.plots)

    def stale_plots(self) -> set[str]:
        """Object names of the plots whose curves lag behind their buffers."""
        return set(self._stale)

    @property
    def dirty(self) -> bool:
        """Whether some curve lags behind its buffered points."""
        return bool(self._stale)

    def begin_run(self, start: FitStart) -> None:
        """A run started: forget the previous live curves and fix the x range to its epochs. A resumed run's
        earlier points arrive through `merge_history`."""
        self.reset()
        self.own_live, self.followed = True, None
        self.run_id = start.run_id
        self.run_label = f"This run: {start.arch} on {start.dataset}"
        self.aux_heads = 0   # known once the first epoch reports aux-head losses
        self._set_aux(float(start.config.get("aux_weight", 0.0) or 0.0), 0)
        self.start_run(start.epochs)

    def start_run(self, epochs: int) -> None:
        """Fix the x range to the planned epochs while a run is live (see PlotView.start_live)."""
        self.view.start_live(max(1, int(epochs)))
        self._update_live_group()

    def end_run(self, _result: object = None) -> None:
        """The live run ended: fit the views to the data once more."""
        self.own_live = False
        self.view.end_live()
        self.redraw()
        self._stale.update(self.plots)
        self.redraw()

    def add_step(self, m: StepMetrics) -> None:
        """Buffer one StepMetrics event (running means of the epoch so far); x is the fractional epoch."""
        batches = max(1, m.batches)
        x = (m.epoch - 1) + m.batch / batches
        loss = finite(m.loss)
        if loss is not None and (pair := self._tracker.add(m.epoch, m.batch, loss)) is not None:
            self.series["step_loss"].append(x, pair[0])
            self.series["step_loss_ema"].append(x, pair[1])
        for value, name in ((finite(m.accuracy), "step_accuracy"), (finite(m.lr), "lr"),
                            (finite(m.images_per_second), "images_per_second")):
            if value is not None:
                self.series[name].append(x, 100.0 * value if name in PERCENT_SERIES else value)
        self._stale.update(self.plots)
        if not self._listed:
            self._update_live_group()

    def add_epoch(self, m: EpochMetrics) -> None:
        """Buffer one EpochMetrics event at x = epoch (with a GoogLeNet's main and aux-head losses)."""
        x = float(m.epoch)
        values: dict[str, float | None] = {n: getattr(m, n) for n in
                                           ("train_loss", "val_loss", "train_accuracy", "val_accuracy")}
        if m.train_aux_losses:
            self._set_aux(m.aux_weight, len(m.train_aux_losses))
            values["train_main_loss"] = m.train_main_loss
            values.update({f"train_aux{i}_loss": v for i, v in enumerate(m.train_aux_losses, start=1)})
            values.update({f"val_aux{i}_loss": v for i, v in enumerate(m.val_aux_losses, start=1)})
        for name, raw in values.items():
            value = finite(raw)
            if value is not None and name in self.series:
                self.series[name].append(x, 100.0 * value if name in PERCENT_SERIES else value)
        self._stale.update(("lossPlot", "accuracyPlot"))
        if not self._listed:
            self._update_live_group()

    def _set_aux(self, weight: float, heads: int) -> None:
        """Aux-head curves for `heads` heads, and the training loss labelled as the weighted sum it is."""
        self.aux_weight, self.aux_heads = weight, max(heads, self.aux_heads if weight else 0)
        for spec in aux_specs(self.aux_heads):
            if spec.name not in self.series:
                self._add_live_series(spec)
        label = "train loss (epoch)"
        if self.aux_heads and weight:
            label = f"train loss = {total_loss_formula(weight, self.aux_heads)} (epoch)"
        self.view.rename(self.curves["train_loss"], label)
        self.specs["train_loss"] = self.specs["train_loss"]._replace(label=label)
        self._update_live_group()

    def merge_history(self, curves: RunCurves) -> None:
        """Put a run's stored points in front of its live ones (a resumed run: the curves are the whole run).
        Ignored unless `curves` is the live run's."""
        if curves.run_id != self.run_id:
            return
        history = history_points(curves)
        if history.aux_heads:
            self._set_aux(history.aux_weight, history.aux_heads)
        for name, (xs, ys) in history.points.items():
            if name in self.series:
                self.series[name].prepend(xs, ys)
        if self._tracker.last is None:   # no live step yet: the smoothing carries on from the history
            self._tracker = history.tracker
        self._update_live_group()
        self._stale.update(self.plots)

    def follow(self, curves: RunCurves | None) -> None:
        """Show a run trained by another process as the main curves, from its stored metrics (None: stop showing
        it). Ignored while a run of this app is live."""
        if self.own_live:
            return
        if curves is None:
            if self.followed is not None:
                self.reset()
                self.followed = self.run_id = None
                self.run_label = ""
                self.seriesList.set_group(LIVE_GROUP, "", [])
                self._listed = False
            return
        self.reset()
        self.followed = self.run_id = curves.run_id
        self.run_label = f"{curves.label} (live, another process)" if curves.running else curves.label
        self.aux_heads = 0
        self._set_aux(curves.aux_weight, 0)
        if curves.running:
            self.view.start_live(max(1, curves.epochs or 1))
        else:
            self.view.end_live()
        self.merge_history(curves)

    def point_count(self, name: str) -> int:
        """Points buffered for one series (e.g. "val_accuracy")."""
        return self.series[name].size

    def _update_live_group(self) -> None:
        order = list(TITLES)
        specs = sorted(self.specs.values(), key=lambda spec: order.index(spec.plot))   # stable: the loss first
        entries = [SeriesEntry(spec.name, spec.label, spec.colour, *self.view.entry_style(spec.style))
                   for spec in specs if not is_aux_metric(spec.name) or self.aux_heads]
        self.seriesList.set_group(LIVE_GROUP, self.run_label or "This run", entries, position=0)
        self._listed = True

    # ----- drawing -----------------------------------------------------------------------------------------
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
        for name, spec in self.specs.items():
            if spec.plot == attr:
                series = self.series[name]
                self.curves[name].setData(series.x, series.y)
        self.view.fit(attr)
        self._stale.discard(attr)

    # ----- overlays ----------------------------------------------------------------------------------------
    def set_overlays(self, runs: list[RunCurves]) -> None:
        """Overlay stored runs' epoch curves (dashed validation, dotted training, dash-dot aux heads), one colour
        per run, each run a group of the series list named by its label."""
        groups = overlay_curves(self.view, runs, self.seriesList.hidden)
        for group in self._overlay_groups:
            if group not in groups:
                self.seriesList.set_group(group, "", [])
        for position, (group, (label, entries)) in enumerate(groups.items(), start=1):
            self.seriesList.set_group(group, label, entries, position=position)
        self._overlay_groups = list(groups)
        self._stale.update(self.plots)

    def overlay_count(self) -> int:
        return self.view.overlay_count()

    # ----- export ------------------------------------------------------------------------------------------
    def export_png(self, plot: str, path: Path | str, width: int = 1200) -> Path:
        """Render one plot ("lossPlot", "accuracyPlot", "lrPlot", "throughputPlot") to a PNG file."""
        from pyqtgraph.exporters import ImageExporter

        self.redraw()
        exporter = ImageExporter(self.plots[plot].getPlotItem())
        exporter.parameters()["width"] = int(width)
        path = Path(path)
        exporter.export(str(path))
        return path

    def export_svg(self, plot: str | None, path: Path | str) -> Path:
        """One plot as SVG through pyqtgraph's SVGExporter, or (plot None) the four plots as shown."""
        self.redraw()
        path = Path(path)
        if plot is not None:
            export_plot_svg(self.plots[plot], path)
        else:
            export_grid_svg(self.plots.values(), self.grid, path)
        if not path.is_file():
            raise OSError(f"Could not write {path}; choose a folder you can write to.")
        return path

    def export_csv(self, path: Path | str) -> Path:
        """Write every buffered point (a resumed run's history included) as rows of series, x (epoch), value
        (accuracies as 0..1 fractions)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["series", "epoch", "value"])
            for name, series in self.series.items():
                scale = 0.01 if name in PERCENT_SERIES else 1.0
                for x, y in zip(series.x.tolist(), series.y.tolist()):
                    writer.writerow([name, f"{x:.6g}", repr(scale * y)])
        return path
