"""The Layers tab's views on their own: the lecture's columns (input shape, receptive field and jump), the notes
under the totals, the out-of-date marking, bar charts labelled and hovered by layer, the launch preview."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QPainter

from workbench.models import summarize
from workbench.ui.layer_tree import COLUMNS
from workbench.ui.summary_preview import find_preview
from workbench.ui.summary_view import SummaryView


@pytest.fixture
def view(qtbot: Any) -> SummaryView:
    v = SummaryView()
    qtbot.addWidget(v)
    v.resize(1000, 700)
    return v


def _cell(view: SummaryView, layer_name: str, column: str) -> str:
    row = next(r for r in view.model.layers() if r.name == layer_name)
    return view.model.index_of(row.index, COLUMNS.index(column)).data()


def test_lenet_receptive_fields_and_input_shapes(view: SummaryView) -> None:
    view.set_summary(summarize("lenet"))
    # By hand: conv 5x5 sees 5 pixels; pool 2x2/2 adds 1 (jump 2); conv 5x5 adds 4 x 2 = 8 -> 14; pool adds 1 x 2.
    assert [_cell(view, n, "RF (jump)") for n in ("model.0", "model.2", "model.3", "model.5")] == [
        "5 (1)", "6 (2)", "14 (2)", "16 (4)"]
    assert _cell(view, "model.3", "Input shape") == "6×14×14" and _cell(view, "model.3", "Output shape") == "16×10×10"
    assert _cell(view, "model.7", "RF (jump)") == "32"  # after the flatten: no grid, no jump
    index = view.model.index_of(next(r.index for r in view.model.layers() if r.name == "model.3"),
                                COLUMNS.index("RF (jump)"))
    assert "14×14 input pixels" in index.data(Qt.ItemDataRole.ToolTipRole)
    assert view.model.headerData(COLUMNS.index("RF (jump)"), Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)


def test_notes_under_the_totals_where_the_slide_differs(qtbot: Any, view: SummaryView) -> None:
    view.show()
    qtbot.waitExposed(view)
    view.set_summary(summarize("vgg16", input_shape=(3, 224, 224), num_classes=1000))
    assert view.notes.isVisibleTo(view)
    assert "138,423,208" in view.notes.text() and "138,357,544" in view.notes.text()
    qtbot.waitUntil(lambda: view.notes.height() > 0 and view.notes.isVisible(), timeout=5000)

    def top(widget: Any) -> int:
        return widget.mapTo(view, QPoint(0, 0)).y()

    assert top(view.totals) + view.totals.height() <= top(view.notes) < top(view.tree)  # right under the totals
    view.set_summary(summarize("lenet", input_shape=(1, 28, 28), num_classes=10))
    assert not view.notes.isVisibleTo(view) and view.notes.text() == ""


def test_table_is_marked_out_of_date_while_its_replacement_computes(qtbot: Any, view: SummaryView) -> None:
    view.attach_chart()
    view.set_summary(summarize("lenet"))
    first = view.model.index(0, 0, QModelIndex())
    assert not view.is_stale() and first.data(Qt.ItemDataRole.ForegroundRole) is None
    view.set_pending("vgg16")
    assert view.is_stale()
    qtbot.waitUntil(view.chart.is_stale, timeout=5000)  # the charts dim too once it takes a moment
    assert view.pending.isVisibleTo(view) and "Computing the summary of vgg16" in view.pending.text()
    assert first.data(Qt.ItemDataRole.ForegroundRole) is not None  # greyed
    view.set_summary(summarize("vgg16"))
    assert not view.is_stale() and not view.pending.isVisibleTo(view)
    qtbot.waitUntil(view.chart_is_current, timeout=5000)
    assert not view.chart.is_stale()
    view.set_pending("lenet")
    view.set_error("The options of lenet are not valid.")
    assert view.is_stale() and not view.pending.isVisibleTo(view)  # the table is not the selection's


def _drawn_axis_labels(axis: Any) -> list[str]:
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in texts if text]


def _lenet_charted(qtbot: Any, view: SummaryView) -> Any:
    """LeNet's summary shown with its charts, on screen and drawn (the charts follow the tree a turn later)."""
    view.attach_chart()
    summary = summarize("lenet")
    view.set_summary(summary)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(view.chart_is_current, timeout=5000)
    return summary


