"""`workbench experiment`: the queue (same seed, data and budget; runs tagged), stop and continue, --vary on
architecture and training options, bad keys, the JSON contract, and the engine API the GUI uses."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from workbench.cli import main
from workbench.runs import RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Two batches of 32 per epoch on the bundled digits, on the CPU.
CHEAP = ["--dataset", "digits", "--device", "cpu", "--batch-size", "32", "--max-batches", "2"]
TINY_VGG = ["--set", "vgg:block_info=((1,8),)", "--set", "vgg:classifier_width=16"]
ROW_KEYS = {"run_id", "arch", "options", "status", "best_val_accuracy", "train_seconds", "images_per_second",
            "params", "mult_adds"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any] | None, str]:
    try:
        rc = main(["experiment", *argv])
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return rc, (json.loads(lines[-1]) if "--json" in argv and lines else None), err


def test_queue_trains_every_variant_with_the_same_seed_data_and_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.models import summarize

    rc, data, err = _run(["--arch", "lenet", "--arch", "vgg", *TINY_VGG, "--dataset", "digits", "--device", "cpu",
                          "--max-batches", "2", "--epochs", "1", "--seed", "3", "--workspace", str(tmp_path),
                          "--json"], capsys)
    assert rc == 0, err
    assert data is not None and data["experiment_id"].startswith("exp-")
    assert [r["arch"] for r in data["runs"]] == ["lenet", "vgg"]
    for row in data["runs"]:
        assert set(row) >= ROW_KEYS and row["status"] == "completed"
        assert 0 <= row["best_val_accuracy"] <= 1 and row["train_seconds"] > 0 and row["images_per_second"] > 0
    store = RunStore(tmp_path)
    records = [store.get_run(r["run_id"]) for r in data["runs"]]
    assert {r.experiment_id for r in records} == {data["experiment_id"]}
    budget = {(r.config["seed"], r.config["epochs"], r.config["max_batches"], r.config["batch_size"],
               r.config["val_fraction"], r.dataset, json.dumps(r.dataset_options), r.data_root) for r in records}
    assert budget == {(3, 1, 2, 128, 0.1, "digits", "{}", None)}   # LeNet's own batch of 32 gives way to 128
    assert records[0].config["optimizer"] == "adam" and records[1].config["optimizer"] == "sgd"  # own recipes
    assert [r.name for r in records] == ["lenet", "vgg"]
    # params and Mult-Adds are summarize()'s, at the input each run trained with
    vgg = data["runs"][1]
    totals = summarize("vgg", input_shape=records[1].input_shape, num_classes=10, options=records[1].arch_options).totals
    assert (vgg["params"], vgg["mult_adds"]) == (totals.total_params, totals.mult_adds)
    assert vgg["options"]["block_info"] == [[1, 8]] and vgg["options"]["classifier_width"] == 16


def test_stop_leaves_the_rest_queued_and_the_same_command_continues(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.cli.experiment as cli
    from workbench.training.callbacks import Callback
    from workbench.training.experiment import Variant

    class CtrlCInSecondVariant(Callback):
        def on_epoch_end(self, e: object) -> None:
            os.kill(os.getpid(), signal.SIGINT)   # a real Ctrl-C, handled by the shared stop-on-signal helper

    def callbacks(variant: Variant) -> list[Callback]:
        return [CtrlCInSecondVariant()] if variant.index == 1 else []

    monkeypatch.setattr(cli, "_console_for", callbacks)
    argv = ["--arch", "lenet", "--vary", "lr=0.01,0.003,0.001", *CHEAP, "--epochs", "2",
            "--workspace", str(tmp_path), "--json"]
    rc, first, err = _run(argv, capsys)
    assert rc == 130, err
    assert first is not None and "Traceback" not in err
    assert [r["status"] for r in first["runs"]] == ["completed", "stopped", "queued"]
    assert [r["epochs_completed"] for r in first["runs"]] == [2, 1, 0] and first["runs"][2]["run_id"] is None
    assert [r["options"]["activation"] for r in first["runs"]] == ["sigmoid"] * 3

    monkeypatch.setattr(cli, "_console_for", lambda variant: [])
    rc, second, err = _run(argv, capsys)
    assert rc == 0, err
    assert second is not None and second["experiment_id"] == first["experiment_id"]
    assert "[1/3] lenet lr=0.01: already completed" in err and "[2/3] lenet lr=0.003: resuming run" in err
    assert [r["status"] for r in second["runs"]] == ["completed"] * 3
    assert [r["run_id"] for r in second["runs"][:2]] == [r["run_id"] for r in first["runs"][:2]]
    store = RunStore(tmp_path)
    resumed = store.metrics(second["runs"][1]["run_id"], ["val_accuracy"])["val_accuracy"]
    assert [epoch for epoch, _, _ in resumed] == [1, 2]   # continued from epoch 1's checkpoint, not restarted
    records = [store.get_run(r["run_id"]) for r in second["runs"]]
    assert [r.config["lr"] for r in records] == [0.01, 0.003, 0.001]
    assert len(store.list_runs()) == 3


def test_resume_by_id_continues_and_refuses_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.training.callbacks import Callback
    from workbench.training.control import TrainControl
    from workbench.training.experiment import (
        ExperimentSpec,
        experiment_status,
        list_experiments,
        plan_experiment,
        run_experiment,
    )

    spec = ExperimentSpec(archs=("lenet",), dataset="digits", vary=(("activation", ("relu", "sigmoid")),),
                          train_options={"epochs": 1, "max_batches": 2, "batch_size": 32, "device": "cpu"},
                          name="acts")
    plan = plan_experiment(spec, workspace=tmp_path)
    control = TrainControl()

    class StopAtStart(Callback):
        def on_fit_start(self, e: object) -> None:
            control.stop()

    events: list[Any] = []
    status = run_experiment(plan, lambda v: [StopAtStart()], control, on_variant=events.append)
    assert [(e.phase, e.index) for e in events] == [("started", 0), ("finished", 0)]
    assert [v.status for v in status.variants] == ["stopped", "queued"] and len(status.queued) == 2
    store = RunStore(tmp_path)
    assert experiment_status(store, plan.experiment_id).to_dict() == status.to_dict()
    assert [(s.experiment_id, s.name) for s in list_experiments(store)] == [(plan.experiment_id, "acts")]

    rc, _, err = _run(["--resume", plan.experiment_id, "--lr", "0.5", "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and "--lr" in err and "--device" in err and len(err.strip().splitlines()) == 1
    rc, data, err = _run(["--resume", plan.experiment_id, "--device", "cpu", "--workspace", str(tmp_path), "--json"],
                         capsys)
    assert rc == 0, err
    assert data is not None and [r["status"] for r in data["runs"]] == ["completed", "completed"]
    assert data["runs"][0]["run_id"] == status.variants[0].run_id   # the stopped run, resumed
    records = [store.get_run(r["run_id"]) for r in data["runs"]]
    assert [r.arch_options["activation"] for r in records] == ["relu", "sigmoid"]
    assert [r.name for r in records] == ["lenet activation=relu", "lenet activation=sigmoid"]
    rc, _, err = _run(["--resume", "exp-000000000000", "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and "No experiment" in err


@pytest.mark.parametrize("argv,needle", [
    (["--arch", "lenet", "--vary", "actvation=relu,tanh"], "'actvation' is neither an option"),
    (["--arch", "lenet", "--arch", "resnet20", "--vary", "residual=True,False"], "option of resnet20 but not of lenet"),
    (["--arch", "lenet", "--vary", "device=cpu,cuda"], "--vary device"),
    (["--arch", "lenet", "--vary", "lr"], "--vary expects KEY=V1,V2"),
    (["--arch", "lenet", "--vary", "lr=0.1", "--lr", "0.2"], "both given"),
    (["--arch", "lenet", "--vary", "lr=-1,0.1"], "lr must be"),
    (["--arch", "lenet", "--vary", "activation=relu,swish"], "activation"),
    (["--arch", "lenet"], "--dataset"),
    (["--arch", "lenet", "--set", "vgg:dropout=0.1"], "vgg"),
    (["--arch", "lenet", "--nproc", "2"], "--nproc"),
    (["--arch", "lenet", "--classes", "1"], "--classes must be at least 2"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needle: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    dataset = [] if "--dataset" in needle else ["--dataset", "digits"]
    rc, _, err = _run([*argv, *dataset, "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not RunStore(tmp_path).list_runs()


def test_vary_grid_of_an_architecture_option_and_a_training_option(tmp_path: Path) -> None:
    from workbench.training.experiment import ExperimentSpec, plan_experiment

    spec = ExperimentSpec(archs=("resnet20", "resnet56"), dataset="cifar10",
                          vary=(("residual", (True, False)), ("lr", (0.1, 0.01))))
    plan = plan_experiment(spec, workspace=tmp_path)
    assert [v.label for v in plan.variants[:4]] == ["resnet20 residual=True lr=0.1", "resnet20 residual=True lr=0.01",
                                                    "resnet20 residual=False lr=0.1", "resnet20 residual=False lr=0.01"]
    assert len(plan.variants) == 8
    assert [(v.options["residual"], v.config.lr) for v in plan.variants[4:]] == [
        (True, 0.1), (True, 0.01), (False, 0.1), (False, 0.01)]
    assert {v.job.experiment_id for v in plan.variants} == {plan.experiment_id}
    # the id depends on what is trained, not on how it was asked for nor on the hardware
    same = ExperimentSpec(archs=("resnet20", "resnet56"), dataset="cifar10",
                          vary=(("residual", (True, False)), ("lr", (0.1, 0.01))), train_options={"device": "cpu"},
                          arch_options={"resnet20": {"shortcut": "A"}}, name="other name")
    assert plan_experiment(same, workspace=tmp_path).experiment_id == plan.experiment_id
    other = ExperimentSpec(archs=("resnet20", "resnet56"), dataset="cifar10", vary=(("residual", (True, False)),))
    assert plan_experiment(other, workspace=tmp_path).experiment_id != plan.experiment_id
    assert not (tmp_path / "runs.sqlite").exists() or not RunStore(tmp_path).list_runs()


def test_parse_vary_values() -> None:
    from workbench.cli.experiment import parse_vary

    assert parse_vary(["residual=True,False", "lr=0.1,1e-2", "optimizer=sgd,adam", "max-batches=none,5",
                       "block_info=((1,64),),((2,64),)", "activation=relu"]) == (
        ("residual", (True, False)), ("lr", (0.1, 0.01)), ("optimizer", ("sgd", "adam")),
        ("max_batches", (None, 5)), ("block_info", (((1, 64),), ((2, 64),))), ("activation", ("relu",)))
