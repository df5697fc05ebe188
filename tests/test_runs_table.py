"""The runs table: columns from stored records, display text, parameter counts, and "show only what differs"."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.runs import RunStore
from workbench.runs.table import (
    COLUMN_KEYS,
    EXPORT_FIELDS,
    RUN_COLUMNS,
    compact,
    differing_columns,
    format_seconds,
    parameter_count,
    run_row,
    run_table,
)

BASE = {"epochs": 10, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "schedule": "onecycle", "augment": False,
        "amp": "auto", "device": "cpu", "grad_clip": None}


def _store(tmp_path: Path) -> tuple[RunStore, list[str]]:
    store = RunStore(tmp_path / "ws")
    a = store.create_run(arch="lenet", arch_options={"activation": "sigmoid", "pool": "avg"}, dataset="digits",
                         config=BASE, device="cpu", name="base", input_shape=(1, 28, 28), num_classes=10)
    store.update_run(a, status="completed", epochs_completed=10, best_val_accuracy=0.9731)
    b = store.create_run(arch="lenet", arch_options={"activation": "relu", "pool": "max"}, dataset="digits",
                         config={**BASE, "lr": 0.001}, device="cpu", name="relu", input_shape=(1, 28, 28),
                         num_classes=10)
    store.update_run(b, status="stopped", epochs_completed=4, best_val_accuracy=0.95)
    c = store.create_run(arch="vgg", arch_options={"block_info": [[1, 8], [1, 16]], "batch_norm": True},
                         dataset="fake", dataset_options={"image_shape": [3, 16, 16]},
                         config={**BASE, "optimizer": "sgd", "augment": True, "batch_size": 64}, device="cuda:0")
    return store, [a, b, c]


def test_rows_carry_every_column(tmp_path: Path) -> None:
    store, (a, _b, c) = _store(tmp_path)
    records = {r.run_id: r for r in store.list_runs()}
    store.close()
    row = run_row(records[a])
    assert [col.key for col in RUN_COLUMNS] == list(COLUMN_KEYS)
    assert (row.run_id, row.name, row.status, row.arch, row.dataset) == (a, "base", "completed", "lenet", "digits")
    assert row.options == "activation=sigmoid, pool=avg" and row.data_options == ""
    assert (row.epochs_completed, row.epochs_planned, row.batch_size, row.optimizer, row.lr, row.schedule) == (
        10, 10, 32, "adam", 0.01, "onecycle")
    assert (row.augment, row.amp, row.device, row.parameters) == (False, "auto", "cpu", None)
    assert row.best_val_accuracy == pytest.approx(0.9731) and row.seconds is not None and row.seconds >= 0
    texts = {key: row.text(key) for key in COLUMN_KEYS}
    assert texts["epochs"] == "10/10" and texts["best_val_accuracy"] == "97.31%" and texts["augment"] == "off"
    assert texts["lr"] == "0.01" and texts["parameters"] == "-" and texts["data_options"] == "-"
    assert row.value("epochs") == 10 and row.to_dict()["epochs_planned"] == 10
    vgg = run_row(records[c])
    assert vgg.options == "batch_norm=True, block_info=((1,8),(1,16))"   # the store keeps keys sorted
    assert vgg.data_options == "image_shape=(3,16,16)" and vgg.text("augment") == "on" and vgg.device == "cuda:0"
    assert vgg.text("best_val_accuracy") == "-" and vgg.status == "running"
    assert set(EXPORT_FIELDS) == (set(COLUMN_KEYS) - {"epochs"}) | {"epochs_completed", "epochs_planned"}


def test_differing_columns(tmp_path: Path) -> None:
    store, (a, b, _c) = _store(tmp_path)
    rows = {r.run_id: r for r in run_table(store.list_runs())}
    store.close()
    both = differing_columns([rows[a], rows[b]])
    assert [k for k in both if k != "seconds"] == ["run_id", "name", "status", "options", "epochs", "lr",
                                                   "best_val_accuracy", "created_at"]
    three = differing_columns(list(rows.values()))
    for key in ("arch", "dataset", "data_options", "batch_size", "optimizer", "augment", "device"):
        assert key in three
    assert "schedule" not in three and "amp" not in three
    assert differing_columns([rows[a]]) == [] and differing_columns([]) == []
    assert differing_columns([rows[a], rows[a]]) == []
    assert differing_columns([rows[a], rows[b]], columns=("arch", "lr")) == ["lr"]


def test_parameter_counts_from_the_record_or_an_older_runs_checkpoint(tmp_path: Path) -> None:
    import torch

    from workbench.models import build_model

    store, (a, _b, c) = _store(tmp_path)
    records = {r.run_id: r for r in store.list_runs()}
    store.close()
    assert parameter_count(records[a]) == 61706            # LeNet-5 on 1x28x28, 10 classes (the lecture's count)
    assert parameter_count(records[c]) is None             # no input shape recorded and no checkpoint yet
    torch.save({"input_shape": [3, 16, 16], "num_classes": 10, "model": {}}, records[c].folder / "last.pt")
    model = build_model("vgg", num_classes=10, input_shape=(3, 16, 16), options=records[c].arch_options, device="meta")
    expected = sum(p.numel() for p in model.parameters())
    assert parameter_count(records[c]) == expected
    rows = run_table(list(records.values()), parameters=True)
    assert {r.run_id: r.parameters for r in rows}[a] == 61706
    assert run_table([records[a]], parameters={a: 5})[0].text("parameters") == "5"


def test_compact_text_and_durations() -> None:
    assert compact({"arch": ((2, 64), (2, 128)), "stem": "cifar", "dropout": 0.5, "one": [3]}) == (
        "arch=((2,64),(2,128)), stem=cifar, dropout=0.5, one=(3,)")
    assert compact(None) == "" and compact({}) == ""
    assert [format_seconds(s) for s in (4.4, 185, 7620)] == ["4 s", "3 min 05 s", "2 h 07 min"]