def test_bar_chart_axis_is_labelled_with_the_layer_names(qtbot: Any, view: SummaryView) -> None:
    summary = _lenet_charted(qtbot, view)
    leaves = [r for r in summary.layers if r.is_leaf and (r.params or r.mult_adds)]
    chart = view.chart
    assert chart.tick_labels() == [r.name for r in leaves] == ["model.0", "model.3", "model.7", "model.9",
                                                              "model.11"]
    assert _drawn_axis_labels(chart.axis) == chart.tick_labels()  # all five fit: every bar is named
    many = summarize("resnet110")
    view.set_summary(many)
    qtbot.waitUntil(view.chart_is_current, timeout=5000)
    drawn = _drawn_axis_labels(chart.axis)
    assert drawn and set(drawn) <= set(chart.tick_labels()) and len(drawn) < len(chart.tick_labels())  # thinned


def test_grid_lines_sit_at_the_count_axis_ticks_and_follow_a_new_summary(qtbot: Any, view: SummaryView) -> None:
    _lenet_charted(qtbot, view)
    chart = view.chart
    for plot, grid in zip((chart.params_plot, chart.macs_plot), chart._grids):
        item = plot.getPlotItem()
        assert not item.getAxis("left").grid          # not the axis's own grid (5x dearer to paint)
        shown = [line.value() for line in grid.lines if line.isVisible()]
        assert shown == grid.values() and len(shown) >= 2 and shown[0] == 0
        (step,) = {b - a for a, b in itertools.pairwise(shown)}   # evenly spaced at a round step
        assert round(step / 10 ** math.floor(math.log10(step)), 6) in (1, 2, 2.5, 5)
        assert all(item.getViewBox().viewRange()[1][0] <= v <= item.getViewBox().viewRange()[1][1] for v in shown)
        assert grid.lines[0].pen.color().alpha() < 255  # faint
    before = [line.value() for line in chart._grids[0].lines if line.isVisible()]
    view.set_summary(summarize("resnet18"))           # millions of parameters, not thousands
    qtbot.waitUntil(view.chart_is_current, timeout=5000)
    after = [line.value() for line in chart._grids[0].lines if line.isVisible()]
    assert after == chart._grids[0].values() and max(after) > 10 * max(before)


def test_hovering_a_bar_names_its_layer(qtbot: Any, view: SummaryView) -> None:
    summary = _lenet_charted(qtbot, view)
    chart = view.chart
    target = next(r for r in summary.layers if r.name == "model.3")
    for plot in (chart.params_plot, chart.macs_plot):
        vb = plot.getPlotItem().getViewBox()
        over_bar_1 = QPointF(vb.mapViewToScene(QPointF(1, 0)).x(), vb.sceneBoundingRect().center().y())
        text = chart.hover(plot, over_bar_1)
        assert plot.toolTip() == text
        assert "model.3" in text and "Conv2d" in text and "2,416 parameters" in text and f"{target.mult_adds:,}" in text
        assert chart.hover(plot, QPointF(-1e6, -1e6)) == "" and plot.toolTip() == ""


def test_launch_preview_is_the_shipped_summary_as_plain_data(view: SummaryView) -> None:
    preview = find_preview({})  # a first run: LeNet on the digits
    real = summarize("lenet", input_shape=(1, 28, 28), num_classes=10)
    assert preview is not None and preview.arch == "lenet"
    assert [vars(r) for r in preview.layers] == [dataclasses.asdict(r) for r in real.layers]
    assert [vars(p) for p in preview.parameters] == [dataclasses.asdict(p) for p in real.parameters]
    assert vars(preview.totals) == dataclasses.asdict(real.totals) and preview.notes == real.notes
    view.set_summary(preview)
    assert view.model.rowCount() == 1 and "61,706" in view.totals.text()
    saved = {"arch": "vgg16", "input": [3, 224, 224], "classes": 1000,
             "options": {"vgg16": {"classifier_width": "4096", "dropout": "0.5"}}}
    vgg = find_preview(saved)
    assert vgg is not None and vgg.totals.total_params == 138_357_544 and vgg.notes
    edited = dict(saved, options={"vgg16": {"classifier_width": "256"}})
    assert find_preview(edited) is None                       # an edited option: the engine computes it
    assert find_preview(dict(saved, classes=7)) is None        # other classes: not shipped
