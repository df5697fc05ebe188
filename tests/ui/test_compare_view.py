"""The Compare view: rows equal the engine's summaries, ticking/unticking and options update the table and
charts, and Train all trains the ticked architectures as one experiment that fills the accuracy column."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from tests.ui.conftest import TrainingBench
from workbench.ui.compare_view import CompareView

WAIT_MS = 60_000


def catalog() -> list:
    from workbench.models import get_spec, list_models

    return [get_spec(n) for n in list_models() if not n.startswith("tv:")]


@pytest.fixture
def view(qtbot, workspace: Path):
    widget = CompareView(workspace)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    yield widget
    assert widget.shutdown(10_000)


def fill(qtbot, view: CompareView, ticked: tuple[str, ...]) -> None:
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.set_catalog(catalog(), ticked=ticked)


def expected_row(arch: str, options: dict | None = None, shape=None, classes=None):
    from workbench.analysis.compare import row_from_summary
    from workbench.models import summarize

    return row_from_summary(summarize(arch, input_shape=shape, num_classes=classes, options=options))


def test_rows_equal_the_summaries(qtbot, view) -> None:
    fill(qtbot, view, ("lenet", "vgg_cifar"))
    assert view.objectName() == "compareView"
    rows = {o.entry.arch: o.row for o in view.outcomes()}
    for arch in ("lenet", "vgg_cifar"):
        want, got = expected_row(arch), rows[arch]
        for key in ("params", "mult_adds", "params_mb", "activations_mb", "conv_layers", "linear_layers",
                    "receptive_field", "input", "classes"):
            assert getattr(got, key) == getattr(want, key), (arch, key)
    assert rows["vgg_cifar"].params == 9_750_922    # the lecture's figure at 3×32×32 with 10 classes
    params = view.table.column_texts("Params")
    assert params == [f"{rows['lenet'].params:,} (61.7 k)", f"{rows['vgg_cifar'].params:,} (9.75 M)"]
    assert view.charts.values("params") == [rows["lenet"].params, rows["vgg_cifar"].params]
    assert view.table.column_texts("Best val acc") == ["–", "–"]   # no runs in this workspace


def test_the_data_set_sets_channels_and_classes(qtbot, view) -> None:
    fill(qtbot, view, ("vgg_cifar",))
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.set_dataset({"name": "digits", "channels": 1, "num_classes": 10})
    (outcome,) = view.outcomes()
    assert outcome.row.input == [1, 32, 32]
    assert outcome.row.params == expected_row("vgg_cifar", shape=(1, 32, 32), classes=10).params


def test_ticking_and_unticking_update_table_and_charts(qtbot, view) -> None:
    fill(qtbot, view, ("lenet",))
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.tick("nin")
    assert [o.entry.arch for o in view.outcomes()] == ["lenet", "nin"] and view.table.rowCount() == 2
    assert len(view.charts.values("mult_adds")) == 2
    item = view.picker.items()["lenet"]
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        item.setCheckState(0, Qt.CheckState.Unchecked)   # as a click on the box
    assert view.ticked() == ["nin"] and view.table.rowCount() == 1
    assert view.charts.values("params") == [expected_row("nin").params]


def test_options_change_the_row_and_bad_options_say_why(qtbot, view) -> None:
    fill(qtbot, view, ("resnet20",))
    view.show_options("resnet20")
    assert view.picker.optionsBox.isVisible() and view.picker.optionsBox.title() == "Options of resnet20"
    from workbench.models.summary_cache import session_cache
    from workbench.models.summary_process import shared_processes

    session_cache().clear()
    answered = shared_processes().answered
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.set_option("resnet20", "residual", "False")
    assert shared_processes().answered == answered + 1       # summarised in the helper process, not in the view's thread
    (outcome,) = view.outcomes()
    assert outcome.row.params == expected_row("resnet20", {"residual": False}).params
    assert view.table.item(0, 0).text() == "resnet20 (residual=False)"
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.set_option("resnet20", "arch", "((0, 16),)")
    (outcome,) = view.outcomes()
    assert outcome.row is None and "option 'arch' of resnet20" in outcome.error
    assert view.table.item(0, 1).text() == outcome.error
    assert not view.trainAllButton.isEnabled() and "resnet20" in view.trainAllButton.toolTip()


def test_a_summary_process_failure_costs_only_its_own_row(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    from unittest.mock import Mock

    from workbench.models import summarize, summary_process
    from workbench.ui.compare_rows import CompareEntry, compare_task

    def helper(arch: str, **kwargs):
        if arch == "nin":
            raise summary_process.SummaryProcessError("The process computing the summary of nin stopped unexpectedly.")
        return summarize(arch, **kwargs)

    monkeypatch.setattr(summary_process, "summarize_in_helper", helper)
    sink = Mock(cancelled=Mock(return_value=False))
    task = compare_task([CompareEntry("lenet"), CompareEntry("nin")], channels=1, classes=10, workspace=workspace)
    lenet, nin = task(sink).outcomes
    assert lenet.row is not None and lenet.row.params == expected_row("lenet", shape=(1, 28, 28), classes=10).params
    assert nin.row is None and "stopped unexpectedly" in nin.error


def test_train_all_runs_an_experiment_and_fills_the_accuracy_column(qtbot, workspace, lenet_digits_panel) -> None:
    from workbench.runs import RunStore
    from workbench.ui.analysis_window import attach_views
    from workbench.ui.summary_view import SummaryView

    bench: TrainingBench = lenet_digits_panel(epochs=1, max_batches=2)
    host, layers = QWidget(), SummaryView()
    qtbot.addWidget(host)
    qtbot.addWidget(layers)
    views, _router = attach_views(host, bench.panel, bench.plots, bench.runs, layers.layerSelected, workspace)
    view = views.compare
    qtbot.addWidget(view)
    qtbot.addWidget(views.analysis)
    try:
        fill(qtbot, view, ("lenet",))
        with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
            relu = view.add_variant("lenet")
        with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
            view.set_option(relu, "activation", "'relu'")
        assert view.table.column_texts("Architecture") == ["lenet", "lenet (activation='relu')"]
        assert view.trainAllButton.isEnabled(), view.trainAllButton.toolTip()
        finished: list[object] = []
        view.runFinished.connect(finished.append)
        with qtbot.waitSignal(view.trainingChanged, timeout=WAIT_MS):
            assert view.train_all()
        assert not bench.panel.isEnabled() and not view.trainAllButton.isEnabled()
        bench.panel.resume_run("any-run")                   # e.g. the runs list's Resume: refused, not started
        assert not bench.panel.is_training() and "Train all" in bench.panel.statusLabel.text()
        bench.panel.start_training()                        # Training → Train (Ctrl+Return): refused as well
        assert not bench.panel.is_training() and "Train all" in bench.panel.statusLabel.text()
        bench.panel.set_architecture(bench.panel.selection)  # a click in the architecture list meanwhile
        assert not bench.panel.trainButton.isEnabledTo(bench.panel)   # Train itself, not only the greyed panel
        assert view.stopAllButton.isEnabled()
        with qtbot.waitSignal(view.trainingChanged, timeout=300_000) as ended:
            pass
        assert ended.args == [False] and bench.panel.isEnabled()
        assert bench.panel.trainButton.isEnabled(), bench.panel.trainButton.toolTip()  # Train works again at once
        qtbot.waitUntil(lambda: not view.task.is_busy(), timeout=WAIT_MS)
        (status,) = view.experiment.statuses     # one experiment: lenet varying its activation
        assert [v.status for v in status.variants] == ["completed", "completed"], view.status.text()
        assert sorted(v.varied["activation"] for v in status.variants) == ["relu", "sigmoid"]
        rows = {o.entry.options.get("activation", "sigmoid"): o.row for o in view.outcomes()}
        with RunStore(workspace) as store:
            runs = store.list_runs()
        assert len(runs) == 2 and {r.experiment_id for r in runs} == {status.experiment_id}
        for run in runs:
            row = rows[run.arch_options["activation"]]
            assert row.runs == 1 and row.best_val_accuracy == run.best_val_accuracy
        assert "–" not in view.table.column_texts("Best val acc")
        assert sorted(r.run_id for r in finished) == sorted(r.run_id for r in runs)   # FitResult per run
        assert {r.run_id for r in bench.runs.records} == {r.run_id for r in runs}   # the runs list followed
        assert view.trainAllButton.isEnabled()
        last = max(runs, key=lambda r: r.created_at).run_id
        with qtbot.waitSignal(views.analysis.runShown, timeout=WAIT_MS) as shown:
            views.analysis.show()    # a finished run waits for the Analysis tab to be shown
        assert shown.args == [last]
    finally:
        assert views.analysis.shutdown(10_000) and view.shutdown(10_000)


def test_train_all_waits_for_the_panels_run(qtbot, workspace, lenet_digits_panel, view) -> None:
    bench: TrainingBench = lenet_digits_panel(epochs=1, max_batches=2)
    view.attach_training(bench.panel)
    fill(qtbot, view, ("lenet",))
    assert view.trainAllButton.isEnabled()
    with qtbot.waitSignal(bench.panel.runStarted, timeout=WAIT_MS):
        bench.panel.start_training()
    assert not view.trainAllButton.isEnabled()
    assert "training run is in progress" in view.trainAllButton.toolTip()
    assert not view.train_all() and not view.is_training()
    with qtbot.waitSignal(bench.panel.runFinished, timeout=WAIT_MS):
        pass
    assert view.trainAllButton.isEnabled()


def test_experiment_specs_group_single_architectures_and_vary_variants() -> None:
    from workbench.errors import WorkbenchError
    from workbench.ui.compare_experiment import experiment_specs
    from workbench.ui.compare_rows import CompareEntry

    entries = [CompareEntry("lenet", {}), CompareEntry("resnet20", {}), CompareEntry("nin", {"head": "fc"}),
               CompareEntry("resnet20", {"residual": False})]
    single, twins = experiment_specs(entries, dataset="digits", data_root=None, options={"epochs": 1})
    assert single.archs == ("lenet", "nin") and single.arch_options["nin"]["head"] == "fc"
    assert twins.archs == ("resnet20",) and twins.vary == (("residual", (True, False)),)
    assert "residual" not in twins.arch_options["resnet20"] and twins.train_options == {"epochs": 1}
    grid = [CompareEntry("lenet", {"activation": a, "pool": p}) for a in ("relu", "sigmoid") for p in ("avg", "max")]
    (spec,) = experiment_specs(grid, dataset="digits", data_root=None, options={})
    assert spec.vary == (("activation", ("relu", "sigmoid")), ("pool", ("avg", "max")))
    with pytest.raises(WorkbenchError, match="every combination"):
        experiment_specs(grid[:2] + grid[3:], dataset="digits", data_root=None, options={})


def test_variants_are_rows_of_their_own(qtbot, view) -> None:
    fill(qtbot, view, ("resnet20",))
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        twin = view.add_variant("resnet20")
    assert twin == "resnet20#2" and view.ticked() == ["resnet20", twin]
    assert view.picker.optionsBox.title() == "Options of resnet20, variant 2"
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.set_option(twin, "shortcut", "'projection'")
    labels = view.table.column_texts("Architecture")
    assert labels == ["resnet20", "resnet20 (shortcut='projection')"]
    rows = [o.row for o in view.outcomes()]
    assert rows[0].params == expected_row("resnet20").params
    assert rows[1].params == expected_row("resnet20", {"shortcut": "projection"}).params > rows[0].params
    with qtbot.waitSignal(view.rowsShown, timeout=WAIT_MS):
        view.tick(twin, False)
    assert view.table.rowCount() == 1


def test_chart_grid_lines_survive_new_rows(qtbot) -> None:
    from workbench.analysis.compare import row_from_summary
    from workbench.models import summarize
    from workbench.ui.compare_charts import CompareCharts

    charts = CompareCharts()
    qtbot.addWidget(charts)
    charts.resize(700, 600)
    charts.show()
    for archs in (["lenet", "resnet18"], ["nin", "lenet", "vgg_cifar"]):
        charts.set_rows([row_from_summary(summarize(a)) for a in archs], archs)
    plot = charts.plots["params"]
    grid = charts.grids[list(charts.plots).index("params")]
    shown = [line for line in grid.lines if line.isVisible()]
    assert shown and all(line.scene() is plot.scene() for line in shown)   # still in the plot, not cleared away
    assert [line.value() for line in shown] == grid.values()


def test_count_charts_read_as_people_count(qtbot) -> None:
    from workbench.ui.compare_charts import CompareCharts

    charts = CompareCharts()
    qtbot.addWidget(charts)
    params = charts.plots["params"].getAxis("left")
    assert params.tickStrings([0.0, 5e6, 1e7], 1.0, 5e6) == ["0", "5 M", "10 M"]         # not "1e+07"
    assert charts.plots["train_images_per_second"].getAxis("left").tickStrings([0.2, 1.0, 999.5], 1.0, 0.2) == [
        "0.2", "1", "999.5"]
