"""The runs table knows the hyper-parameters: columns, sorting, "show only what differs", experiments grouped,
parameter counts filled in off the GUI thread, overlays labelled by what differs, renaming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from workbench.runs import RunStore
from workbench.ui.run_labels import difference_labels
from workbench.ui.runs_panel import RunsPanel
from workbench.ui.runs_table import KEYS

BASE = {"epochs": 2, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "schedule": "cosine", "augment": False,
        "amp": "off", "device": "cpu"}


def add_run(store: RunStore, arch: str = "lenet", options: dict | None = None, best: float = 0.5,
            experiment: str | None = None, name: str = "", **config: Any) -> str:
    """A completed run with one epoch of metrics (and what the table reads from its record)."""
    rid = store.create_run(arch=arch, arch_options=options or {}, dataset="digits", config={**BASE, **config},
                           device="cpu", name=name, experiment_id=experiment, input_shape=(1, 28, 28),
                           num_classes=10)
    store.log_metrics(rid, [(1, 0, "val_accuracy", best, 0.0), (1, 0, "train_loss", 1.0, 0.0),
                            (1, 0, "lr", config.get("lr", 0.1), 0.0)])
    store.update_run(rid, status="completed", best_val_accuracy=best, epochs_completed=2)
    return rid


@pytest.fixture
def panel(qtbot: Any, workspace: Path) -> RunsPanel:
    runs = RunsPanel(workspace)
    qtbot.addWidget(runs)
    yield runs
    runs.close_store()


def _column(runs: RunsPanel, key: str) -> list[str]:
    table = runs.runsList
    return [table.item(r, KEYS.index(key)).text() for r in range(table.rowCount())]


def test_columns_show_the_hyper_parameters_and_sort(panel: RunsPanel) -> None:
    store = panel.store
    add_run(store, lr=0.1, best=0.9)
    add_run(store, lr=0.01, best=0.7, batch_size=64)
    add_run(store, lr=0.05, best=0.8, optimizer="adam")
    panel.refresh()
    table = panel.runsList
    titles = [panel.model.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert titles[:3] == ["Status", "Architecture", "Data set"]
    for title in ("Options", "Epochs", "Batch", "Optimizer", "Learning rate", "Schedule", "Augmentation", "AMP",
                  "Device", "Parameters", "Best val acc", "Time", "Experiment"):
        assert title in titles, title
    table.sortByColumn(KEYS.index("lr"), Qt.SortOrder.AscendingOrder)
    assert _column(panel, "lr") == ["0.01", "0.05", "0.1"]          # numerically, not as text
    table.sortByColumn(KEYS.index("best_val_accuracy"), Qt.SortOrder.DescendingOrder)
    assert _column(panel, "best_val_accuracy") == ["90.00 %", "80.00 %", "70.00 %"]
    assert _column(panel, "optimizer") == ["sgd", "adam", "sgd"] and _column(panel, "epochs") == ["2/2"] * 3
    assert set(_column(panel, "batch_size")) == {"32", "64"} and _column(panel, "augment") == ["off"] * 3


def test_show_only_what_differs(panel: RunsPanel) -> None:
    store = panel.store
    a = add_run(store, lr=0.1, best=0.9)
    b = add_run(store, lr=0.01, best=0.9)
    add_run(store, arch="vgg_cifar", lr=0.01)
    panel.refresh()
    assert not panel.differsOnly.isEnabled()
    panel.select_runs([a])
    assert not panel.differsOnly.isEnabled()
    panel.select_runs([a, b])
    assert panel.differsOnly.isEnabled()
    panel.differsOnly.setChecked(True)
    shown = panel.visible_columns()
    assert "lr" in shown and {"status", "arch", "name"} <= set(shown)
    assert not {"batch_size", "optimizer", "dataset", "best_val_accuracy", "options"} & set(shown)
    panel.differsOnly.setChecked(False)
    assert panel.visible_columns() == list(KEYS)


def test_experiments_are_grouped_and_overlaid_together(panel: RunsPanel) -> None:
    from workbench.runs.experiments import save_experiment

    store = panel.store
    save_experiment(store, "exp-1", name="lr sweep", spec={})
    e1 = add_run(store, lr=0.1, experiment="exp-1")
    e2 = add_run(store, lr=0.01, experiment="exp-1")
    lone = add_run(store, lr=0.5)
    panel.refresh()
    assert panel.runsList.rowCount() == 3 and set(panel.model.groups) == {"exp-1"}
    assert panel.runsList.rootIsDecorated()
    group = panel.model.groups["exp-1"]
    assert group[0].rowCount() == 2 and group[KEYS.index("status")].text().startswith("experiment: 2 runs")
    assert group[KEYS.index("name")].text() == "lr sweep" and group[KEYS.index("experiment")].text() == "exp-1"
    overlays: list[list] = []
    panel.overlayChanged.connect(overlays.append)
    panel.select_experiment("exp-1")
    assert set(panel.selected_run_ids()) == {e1, e2}
    assert {c.run_id for c in overlays[-1]} == {e1, e2}
    assert {c.label for c in overlays[-1]} == {"lenet, lr 0.1", "lenet, lr 0.01"}
    # Sorting keeps the group together: its runs stay under it whatever the column.
    panel.runsList.sortByColumn(KEYS.index("lr"), Qt.SortOrder.AscendingOrder)
    order = [panel.runsList.item(r, KEYS.index("run_id")).text() for r in range(3)]
    assert abs(order.index(e1) - order.index(e2)) == 1 and lone in order
    assert panel.runsList.group_run_ids(panel.runsList.proxy.index(0 if order[0] in (e1, e2) else 1, 0)) in \
        ([e1, e2], [e2, e1])


def test_parameter_counts_fill_in_when_ready(panel: RunsPanel, qtbot: Any) -> None:
    add_run(panel.store)
    panel.refresh()
    assert _column(panel, "parameters") == ["-"]      # not counted in the GUI thread
    with qtbot.waitSignal(panel.params_runner.finished, timeout=30_000):
        panel.show()                                   # counted while the table is on screen
    assert _column(panel, "parameters") == ["61,706"]  # LeNet-5 on 1x28x28, 10 classes
    panel.runsList.sortByColumn(KEYS.index("parameters"), Qt.SortOrder.AscendingOrder)


def test_rename_labels_the_curves(panel: RunsPanel, qtbot: Any) -> None:
    store = panel.store
    a, b = add_run(store, lr=0.1), add_run(store, lr=0.01)
    panel.refresh()
    overlays: list[list] = []
    panel.overlayChanged.connect(overlays.append)
    panel.select_runs([a, b])
    assert {c.run_id: c.label for c in overlays[-1]} == {a: "lenet, lr 0.1", b: "lenet, lr 0.01"}
    assert panel.renameButton.isEnabled() is False          # one run at a time
    assert panel.rename_run(a, "  baseline ")
    assert store.get_run(a).name == "baseline" and set(panel.selected_run_ids()) == {a, b}
    assert {c.run_id: c.label for c in overlays[-1]}[a] == "baseline"   # the overlay follows the new name
    # Editing the Name cell renames as well.
    row = next(r for r in range(panel.runsList.rowCount()) if panel.runsList.item(r, KEYS.index("run_id"))
               .text() == b)
    panel.runsList.item(row, KEYS.index("name")).setText("small lr")
    assert store.get_run(b).name == "small lr"
    assert {c.run_id: c.label for c in overlays[-1]}[b] == "small lr"


def test_labels_by_what_differs(workspace: Path) -> None:
    with RunStore(workspace) as store:
        lenet_a = add_run(store, lr=0.1)
        lenet_b = add_run(store, lr=0.01)
        plain = add_run(store, arch="resnet20", options={"residual": False})
        residual = add_run(store, arch="resnet20", options={"residual": True})
        named = add_run(store, name="my run")
        same_1, same_2 = add_run(store, lr=0.3), add_run(store, lr=0.3)
        get = store.get_run
        assert difference_labels([get(lenet_a), get(lenet_b)]) == {lenet_a: "lenet, lr 0.1", lenet_b: "lenet, lr 0.01"}
        labels = difference_labels([get(plain), get(residual)])
        assert labels == {plain: "resnet20 residual=False", residual: "resnet20 residual=True"}
        mixed = difference_labels([get(lenet_a), get(plain)])
        assert mixed[lenet_a].startswith("lenet") and mixed[plain].startswith("resnet20")
        assert difference_labels([get(named), get(lenet_b)])[named] == "my run"
        assert difference_labels([get(lenet_a)]) == {lenet_a: "lenet on digits"}
        assert difference_labels([get(same_1), get(same_2)]) == {same_1: "lenet on digits #1",
                                                                 same_2: "lenet on digits #2"}
        # Compared with the run training now: a single overlay says how it differs from it.
        assert difference_labels([get(lenet_b)], [get(lenet_a)]) == {lenet_b: "lenet, lr 0.01"}
