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


def test_palette_change_recolours_plots_and_the_series_list(plots: LivePlots, qtbot) -> None:
    from PySide6.QtGui import QColor, QPalette

    assert all(w.getPlotItem().legend is None for w in plots.plots.values())  # no legend inside a plot
    palette = QPalette(plots.palette())
    palette.setColor(QPalette.ColorRole.Base, QColor("#123456"))
    palette.setColor(QPalette.ColorRole.WindowText, QColor("#fedcba"))
    plots.setPalette(palette)  # sends PaletteChange
    assert plots.lossPlot.backgroundBrush().color().name() == "#123456"
    assert plots.lossPlot.getPlotItem().getAxis("left").textPen().color().name() == "#fedcba"
    assert plots.seriesList.palette().color(QPalette.ColorRole.WindowText).name() == "#fedcba"


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


def test_no_axis_is_rescaled_to_si_units(plots: LivePlots) -> None:
    # "epoch (x0.001)" with ticks 80-140, "loss (x1e+09)": every axis reads in the user's own units.
    for name, widget in plots.plots.items():
        for side, (lo, hi) in (("left", (1e8, 3e9)), ("bottom", (0.08, 0.14)), ("left", (1e-4, 9e-4))):
            axis = widget.getPlotItem().getAxis(side)
            axis.setRange(lo, hi)
            assert axis.autoSIPrefixScale == 1.0, (name, side)
            assert "(x" not in axis.labelString(), (name, side, axis.labelString())
    assert plots.lossPlot.getPlotItem().getAxis("bottom").labelText == "epoch"


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


def aux_epoch(epoch: int, main: float, aux: tuple[float, float], val: float, val_aux: tuple[float, float],
              weight: float = 0.3) -> EpochMetrics:
    """A GoogLeNet epoch: the training loss is main + weight * sum(aux); validation loss is the main head's."""
    return EpochMetrics(run_id="g", epoch=epoch, epochs=3, train_loss=main + weight * sum(aux), train_accuracy=0.5,
                        val_loss=val, val_accuracy=0.5, lr=0.1, images_per_second=1.0, epoch_seconds=1.0,
                        best_val_accuracy=0.5, is_best=True, time=0.0, train_main_loss=main,
                        train_aux_losses=aux, val_aux_losses=val_aux, aux_weight=weight)


def test_googlenet_aux_losses_are_separate_series_and_the_total_is_labelled(plots: LivePlots) -> None:
    plots.add_epoch(aux_epoch(1, 2.0, (2.2, 2.3), 1.9, (2.1, 2.2)))
    plots.add_epoch(aux_epoch(2, 1.5, (1.8, 1.9), 1.4, (1.7, 1.8)))
    plots.redraw()
    for name in ("train_main_loss", "train_aux1_loss", "train_aux2_loss", "val_aux1_loss", "val_aux2_loss"):
        assert plots.point_count(name) == 2, name
    assert plots.curves["train_aux2_loss"].getData()[1].tolist() == [2.3, 1.9]
    assert plots.curves["train_loss"].getData()[1].tolist() == pytest.approx([2.0 + 0.3 * 4.5, 1.5 + 0.3 * 3.7])
    label = plots.curves["train_loss"].name()
    assert "main + 0.3·(aux1 + aux2)" in label
    listed = {text for _key, text, shown in plots.seriesList.entries() if shown}
    assert any("main + 0.3·(aux1 + aux2)" in text for text in listed)
    assert {"train main loss (epoch)", "train aux1 loss (epoch)"} <= listed
    # A run without aux heads: the plain label and no aux entries in the list.
    plots.reset()
    plots.add_epoch(epoch_event(1, train_loss=1.0, val_loss=1.0))
    plots.start_run(2)
    assert plots.point_count("train_aux1_loss") == 0


