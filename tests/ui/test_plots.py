"""LivePlots: buffering, redraw-only-when-dirty, overlays, PNG and CSV export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from workbench.ui.plots import LivePlots, Series


@pytest.fixture
def plots(qtbot) -> LivePlots:
    widget = LivePlots()
    qtbot.addWidget(widget)
    return widget


def _feed(plots: LivePlots, epochs: int = 2, batches: int = 4) -> None:
    for epoch in range(1, epochs + 1):
        for batch in range(1, batches + 1):
            plots.add_step({"epoch": epoch, "batch": batch, "batches": batches, "loss": 2.0 / batch,
                            "accuracy": batch / batches, "lr": 0.1, "images_per_second": 500.0})
        plots.add_epoch({"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.2 / epoch,
                         "train_accuracy": 0.5 * epoch, "val_accuracy": 0.4 * epoch})


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
    assert list(x) == [1.0] and list(y) == [pytest.approx(0.4)]


def test_step_x_is_fractional_epoch_and_loss_is_smoothed(plots: LivePlots) -> None:
    _feed(plots, epochs=2, batches=4)
    plots.redraw()
    x, raw = plots.curves["step_loss"].getData()
    _, ema = plots.curves["step_loss_ema"].getData()
    assert x[0] == pytest.approx(0.25) and x[-1] == pytest.approx(2.0)
    assert ema[0] == raw[0] and ema[-1] > raw[-1]  # smoothing lags behind the falling raw loss
    assert plots.point_count("train_loss") == 2 and plots.point_count("lr") == 8


def test_non_finite_values_are_skipped(plots: LivePlots) -> None:
    plots.add_step({"epoch": 1, "batch": 1, "batches": 2, "loss": float("nan"), "lr": 0.1})
    plots.add_epoch({"epoch": 1, "train_loss": float("inf"), "val_loss": None, "val_accuracy": 0.5})
    assert plots.point_count("step_loss") == 0 and plots.point_count("train_loss") == 0
    assert plots.point_count("val_accuracy") == 1 and plots.point_count("lr") == 1


def test_overlays_are_added_and_replaced(plots: LivePlots) -> None:
    runs = {"a": {"label": "lenet a", "metrics": {"val_accuracy": [(1, 10, 0.5), (2, 20, 0.7)],
                                                   "train_loss": [(1, 10, 1.0), (2, 20, 0.5)]}},
            "b": {"label": "lenet b", "metrics": {"val_accuracy": [(1, 10, 0.6)]}}}
    plots.set_overlays(runs)
    assert plots.overlay_count() == 3
    plots.set_overlays({})
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
    assert [(float(r[1]), float(r[2])) for r in val] == [(1.0, pytest.approx(0.4)), (2.0, pytest.approx(0.8))]
    assert sum(1 for r in rows[1:] if r[0] == "step_loss") == 8


def test_fraction_axes_show_plain_values(plots: LivePlots) -> None:
    # Accuracy (0..1) and learning rate must not be rescaled to "(x0.001)" units.
    for name in ("accuracyPlot", "lrPlot"):
        axis = plots.plots[name].getPlotItem().getAxis("left")
        axis.setRange(0.1, 0.9)
        assert axis.autoSIPrefixScale == 1.0
        assert "x0.001" not in axis.labelString()
