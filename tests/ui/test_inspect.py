"""Inspecting architectures in the real main window: list, options form, layer tree, chart, parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QTableView, QTreeView, QTreeWidget

from workbench.models import list_models, summarize
from workbench.ui.main_window import MainWindow

NATIVE = [n for n in list_models() if not n.startswith("tv:")]
TORCHVISION_SAMPLE = ["tv:resnet18", "tv:mobilenet_v3_small", "tv:squeezenet1_1"]


@pytest.fixture
def window(qtbot: Any, workspace: Path, settings: Any) -> MainWindow:
    w = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(w)
    if w.worker.is_busy():  # the initial selection's summary
        qtbot.waitSignal(w.summaryShown, timeout=30_000).wait()
    yield w
    w.close()


def select(qtbot: Any, w: MainWindow, arch: str) -> Any:
    if w.arch_panel.current_arch() == arch and not w.worker.is_busy():
        return w.summary_view.summary
    with qtbot.waitSignal(w.summaryShown, timeout=60_000) as shown:
        assert w.arch_panel.select(arch)
    return shown.args[0]


def tree_rows(model: Any, parent: QModelIndex = QModelIndex()) -> list[Any]:
    rows = []
    for r in range(model.rowCount(parent)):
        index = model.index(r, 0, parent)
        rows.append(model.layer(index))
        rows += tree_rows(model, index)
    return rows


def test_list_is_grouped_by_family_with_search(window: MainWindow) -> None:
    tree = window.findChild(QTreeWidget, "architectureList")
    families = [tree.topLevelItem(i).text(0).split("  ")[0] for i in range(tree.topLevelItemCount())]
    assert families == ["Classic", "VGG", "NiN", "GoogLeNet", "ResNet", "torchvision"]
    classic = tree.topLevelItem(0)
    assert [classic.child(i).text(0) for i in range(classic.childCount())] == ["lenet", "alexnet"]
    window.arch_panel.search.setText("resnet1")
    visible = window.arch_panel.visible_names()
    assert "resnet18" in visible and "tv:resnet18" in visible and "vgg16" not in visible
    assert tree.topLevelItem(1).isHidden()  # the VGG family has no match
    window.arch_panel.search.clear()
    assert len(window.arch_panel.visible_names()) == len(list_models())


def test_ctrl_f_focuses_search(qtbot: Any, window: MainWindow) -> None:
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.summary_view.tree.setFocus()
    window.find_action.trigger()
    qtbot.waitUntil(lambda: window.arch_panel.search.hasFocus(), timeout=5000)
    assert window.find_action.shortcut().toString() == "Ctrl+F"


def test_tree_and_totals_match_the_summary(qtbot: Any, window: MainWindow) -> None:
    for arch in NATIVE + TORCHVISION_SAMPLE:
        check_arch(qtbot, window, arch)


def check_arch(qtbot: Any, window: MainWindow, arch: str) -> None:
    shown = select(qtbot, window, arch)
    sel = window.arch_panel.selection()
    expected = summarize(arch, input_shape=sel.input_shape, num_classes=sel.num_classes, options=sel.options)
    assert shown.arch == arch
    assert tree_rows(window.summary_view.model) == list(expected.layers)
    assert shown.totals == expected.totals
    totals = window.findChild(QLabel, "summaryTotals").text()
    assert f"{expected.totals.total_params:,}" in totals
    table = window.findChild(QTableView, "parameterTable")
    assert table.model().rowCount() == len(expected.parameters)
    assert window.findChild(QTreeView, "layerTree").model().rowCount() == 1  # the model itself is the root


def test_input_follows_dataset_and_can_be_overridden(qtbot: Any, window: MainWindow) -> None:
    panel = window.arch_panel
    panel.set_dataset({"name": "gray", "channels": 1, "height": 8, "width": 8, "num_classes": 7})
    qtbot.waitSignal(window.summaryShown, timeout=30_000).wait()
    s = select(qtbot, window, "vgg")
    assert s.input_shape[-3] == 1 and s.num_classes == 7
    with qtbot.waitSignal(window.summaryShown, timeout=30_000) as shown:
        panel.override.setChecked(True)
        panel.shape_spins[1].setValue(64)
        panel.shape_spins[2].setValue(64)
        panel.classes_spin.setValue(3)
        qtbot.waitUntil(lambda: panel.selection().input_shape == (1, 64, 64) and panel.selection().num_classes == 3)
    qtbot.waitUntil(lambda: window.summary_view.summary.num_classes == 3, timeout=30_000)
    assert list(window.summary_view.summary.input_shape[-3:]) == [1, 64, 64]
    assert shown.args[0].arch == "vgg"


def test_invalid_option_disables_train(qtbot: Any, window: MainWindow) -> None:
    select(qtbot, window, "vgg")
    panel = window.arch_panel
    train = window.findChild(QPushButton, "trainButton")
    with qtbot.waitSignal(panel.selectionChanged, timeout=5000,
                          check_params_cb=lambda sel: not sel.valid) as changed:
        panel.set_option_text("block_info", "((0, 64),)")
    sel = changed.args[0]
    assert sel.invalid_field == "block_info" and "block_info" in sel.reason
    field = panel.field_widget("block_info")
    assert field.property("invalid") is True and sel.reason in field.toolTip()
    assert not train.isEnabled() and sel.reason in train.toolTip()
    # Not even a Python literal: also invalid, same field.
    with qtbot.waitSignal(panel.selectionChanged, timeout=5000, check_params_cb=lambda s: not s.valid) as changed:
        panel.set_option_text("block_info", "((1, 64), (1,")
    assert changed.args[0].invalid_field == "block_info" and not train.isEnabled()
    with qtbot.waitSignal(window.summaryShown, timeout=30_000) as shown:
        panel.set_option_text("block_info", "((1, 16), (1, 32))")
    assert field.property("invalid") is False
    assert [len([r for r in shown.args[0].layers if r.type == "Conv2d"])] == [2]
    qtbot.waitUntil(lambda: "block_info" not in train.toolTip(), timeout=5000)


def test_an_architectures_options_form_is_kept_while_another_is_shown(qtbot: Any, window: MainWindow) -> None:
    select(qtbot, window, "vgg")
    panel = window.arch_panel
    field = panel.field_widget("block_info")
    with qtbot.waitSignal(window.summaryShown, timeout=30_000):
        panel.set_option_text("block_info", "((1, 16), (1, 32))")
    select(qtbot, window, "lenet")
    assert not field.isVisibleTo(panel) and "block_info" not in [f.spec.name for f in panel.options.fields]
    assert panel.field_widget("activation").isVisibleTo(panel)
    assert panel.save_state()["options"]["vgg"]["block_info"] == "((1, 16), (1, 32))"   # kept for the settings
    select(qtbot, window, "vgg")
    assert panel.field_widget("block_info") is field and field.isVisibleTo(panel)   # the same row, shown again
    assert panel.selection().options["block_info"] == ((1, 16), (1, 32))          # with what was typed
    with qtbot.waitSignal(panel.selectionChanged, timeout=5000) as restored:       # settings read back meanwhile
        panel.restore_state({"arch": "vgg", "options": {"vgg": {"block_info": "((1, 8),)"}}})
    assert restored.args[0].options["block_info"] == ((1, 8),)
    assert panel.field_widget("block_info").isVisibleTo(panel)
    assert panel.options.texts()["vgg"]["block_info"] == "((1, 8),)"


def test_engine_error_shows_in_summary_area_not_a_crash(qtbot: Any, window: MainWindow) -> None:
    select(qtbot, window, "alexnet")
    panel = window.arch_panel
    with qtbot.waitSignal(window.worker.failed, timeout=30_000) as failed:
        panel.override.setChecked(True)
        for spin, v in zip(panel.shape_spins, (3, 8, 8)):
            spin.setValue(v)
        qtbot.waitUntil(lambda: panel.selection().input_shape == (3, 8, 8))
    message = window.findChild(QLabel, "summaryMessage")
    assert message.isVisibleTo(window) and failed.args[1] in message.text()
    assert window.findChild(QPushButton, "trainButton").isEnabled() is False
    assert window.summary_view.is_stale() and window.param_table.is_pending()  # alexnet's tables: not the selection's
    with qtbot.waitSignal(window.summaryShown, timeout=30_000):  # still usable
        panel.override.setChecked(False)
    assert not message.isVisibleTo(window)
    assert not window.summary_view.is_stale() and not window.param_table.is_pending()
    assert window.findChild(QPushButton, "trainButton").isEnabled() is window.training_panel.is_ready()


def test_clicking_a_bar_selects_the_layer_row(qtbot: Any, window: MainWindow) -> None:
    window.show()
    qtbot.waitExposed(window)
    summary = select(qtbot, window, "lenet")
    qtbot.waitUntil(window.summary_view.chart_is_current, timeout=5000)
    chart = window.summary_view.chart
    ids = chart.layer_ids()
    assert ids == [r.index for r in summary.layers if r.is_leaf and (r.params or r.mult_adds)]
    target = ids[2]
    plot = chart.params_plot
    vb = plot.getPlotItem().getViewBox()
    height = summary.layers[target].params
    scene = vb.mapViewToScene(QPointF(2, height / 2 if height else 0))
    pos = plot.mapFromScene(scene)
    QTest.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    qtbot.waitUntil(lambda: window.summary_view.model.layer(window.summary_view.tree.currentIndex()) is not None,
                    timeout=5000)
    assert window.summary_view.model.layer(window.summary_view.tree.currentIndex()).index == target


def test_parameter_table_sorts_and_filters(qtbot: Any, window: MainWindow) -> None:
    summary = select(qtbot, window, "resnet18")
    table = window.findChild(QTableView, "parameterTable")
    proxy = table.model()
    table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    counts = [proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1).count for r in range(proxy.rowCount())]
    assert counts == sorted((p.count for p in summary.parameters), reverse=True)
    assert proxy.headerData(0, Qt.Orientation.Horizontal) == "Qualified name"
    window.findChild(QLineEdit, "parameterFilter").setText("bn")
    names = window.param_table.visible_names()
    assert names and all("bn" in n.lower() or "bn" in p.layer.lower()
                          for n, p in zip(names, [proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1)
                                                  for r in range(proxy.rowCount())]))
    assert len(names) < len(summary.parameters)
    assert proxy.index(0, 1).data()  # shape column filled
    assert proxy.index(0, 3).data() in ("yes", "no")


def test_switching_back_is_served_from_the_cache(qtbot: Any, window: MainWindow) -> None:
    from workbench.models.summary_cache import session_cache
    from workbench.models.summary_process import shared_processes

    session_cache().clear()
    worker, helpers = window.worker, shared_processes()
    computed, answered = worker.computations, helpers.answered
    first = select(qtbot, window, "tv:squeezenet1_1")   # not shipped: computed once, in a helper process
    assert worker.computations == computed + 1 and helpers.answered == answered + 1
    assert first == summarize("tv:squeezenet1_1", input_shape=first.input_shape, num_classes=first.num_classes)
    select(qtbot, window, "lenet")                      # shipped: no computation
    hits = worker.cache_hits
    greyed: list[bool] = []
    window.summary_view.staleChanged.connect(greyed.append)
    with qtbot.waitSignal(window.summaryShown, timeout=1000) as shown:
        window.arch_panel.select("tv:squeezenet1_1")     # sent a turn later, answered from the cache at once
    assert worker.computations == computed + 1 and worker.cache_hits == hits + 1
    assert greyed == []                                  # a cached answer never greys the table, not even briefly
    assert shown.args[0] == first and not window.summary_view.is_stale()


def test_a_click_in_the_list_is_two_short_turns_and_the_panel_learns_the_selection_first(
        qtbot: Any, window: MainWindow) -> None:
    select(qtbot, window, "lenet")
    panel = window.arch_panel
    sent: list[str] = []
    seen_by_panel: list[tuple[str, str]] = []
    panel.selectionChanged.connect(lambda sel: sent.append(sel.arch))
    window.summaryShown.connect(lambda s: seen_by_panel.append((s.arch, window.training_panel.selection.arch)))
    panel.select("resnet18")
    assert panel.current_arch() == "resnet18" and panel.field_widget("residual").isVisibleTo(panel)  # the form
    assert sent == [] and window.training_panel.selection.arch == "lenet"    # ... the rest a turn later
    with qtbot.waitSignal(window.summaryShown, timeout=30_000):
        pass
    assert sent == ["resnet18"] and seen_by_panel == [("resnet18", "resnet18")]
    panel.select("vgg")
    assert panel.send_now().arch == "vgg" and sent[-1] == "vgg"              # asked for: sent at once


def test_a_failure_arriving_while_a_click_waits_is_the_previous_selections(qtbot: Any, window: MainWindow) -> None:
    select(qtbot, window, "lenet")
    panel, training = window.arch_panel, window.training_panel
    panel.select("resnet18")                                  # a click, its selection still to be sent ...
    window.worker.failed.emit(window.worker.latest_id, "lenet: the input is too small.", "", True)  # ... lenet's
    assert training.selection.arch == "lenet" and not training.selection.valid
    assert panel.selection().arch == "lenet"
    with qtbot.waitSignal(window.summaryShown, timeout=30_000) as shown:
        pass                                                  # the click goes on as usual
    assert shown.args[0].arch == "resnet18" and training.selection.arch == "resnet18" and training.selection.valid


def test_table_is_greyed_while_a_new_summary_computes(qtbot: Any, window: MainWindow) -> None:
    select(qtbot, window, "lenet")
    panel, view = window.arch_panel, window.summary_view
    panel.override.setChecked(True)                      # the same input and classes: from the cache
    assert not view.is_stale()
    with qtbot.waitSignal(window.summaryShown, timeout=60_000, check_params_cb=lambda s: s.num_classes == 7):
        panel.classes_spin.setValue(7)                   # a LeNet with 7 classes is in no cache
        assert window.worker.is_busy() and view.is_stale()
        assert view.pending.isVisibleTo(window) and "Computing the summary of lenet" in view.pending.text()
        assert view.model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is not None
        assert view.summary.num_classes == 10            # the old table stays on screen meanwhile
        params = window.param_table                      # ... and so do the old parameters, greyed
        assert params.is_pending() and "out of date" in params.count.text()
        assert params.table.model().index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is not None
        last = params.table.model().rowCount() - 1
        assert params.table.model().index(last, 1).data() == "10"   # LeNet's last bias: still 10 outputs
    assert not view.is_stale() and not view.pending.isVisibleTo(window) and view.summary.num_classes == 7
    assert not window.param_table.is_pending() and "out of date" not in window.param_table.count.text()
    assert window.param_table.table.model().index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is None
