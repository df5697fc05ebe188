"""LivePlots: buffering, redraw-only-when-dirty, overlays, PNG and CSV export."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from workbench.training.events import EpochMetrics, StepMetrics
from workbench.ui.plots import LivePlots, RunCurves, Series


def step(epoch: int = 1, batch: int = 1, batches: int = 1, loss: float = 1.0, accuracy: float = float("nan"),
         lr: float = float("nan"), images_per_second: float = float("nan")) -> StepMetrics:
    """A StepMetrics event as the trainer sends it (NaN: a value the test does not care about)."""
    return StepMetrics(run_id="r", epoch=epoch, step=batch, batch=batch, batches=batches, loss=loss,
                       accuracy=accuracy, lr=lr, images_per_second=images_per_second, eta_seconds=0.0, time=0.0)


def epoch_event(epoch: int = 1, train_loss: float = float("nan"), val_loss: float = float("nan"),
                train_accuracy: float = float("nan"), val_accuracy: float = float("nan")) -> EpochMetrics:
    """An EpochMetrics event (NaN: not drawn)."""
    return EpochMetrics(run_id="r", epoch=epoch, epochs=epoch, train_loss=train_loss,
                        train_accuracy=train_accuracy, val_loss=val_loss, val_accuracy=val_accuracy, lr=0.1,
                        images_per_second=1.0, epoch_seconds=1.0, best_val_accuracy=val_accuracy, is_best=True,
                        time=0.0)


@pytest.fixture
def plots(qtbot) -> LivePlots:
    widget = LivePlots()
    qtbot.addWidget(widget)
    return widget


def _feed(plots: LivePlots, epochs: int = 2, batches: int = 4) -> None:
    for epoch in range(1, epochs + 1):
        for batch in range(1, batches + 1):
            plots.add_step(step(epoch=epoch, batch=batch, batches=batches, loss=2.0 / batch,
                            accuracy=batch / batches, lr=0.1, images_per_second=500.0))
        plots.add_epoch(epoch_event(epoch=epoch, train_loss=1.0 / epoch, val_loss=1.2 / epoch,
                         train_accuracy=0.5 * epoch, val_accuracy=0.4 * epoch))


def test_series_grows_past_its_capacity() -> None:
    s = Series(capacity=2)
    for i in range(10):
        s.append(i, i * i)
    assert s.size == 10 and s.x.tolist() == list(range(10)) and s.y[-1] == 81


def test_object_names_and_curves_created_once(plots: LivePlots) -> None:
    assert plots.lossPlot.objectName() == "lossPlot" and plots.accuracyPlot.objectName() == "accuracyPlot"
    curves = dict(plots.curves)
    items_before = len(plots.lossPlot.getPlotItem().listDataItems())
    _feed(plots)
    plots.redraw()
    plots.reset()
    _feed(plots, epochs=1)
    plots.redraw()
    assert plots.curves == curves
    assert len(plots.lossPlot.getPlotItem().listDataItems()) == items_before


def test_redraws_only_when_dirty(plots: LivePlots, qtbot) -> None:
    plots.redraw()
    count = plots.redraw_count
    assert plots.redraw() is False and plots.redraw_count == count
    _feed(plots, epochs=1)
    assert plots.dirty
    qtbot.waitUntil(lambda: plots.redraw_count == count + 1, timeout=2000)  # the 20 Hz timer did it
    assert not plots.dirty
    with qtbot.assertNotEmitted(plots.timer.timeout, wait=0):
        pass
    # Several timer ticks with nothing new: no further redraw.
    ticks = []
    plots.timer.timeout.connect(lambda: ticks.append(1))
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=2000)
    assert plots.redraw_count == count + 1
    x, y = plots.curves["val_accuracy"].getData()
    assert list(x) == [1.0] and list(y) == [pytest.approx(40.0)]  # accuracy is plotted in percent


def test_step_x_is_fractional_epoch_and_loss_is_smoothed(plots: LivePlots) -> None:
    _feed(plots, epochs=2, batches=4)
    plots.redraw()
    x, raw = plots.curves["step_loss"].getData()
    _, ema = plots.curves["step_loss_ema"].getData()
    assert x[0] == pytest.approx(0.25) and x[-1] == pytest.approx(2.0)
    assert ema[0] == raw[0] and plots.point_count("step_loss") == 8
    assert plots.point_count("train_loss") == 2 and plots.point_count("lr") == 8


def _running_means(losses: list[float], every: int) -> list[tuple[int, float]]:
    """What the engine sends: (batches so far, mean of the epoch so far) every `every` batches."""
    return [(b, sum(losses[:b]) / b) for b in range(every, len(losses) + 1, every)]


def test_step_loss_is_rebuilt_from_running_means_without_epoch_sawtooth(plots: LivePlots) -> None:
    # Per-batch losses fall steadily across two epochs; the engine reports epoch running means, which
    # jump back up at the start of epoch 2. The plotted interval means must keep falling.
    per_batch = [3.0 - 0.1 * i for i in range(24)]
    batches = 12
    expected = []
    for epoch in (1, 2):
        losses = per_batch[(epoch - 1) * batches: epoch * batches]
        for b, mean in _running_means(losses, every=3):
            plots.add_step(step(epoch=epoch, batch=b, batches=batches, loss=mean, accuracy=0.5,
                            lr=0.1, images_per_second=1.0))
            expected.append(sum(losses[b - 3: b]) / 3)
    plots.redraw()
    _, raw = plots.curves["step_loss"].getData()
    _, ema = plots.curves["step_loss_ema"].getData()
    assert list(raw) == pytest.approx(expected)
    assert all(b < a for a, b in itertools.pairwise(raw))            # no jump back up at the epoch start
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(ema))   # the smoothed curve falls too
    assert "running mean" in plots.curves["step_accuracy"].name()
    assert "raw" not in plots.curves["step_loss"].name()


def test_accuracy_is_plotted_in_percent(plots: LivePlots) -> None:
    _feed(plots, epochs=1)
    plots.set_overlays([RunCurves("r", "old", {"val_accuracy": [(1, 10, 0.25)]})])
    plots.redraw()
    assert plots.series["step_accuracy"].y[-1] == pytest.approx(100.0)
    assert plots.accuracyPlot.getPlotItem().getAxis("left").labelText == "accuracy (%)"
    overlay = [c for c in plots.accuracyPlot.getPlotItem().listDataItems() if c.name() == "old val accuracy"]
    assert list(overlay[0].getData()[1]) == [pytest.approx(25.0)]


def test_palette_change_recolours_plots_and_legends(plots: LivePlots, qtbot) -> None:
    from PySide6.QtGui import QColor, QPalette

    legend = plots.lossPlot.getPlotItem().legend
    assert legend.opts["brush"].color().alpha() < 255
    text = plots.palette().color(QPalette.ColorRole.WindowText).name()
    assert all(f"color:{text}" in label.item.toHtml() for _s, label in legend.items)  # not pyqtgraph's grey  # semi-transparent legend background
    palette = QPalette(plots.palette())
    palette.setColor(QPalette.ColorRole.Base, QColor("#123456"))
    palette.setColor(QPalette.ColorRole.WindowText, QColor("#fedcba"))
    plots.setPalette(palette)  # sends PaletteChange
    assert plots.lossPlot.backgroundBrush().color().name() == "#123456"
    assert plots.lossPlot.getPlotItem().getAxis("left").textPen().color().name() == "#fedcba"
    assert legend.opts["brush"].color().name() == "#123456" and legend.opts["brush"].color().alpha() < 255
    assert all("color:#fedcba" in label.item.toHtml() for _s, label in legend.items)


def test_non_finite_values_are_skipped(plots: LivePlots) -> None:
    plots.add_step(step(epoch=1, batch=1, batches=2, loss=float("nan"), lr=0.1))
    plots.add_epoch(epoch_event(epoch=1, train_loss=float("inf"), val_accuracy=0.5))
    assert plots.point_count("step_loss") == 0 and plots.point_count("train_loss") == 0
    assert plots.point_count("val_accuracy") == 1 and plots.point_count("lr") == 1


def test_overlays_are_added_and_replaced(plots: LivePlots) -> None:
    runs = [RunCurves("a", "lenet a", {"val_accuracy": [(1, 10, 0.5), (2, 20, 0.7)],
                                        "train_loss": [(1, 10, 1.0), (2, 20, 0.5)]}),
            RunCurves("b", "lenet b", {"val_accuracy": [(1, 10, 0.6)]})]
    plots.set_overlays(runs)
    assert plots.overlay_count() == 3
    plots.set_overlays([])
    assert plots.overlay_count() == 0
    assert len(plots.accuracyPlot.getPlotItem().listDataItems()) == 3  # just the live curves


def test_export_png_and_csv(plots: LivePlots, tmp_path: Path) -> None:
    _feed(plots)
    png = plots.export_png("lossPlot", tmp_path / "loss.png", width=400)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PySide6.QtGui import QImage

    assert QImage(str(png)).width() == 400
    rows = list(csv.reader((tmp_path / "m.csv").open() if plots.export_csv(tmp_path / "m.csv") else []))
    assert rows[0] == ["series", "epoch", "value"]
    val = [r for r in rows[1:] if r[0] == "val_accuracy"]
    # The CSV keeps the engine's units (accuracy 0..1) although the plot shows percent.
    assert [(float(r[1]), float(r[2])) for r in val] == [(1.0, pytest.approx(0.4)), (2.0, pytest.approx(0.8))]
    assert sum(1 for r in rows[1:] if r[0] == "step_loss") == 8


def test_fraction_axes_show_plain_values(plots: LivePlots) -> None:
    # Accuracy (0..1) and learning rate must not be rescaled to "(x0.001)" units.
    for name in ("accuracyPlot", "lrPlot"):
        axis = plots.plots[name].getPlotItem().getAxis("left")
        axis.setRange(0.1, 0.9)
        assert axis.autoSIPrefixScale == 1.0
        assert "x0.001" not in axis.labelString()


def test_grid_follows_the_palette_text_colour(plots: LivePlots) -> None:
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette(plots.palette())
    palette.setColor(QPalette.ColorRole.WindowText, QColor(10, 200, 30))
    palette.setColor(QPalette.ColorRole.Text, QColor(10, 200, 30))
    plots.setPalette(palette)
    plots.apply_palette()
    for grid in plots.grids.values():
        colour = grid.opts["pen"].color()
        assert (colour.red(), colour.green(), colour.blue()) == (10, 200, 30)
        assert 0 < colour.alpha() < 255


def test_timer_ticks_repaint_one_plot_at_a_time(plots: LivePlots) -> None:
    # Painting all four plots in one tick blocks the event loop for one long frame; ticks take turns.
    plots.timer.stop()
    plots.add_step(step(epoch=1, batch=3, batches=10, loss=2.0, accuracy=0.2, lr=0.1,
                    images_per_second=100.0))
    assert plots.stale_plots() == {"lossPlot", "accuracyPlot", "lrPlot", "throughputPlot"}
    count = plots.redraw_count
    seen = []
    for remaining in (3, 2, 1, 0):
        before = plots.stale_plots()
        plots._redraw_next()
        assert len(plots.stale_plots()) == remaining
        seen.extend(before - plots.stale_plots())
    assert sorted(seen) == sorted(plots.plots) and plots.redraw_count == count + 1
    assert plots.curves["lr"].getData()[1].tolist() == [0.1]
