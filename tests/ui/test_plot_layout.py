"""The training curves as a reader meets them: the legend (series list) never covers a plot's data area, overlaid
runs are told apart by name, and a diverged loss leaves the rest readable (clipped and marked, or log scale)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QRect, QSettings

from tests.ui.test_plots import epoch_event, step
from workbench.ui.plots import LivePlots, RunCurves


def _global_rect(widget: Any) -> QRect:
    return QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size())


def _data_area(plot: pg.PlotWidget) -> QRect:
    """Where a plot draws its data (its view box), in global coordinates."""
    vb = plot.getPlotItem().getViewBox()
    polygon = plot.mapFromScene(vb.sceneBoundingRect())
    rect = polygon.boundingRect()
    return QRect(plot.viewport().mapToGlobal(rect.topLeft()), rect.size())


def assert_legend_clear_of_data(plots: LivePlots) -> None:
    """No legend item inside any plot, and the series list outside every plot's data area."""
    listed = _global_rect(plots.seriesList)
    assert plots.seriesList.isVisible() and listed.width() > 50 and listed.height() > 50
    for name, widget in plots.plots.items():
        scene_items = widget.getPlotItem().scene().items()
        assert not any(isinstance(item, pg.LegendItem) for item in scene_items), name
        area = _data_area(widget)
        assert area.width() > 40 and area.height() > 40, (name, area)
        assert not listed.intersects(area), (name, listed, area)


def two_runs() -> list[RunCurves]:
    def run(run_id: str, label: str, lr: float, scale: float) -> RunCurves:
        return RunCurves(run_id, label, {
            "train_loss": [(e, 0, scale * 2.0 / e) for e in range(1, 6)],
            "val_loss": [(e, 0, scale * 2.2 / e) for e in range(1, 6)],
            "train_accuracy": [(e, 0, 1 - 0.5 / e) for e in range(1, 6)],
            "val_accuracy": [(e, 0, 1 - 0.6 / e) for e in range(1, 6)],
            "lr": [(e, 0, lr / e) for e in range(1, 6)]})
    return [run("a", "lenet, lr 0.1", 0.1, 1.0), run("b", "lenet, lr 0.01", 0.01, 1.3)]


def _feed(plots: LivePlots, epochs: int = 3, batches: int = 10) -> None:
    for epoch in range(1, epochs + 1):
        for batch in range(1, batches + 1):
            plots.add_step(step(epoch=epoch, batch=batch, batches=batches, loss=2.0 / (epoch + batch / batches),
                                accuracy=0.3 + 0.2 * epoch, lr=0.05, images_per_second=900.0))
        plots.add_epoch(epoch_event(epoch=epoch, train_loss=1.0 / epoch, val_loss=1.1 / epoch,
                                    train_accuracy=0.3 + 0.2 * epoch, val_accuracy=0.25 + 0.2 * epoch))


# (370, 573): the curves tab of the main window at 1024x640 (measured; the window itself: the slow test below).
@pytest.mark.parametrize("size", [(1100, 700), (686, 573), (370, 573)])
def test_series_list_never_covers_the_data(qtbot: Any, size: tuple[int, int]) -> None:
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(*size)
    plots.show()
    qtbot.waitExposed(plots)
    _feed(plots)
    plots.set_overlays(two_runs())
    plots.redraw()
    assert_legend_clear_of_data(plots)
    # Beside the plots when there is room, below them when the tab is narrow.
    wide = size[0] >= 900
    grid, listed = _global_rect(plots.grid), _global_rect(plots.seriesList)
    assert (listed.left() >= grid.right()) if wide else (listed.top() >= grid.bottom())
    # Overlaid runs are told apart by name: one group per run, headed by its label.
    assert [plots.seriesList.group_label(g) for g in plots.seriesList.groups()] == \
        ["This run", "lenet, lr 0.1", "lenet, lr 0.01"]


def test_series_can_be_hidden_and_shown(qtbot: Any) -> None:
    plots = LivePlots()
    qtbot.addWidget(plots)
    _feed(plots)
    plots.set_overlays(two_runs())
    plots.redraw()
    with qtbot.waitSignal(plots.seriesList.toggled):
        plots.seriesList.set_shown("a:val_loss", False)
    assert not plots.view.curves["a:val_loss"][1].isVisible()
    plots.set_overlays(two_runs())          # a refresh of the overlays keeps what the user hid
    assert not plots.view.curves["a:val_loss"][1].isVisible()
    plots.seriesList.set_shown("val_loss", False)
    assert not plots.curves["val_loss"].isVisible()
    plots.seriesList.set_shown("val_loss", True)
    assert plots.curves["val_loss"].isVisible()


