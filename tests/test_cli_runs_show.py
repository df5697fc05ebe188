"""`workbench runs show` / `runs export`, beside the plain `runs` listing (every option order)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.runs import RunStore
from workbench.runs.table import EXPORT_FIELDS

CONFIG = {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "schedule": "onecycle", "augment": False,
          "amp": "auto", "device": "cpu", "grad_clip": None}


def _populate(workspace: Path) -> tuple[str, str]:
    store = RunStore(workspace)
    done = store.create_run(arch="lenet", arch_options={"activation": "relu", "pool": "max"}, dataset="digits",
                            config=CONFIG, device="cpu", name="relu", input_shape=(1, 28, 28), num_classes=10)
    rows = []
    for epoch in (1, 2, 3):
        rows += [(epoch, 0, "train_loss", 2.0 / epoch, 0.0), (epoch, 0, "val_accuracy", 0.3 * epoch, 0.0),
                 (epoch, 0, "lr", 0.01, 0.0), (epoch, 10 * epoch, "step_loss", 2.1 / epoch, 0.0)]
    store.log_metrics(done, rows)
    store.update_run(done, status="completed", epochs_completed=3, best_val_accuracy=0.9)
    other = store.create_run(arch="resnet18", arch_options={"stem": "cifar"}, dataset="fake", config=CONFIG,
                             device="cpu", dataset_options={"train_size": 100})
    store.update_run(other, status="stopped", epochs_completed=0)
    store.close()
    return done, other


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("order", ["after", "before"])
def test_show_json(order: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done, _ = _populate(tmp_path)
    ws = ["--workspace", str(tmp_path)]
    argv = ["runs", "show", done, *ws, "--json"] if order == "after" else ["runs", *ws, "--json", "show", done]
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["run_id"] == done and data["arch_options"] == {"activation": "relu", "pool": "max"}
    assert data["config"]["lr"] == 0.01 and data["dataset_options"] == {} and data["parameters"] == 61706
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3]
    assert data["epochs"][1] == {"epoch": 2, "train_loss": 1.0, "val_accuracy": pytest.approx(0.6), "lr": 0.01}
    assert data["step_points"] == {"step_loss": 3}
    assert data["row"]["optimizer"] == "adam" and data["row"]["parameters"] == 61706


def test_show_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done, other = _populate(tmp_path)
    rc, out, err = _run(["runs", "show", done, "--workspace", str(tmp_path)], capsys)
    assert rc == 0, err
    assert out.startswith(f"Run {done} (relu): completed")
    for needle in ("Architecture   lenet", "activation=relu, pool=max", "Learning rate  0.01", "Parameters     61,706",
                   "Best val acc   90.00%", "Configuration:", "grad_clip", "EPOCH  TRAIN LOSS"):
        assert needle in out, needle
    epoch_lines = [line.split() for line in out.splitlines() if line.strip()[:2] in ("1 ", "2 ", "3 ")]
    assert [line[0] for line in epoch_lines] == ["1", "2", "3"] and epoch_lines[1][1] == "1.0000"
    rc, out, _ = _run(["runs", "show", other, "--workspace", str(tmp_path)], capsys)
    assert rc == 0 and "train_size" in out and "(no finished epoch)" in out


def test_show_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(tmp_path)
    rc, _, err = _run(["runs", "show", "nope", "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "nope" in err
    rc, _, err = _run(["runs", "show", "nope", "--workspace", str(tmp_path / "none")], capsys)
    assert rc == 2 and "does not exist" in err and not (tmp_path / "none").exists()
    (tmp_path / "empty").mkdir()
    rc, _, err = _run(["runs", "show", "nope", "--workspace", str(tmp_path / "empty")], capsys)
    assert rc == 2 and "holds no runs" in err and list((tmp_path / "empty").iterdir()) == []
    rc, _, err = _run(["runs", "show"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_export_csv_to_stdout_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done, other = _populate(tmp_path / "ws")
    rc, out, err = _run(["runs", "export", "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(EXPORT_FIELDS) and [r["run_id"] for r in rows] == [other, done]
    first = rows[1]
    assert (first["arch"], first["options"], first["optimizer"], first["lr"], first["epochs_completed"],
            first["epochs_planned"], first["parameters"], first["augment"]) == (
        "lenet", "activation=relu, pool=max", "adam", "0.01", "3", "3", "61706", "False")
    assert rows[0]["data_options"] == "train_size=100" and rows[0]["best_val_accuracy"] == ""
    target = tmp_path / "runs.csv"
    rc, out, err = _run(["runs", "--workspace", str(tmp_path / "ws"), "export", "--csv", str(target)], capsys)
    assert rc == 0 and out == "" and "2 runs" in err
    assert list(csv.DictReader(target.open())) == rows
    rc, out, _ = _run(["runs", "export", "--workspace", str(tmp_path / "empty")], capsys)
    assert rc == 0 and out.strip() == ",".join(EXPORT_FIELDS) and not (tmp_path / "empty").exists()
    rc, _, err = _run(["runs", "export", "--workspace", str(tmp_path / "ws"), "--csv", str(tmp_path / "no" / "x.csv")],
                      capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--csv" in err


def test_plain_listing_forms_still_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    done, other = _populate(tmp_path)
    for argv in (["runs", "--workspace", str(tmp_path), "--json"], ["runs", "--json", "--workspace", str(tmp_path)]):
        rc, out, _ = _run(argv, capsys)
        assert rc == 0 and [r["run_id"] for r in json.loads(out.strip().splitlines()[-1])] == [other, done]
    rc, out, _ = _run(["runs", "--workspace", str(tmp_path)], capsys)
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["RUN", "ID", "NAME"] and done in out
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    rc, out, _ = _run(["runs"], capsys)
    assert rc == 0 and done in out
    rc, out, _ = _run(["runs", "show", done], capsys)
    assert rc == 0 and out.startswith(f"Run {done}")
    rc, out, _ = _run(["runs", "--help"], capsys)
    assert rc == 0 and "show" in out and "export" in out