def test_stored_googlenet_overlay_shows_its_aux_losses(plots: LivePlots) -> None:
    metrics = {"train_loss": [(1, 0, 3.4), (2, 0, 2.6)], "val_loss": [(1, 0, 1.9), (2, 0, 1.5)],
               "train_main_loss": [(1, 0, 2.0), (2, 0, 1.5)], "train_aux1_loss": [(1, 0, 2.2), (2, 0, 1.8)],
               "train_aux2_loss": [(1, 0, 2.4), (2, 0, 1.9)], "val_aux1_loss": [(1, 0, 2.1), (2, 0, 1.7)],
               "val_aux2_loss": [(1, 0, 2.2), (2, 0, 1.8)], "val_accuracy": [(1, 0, 0.4), (2, 0, 0.6)]}
    plots.set_overlays([RunCurves("g", "googlenet", metrics, aux_weight=0.3)])
    names = {c.name() for c in plots.lossPlot.getPlotItem().listDataItems()}
    assert {"googlenet train aux1 loss", "googlenet val aux2 loss", "googlenet train main loss"} <= names
    assert "googlenet train loss = main + 0.3·(aux1 + aux2)" in names
    assert plots.overlay_count() == 8
    labels = [text for key, text, _shown in plots.seriesList.entries("overlay:g")]
    assert labels[0] == "train loss = main + 0.3·(aux1 + aux2)" and "val aux2 loss" in labels


def test_resumed_run_history_comes_before_its_live_points(plots: LivePlots, tmp_path: Path) -> None:
    from workbench.training.events import FitStart

    start = FitStart(run_id="r", arch="lenet", dataset="digits", device="cpu", epochs=4, start_epoch=2,
                     batches_per_epoch=10, train_size=320, val_size=32, num_classes=10, amp="off",
                     channels_last=False)
    plots.begin_run(start)
    plots.add_step(step(epoch=3, batch=5, batches=10, loss=0.5, accuracy=0.8, lr=0.01, images_per_second=9.0))
    # The store's rows of epochs 1-2 (running means at global steps; one epoch row each) arrive after the
    # first live step (they are read off the GUI thread).
    stored = {"step_loss": [(1, 5, 2.0), (1, 10, 1.5), (2, 15, 1.0), (2, 20, 0.9)],
              "step_accuracy": [(1, 5, 0.2), (1, 10, 0.3), (2, 15, 0.6), (2, 20, 0.65)],
              "step_lr": [(1, 5, 0.1), (1, 10, 0.1), (2, 15, 0.05), (2, 20, 0.05)],
              "val_accuracy": [(1, 0, 0.5), (2, 0, 0.7)], "train_loss": [(1, 0, 1.5), (2, 0, 0.9)]}
    plots.merge_history(RunCurves("other", "x", stored))  # another run's history is ignored
    assert plots.point_count("val_accuracy") == 0
    plots.merge_history(RunCurves("r", "lenet", stored, epochs=4, batches_per_epoch=10))
    plots.add_epoch(epoch_event(epoch=3, val_accuracy=0.8, train_loss=0.6))
    plots.redraw()
    x, y = plots.curves["val_accuracy"].getData()
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == pytest.approx([50.0, 70.0, 80.0])
    x, _ = plots.curves["lr"].getData()
    assert x.tolist() == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5])   # history, then the live step at epoch 2.5
    raw_x, raw = plots.curves["step_loss"].getData()
    assert raw_x[0] == pytest.approx(0.5) and raw[1] == pytest.approx((1.5 * 10 - 2.0 * 5) / 5)
    # CSV export from the live buffers has every stored step too.
    rows = list(csv.reader(plots.export_csv(tmp_path / "m.csv").open()))
    assert sum(1 for r in rows if r[0] == "step_accuracy") == 5
    assert [float(r[1]) for r in rows if r[0] == "val_accuracy"] == [1.0, 2.0, 3.0]


def test_history_without_a_known_batch_count_estimates_it() -> None:
    from workbench.ui.plot_data import estimate_batches_per_epoch, history_points

    rows = [(1, 20, 1.0), (1, 45, 0.9), (2, 70, 0.8), (2, 99, 0.7), (3, 140, 0.6)]
    assert estimate_batches_per_epoch(rows) == 50   # step 99 is in epoch 2: B >= 49.5
    history = history_points(RunCurves("r", "r", {"step_loss": rows}))
    xs = history.points["step_loss"][0]
    assert all(b > a for a, b in itertools.pairwise(xs)) and 0 < xs[0] < 1 and 2 < xs[-1] <= 3