@pytest.mark.slow
def test_curves_tab_at_1024x640_with_two_overlaid_runs(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    from workbench.ui.main_window import MainWindow

    window = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(window)
    window.resize(1024, 640)
    window.show()
    window.tabs.setCurrentIndex(2)
    qtbot.waitExposed(window)
    plots = window.plots
    assert plots is not None and plots.isVisible()
    _feed(plots)
    plots.set_overlays(two_runs())
    plots.redraw()
    qtbot.wait(1)
    assert_legend_clear_of_data(plots)
    window.close()


def _diverging_loss(plots: LivePlots) -> None:
    plots.start_run(6)
    for epoch, loss in enumerate((2.3, 1.8, 1.5, 1.2, 4.0e8, 3.2e9), start=1):
        for batch in (5, 10):
            plots.add_step(step(epoch=epoch, batch=batch, batches=10, loss=loss, accuracy=0.5, lr=0.1,
                                images_per_second=1.0))
        plots.add_epoch(epoch_event(epoch=epoch, train_loss=loss, val_loss=loss * 1.1))
    plots.end_run()


def test_a_normal_loss_is_shown_whole(plots_widget: LivePlots) -> None:
    plots = plots_widget
    plots.start_run(3)
    _feed(plots)
    plots.end_run()
    _x0, x1, y0, y1 = plots.view.ranges["lossPlot"]
    top = max(float(plots.series[n].y.max()) for n in ("step_loss", "train_loss", "val_loss"))
    assert y0 == 0.0 and top <= y1 < 1.5 * top and x1 >= 3
    assert plots.view.marked_points() == [] and "clipped" not in plots.lossPlot.getPlotItem().titleLabel.text


def test_a_diverged_loss_is_clipped_and_marked(plots_widget: LivePlots) -> None:
    plots = plots_widget
    _diverging_loss(plots)
    _x0, _x1, y0, y1 = plots.view.ranges["lossPlot"]
    assert y0 == 0.0 and 2.3 <= y1 < 5.0          # the readable part fills the plot
    marked = plots.view.marked_points()
    assert marked and min(marked) >= 4.5 and max(marked) == 6.0   # where the loss left the range
    assert "clipped" in plots.lossPlot.getPlotItem().titleLabel.text
    note = plots.clipNote.text()
    assert plots.clipNote.isVisibleTo(plots) and "diverged at epoch 4.5" in note
    assert "3.52e+09" in note and "Log-scale" in note   # the highest value: the validation loss
    # The accuracy plot is never clipped.
    assert "accuracyPlot" not in plots.view.clipped


def test_log_scale_shows_a_diverged_loss_whole(plots_widget: LivePlots, qtbot: Any) -> None:
    plots = plots_widget
    _diverging_loss(plots)
    plots.lossLogScale.setChecked(True)
    plots.redraw()
    _x0, _x1, y0, y1 = plots.view.ranges["lossPlot"]
    assert y0 < math.log10(1.2) and y1 > math.log10(3.2e9)   # log10 view coordinates: everything shows
    assert plots.view.marked_points() == [] and "clipped" not in plots.lossPlot.getPlotItem().titleLabel.text
    assert not plots.clipNote.isVisibleTo(plots) and plots.lossPlot.getPlotItem().getAxis("left").logMode
    plots.lossLogScale.setChecked(False)
    plots.redraw()
    assert plots.view.ranges["lossPlot"][3] < 5.0


def test_robust_range_rules() -> None:
    import numpy as np

    from workbench.ui.plot_data import robust_y_range

    falling = np.array([2.3 * math.exp(-k / 10) for k in range(100)])   # 2.3 -> 0.0001: a normal run
    full = robust_y_range([falling], floor_zero=True)
    assert full is not None and not full.clipped and full.hi >= 2.3
    quick = np.concatenate([np.linspace(2.3, 0.2, 5), np.full(95, 0.05)])   # a very quick drop is not divergence
    assert not robust_y_range([quick]).clipped
    rising = np.linspace(0.1, 0.5, 100)          # well above its start, but so is most of the curve: not clipped
    assert not robust_y_range([rising]).clipped
    diverged = np.concatenate([falling, [5e4, 1e9]])
    clipped = robust_y_range([diverged], floor_zero=True)
    assert clipped.clipped and clipped.peak == 1e9 and clipped.hi < 3.0
    assert robust_y_range([np.array([np.nan, np.inf])]) is None


@pytest.fixture
def plots_widget(qtbot: Any) -> LivePlots:
    widget = LivePlots()
    qtbot.addWidget(widget)
    return widget
