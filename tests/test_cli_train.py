"""`workbench train`: JSON line, exit codes, bad input, Ctrl-C and SIGKILL + --resume in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workbench.cli import main
from workbench.runs import RunStatus, RunStore

FAST = ["--arch", "lenet", "--dataset", "digits", "--device", "cpu"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(["train", *argv])
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _stopped_after_epoch_1(workspace: Path, dataset: str = "digits", **job: Any) -> Any:
    """A run stopped at the end of its first epoch (its last.pt can be resumed); returns its FitResult."""
    from workbench.training.callbacks import Callback
    from workbench.training.config import TrainJob
    from workbench.training.control import TrainControl
    from workbench.training.job import run_training

    control = TrainControl()

    class StopAfterEpoch1(Callback):
        def on_epoch_end(self, e: object) -> None:
            control.stop()

    result = run_training(TrainJob(arch="lenet", dataset=dataset, workspace=workspace, **job), [StopAfterEpoch1()],
                          control)
    assert result.status == "stopped" and result.epochs_completed == 1
    return result


def test_json_line_and_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([*FAST, "--epochs", "1", "--max-batches", "5", "--workspace", str(tmp_path), "--json",
                         "--set", "activation=relu"], capsys)
    assert rc == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    for key in ("run_id", "status", "epochs_completed", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "best_val_accuracy", "images_per_second", "device"):
        assert key in data
    assert data["status"] == "completed" and data["epochs_completed"] == 1 and data["device"] == "cpu"
    assert 0.0 <= data["val_accuracy"] <= 1.0 and data["images_per_second"] > 0
    assert "epoch   1/1" in err and "val loss" in err
    record = RunStore(tmp_path).get_run(data["run_id"])
    assert record.arch_options["activation"] == "relu" and record.config["max_batches"] == 5
    from workbench.training.events import FitResult

    result = FitResult.from_dict(data)             # how the app reads a child process's result line
    assert result.to_dict() == {k: data[k] for k in result.to_dict()} and result.status is RunStatus.COMPLETED


@pytest.mark.parametrize("argv,needle", [
    (["--arch", "lenett", "--dataset", "digits"], "Unknown architecture"),
    (["--arch", "lenet", "--dataset", "digitz"], "digits"),
    (["--arch", "lenet", "--dataset", "digits", "--lr", "-1"], "lr must be"),
    (["--arch", "lenet", "--dataset", "digits", "--epochs", "x"], "--epochs"),
    (["--arch", "lenet", "--dataset", "digits", "--optimizer", "adagrad"], "invalid choice"),
    (["--arch", "lenet", "--dataset", "digits", "--set", "foo=1"], "foo"),
    (["--arch", "lenet", "--dataset", "fake", "--data-option", "trainsize=9"], "train_size"),
    (["--arch", "lenet", "--dataset", "digits", "--data-option", "split=1"], "digits has no data-set options"),
    (["--arch", "lenet", "--dataset", "fake", "--data-option", "train_size"], "--data-option expects KEY=VALUE"),
    (["--arch", "lenet", "--dataset", "fake", "--data-option", "train_size=abc"], "whole number"),
    (["--arch", "lenet", "--dataset", "fake", "--data-option", "image_shape=1x8x8"], "image_shape=3,32,32"),
    (["--arch", "lenet", "--dataset", "digits", "--schedule", "linear"], "invalid choice"),
    (["--arch", "lenet", "--dataset", "digits", "--device", "tpu"], "device"),
    (["--arch", "lenet", "--dataset", "digits", "--device", "cuda:7"], "not available"),
    (["--arch", "lenet", "--dataset", "digits", "--input", "1,2"], "--input"),
    (["--arch", "alexnet", "--dataset", "digits", "--image-size", "8"], "too small"),
    (["--arch", "lenet", "--dataset", "cifar10", "--data-root", "{tmp}/empty"], "--download"),
    (["--arch", "lenet"], "--dataset"),
    (["--resume", "20990101-000000-beef"], "No run"),
    (["--resume", "20990101-000000-beef", "--epochs", "3"], "--resume"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], needle: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, _out, err = _run([*argv, "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err
    assert not (tmp_path / "ws").exists()  # bad input is refused before the workspace is created


def test_too_few_classes_exits_2_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run([*FAST, "--classes", "5", "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2 and "--classes 5" in err and "10 classes" in err and "Traceback" not in err
    assert not (tmp_path / "ws").exists()
    rc, _, err = _run([*FAST, "--classes", "12", "--epochs", "1", "--max-batches", "2",
                       "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 0, err  # more outputs than classes is allowed


def test_unwritable_workspace_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc, _, err = _run([*FAST, "--workspace", str(blocker / "ws")], capsys)
    assert rc == 2 and "workspace" in err and len(err.strip().splitlines()) == 1


def test_divergence_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([*FAST, "--set", "activation=relu", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "2",
                         "--workspace", str(tmp_path), "--json"], capsys)
    assert rc == 1 and "diverged" in err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["status"] == "diverged" and "learning rate" in data["message"]
    assert RunStore(tmp_path).get_run(data["run_id"]).status == "diverged"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _start(ws: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "workbench", "train", *FAST, "--workspace", str(ws), "--json", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _wait_for_epoch(ws: Path, proc: subprocess.Popen, epochs: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (ws / "runs.sqlite").exists():
            runs = RunStore(ws).list_runs()
            if runs and runs[0].epochs_completed >= epochs:
                return runs[0].run_id
        time.sleep(0.05)
    raise AssertionError("the training subprocess made no progress")


def test_sigkill_mid_epoch_then_resume_completes(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--epochs", "4", "--batch-size", "8")  # ~200 small steps per epoch
    run_id = _wait_for_epoch(tmp_path, proc, 1)
    time.sleep(0.2)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    store = RunStore(tmp_path)
    killed = store.get_run(run_id)
    assert killed.status == "interrupted" and 1 <= killed.epochs_completed < 4
    done = subprocess.run([sys.executable, "-m", "workbench", "train", "--resume", run_id, "--workspace",
                           str(tmp_path), "--json", "--quiet"], capture_output=True, text=True, env=_env(),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["status"] == "completed" and data["epochs_completed"] == 4 and data["run_id"] == run_id
    assert store.integrity_check() == "ok"
    epochs = [e for e, _, _ in store.metrics(run_id, ["val_accuracy"])["val_accuracy"]]
    assert epochs == [1, 2, 3, 4]


def test_ctrl_c_saves_checkpoint_and_exits_130(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--epochs", "30")
    run_id = _wait_for_epoch(tmp_path, proc, 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"
    record = RunStore(tmp_path).get_run(run_id)
    assert record.status == "stopped" and (record.folder / "last.pt").is_file()
    assert "Traceback" not in err


def test_ctrl_c_while_loading_exits_130_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.data as data

    real = data.load_splits

    def interrupted(*args: object, **kw: object) -> object:
        splits = real(*args, **kw)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, handled by `train`'s SIGINT handler
        return splits

    monkeypatch.setattr(data, "load_splits", interrupted)
    rc, _out, err = _run([*FAST, "--workspace", str(tmp_path / "ws"), "--json"], capsys)
    assert rc == 130 and "no run was created" in err and "Traceback" not in err
    assert not (tmp_path / "ws").exists()


def test_skipped_files_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    from PIL import Image

    for k, cls in enumerate(("a", "b")):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8, 3), 40 * k + i, np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "a" / "bad.png").write_bytes(b"not an image")
    rc, out, err = _run(["--arch", "lenet", "--dataset", "imagefolder", "--data-root", str(tmp_path / "imgs"),
                         "--device", "cpu", "--epochs", "1", "--image-size", "32", "--workspace", str(tmp_path / "ws"),
                         "--json"], capsys)
    assert rc == 0, err
    assert "1 unreadable file(s) skipped" in err
    assert json.loads(out.strip().splitlines()[-1])["skipped"] == 1


def test_resume_accepts_device_and_amp_overrides_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.training.config import TrainConfig

    first = _stopped_after_epoch_1(tmp_path, config=TrainConfig(epochs=2, max_batches=2, device="cpu", amp="off"))
    rc, _, err = _run(["--resume", first.run_id, "--lr", "0.5", "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and "--lr" in err and "--device" in err
    rc, out, err = _run(["--resume", first.run_id, "--device", "cpu", "--amp", "bf16", "--channels-last", "off",
                         "--workspace", str(tmp_path), "--json"], capsys)
    assert rc == 0, err
    assert "amp bf16" in err and "resuming at epoch 2" in err
    assert json.loads(out.strip().splitlines()[-1])["epochs_completed"] == 2


def test_data_options_size_the_data_set_and_survive_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.training.callbacks import Callback
    from workbench.training.config import TrainConfig, TrainJob
    from workbench.training.events import FitStart
    from workbench.training.job import run_training

    opts = ["--data-option", "train_size=96", "--data-option", "val_size=40", "--data-option", "image_shape=1,8,8"]
    rc, _out, err = _run(["--arch", "lenet", "--dataset", "fake", *opts, "--device", "cpu", "--epochs", "1",
                         "--batch-size", "32", "--workspace", str(tmp_path), "--json"], capsys)
    assert rc == 0, err
    assert "(96 train / 40 val images" in err and "1 epochs of 3 batches" in err
    first = _stopped_after_epoch_1(tmp_path, "fake", config=TrainConfig(epochs=2, batch_size=32, device="cpu"),
                                   dataset_options={"train_size": 64, "val_size": 16, "image_shape": (1, 8, 8)})
    assert RunStore(tmp_path).get_run(first.run_id).dataset_options["train_size"] == 64
    rc, _, err = _run(["--resume", first.run_id, "--data-option", "train_size=5", "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and "--data-option" in err
    starts: list[FitStart] = []

    class Watch(Callback):
        def on_fit_start(self, e: FitStart) -> None:
            starts.append(e)

    resumed = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id), [Watch()])
    assert resumed.status == "completed"
    assert (starts[0].train_size, starts[0].val_size, starts[0].batches_per_epoch) == (64, 16, 2)
    assert starts[0].arch_options["activation"] == "sigmoid" and starts[0].arch_options["init"] == "xavier"


def test_a_checkpoint_from_before_dataset_options_resumes(tmp_path: Path) -> None:
    from workbench.training.checkpoint import load_checkpoint, save_checkpoint
    from workbench.training.config import TrainConfig, TrainJob
    from workbench.training.job import run_training

    first = _stopped_after_epoch_1(tmp_path, config=TrainConfig(epochs=2, max_batches=2, device="cpu"))
    state = load_checkpoint(first.checkpoint)
    del state["dataset_options"]  # what earlier versions wrote
    save_checkpoint(first.checkpoint, state)
    resumed = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
    assert resumed.status == "completed" and resumed.epochs_completed == 2


def test_the_data_option_help_names_every_declared_option(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli.train import DATA_OPTION_HELP
    from workbench.data import get_dataset, list_datasets
    from workbench.data.registry import data_option_help

    assert data_option_help() == DATA_OPTION_HELP  # the parser's copy cannot drift from the declaration
    assert main(["list", "--json"]) == 0
    datasets = {d["name"]: d for d in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["datasets"]}
    for name in list_datasets():
        assert [o["name"] for o in datasets[name]["options"]] == [o.name for o in get_dataset(name).options]
