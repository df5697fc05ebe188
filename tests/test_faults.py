"""Nothing lost, nothing cryptic: full disks, signals, races, damaged checkpoints, wrong resumes, failing callbacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workbench.cli import main
from workbench.runs import RunStore
from workbench.training import checkpoint as ckpt
from workbench.training.callbacks import Callback
from workbench.training.config import TrainConfig, TrainJob
from workbench.training.control import TrainControl
from workbench.training.job import run_training

FAST = ["--arch", "lenet", "--dataset", "digits", "--device", "cpu"]
CONFIG = TrainConfig(epochs=2, max_batches=3, device="cpu", optimizer="adam", lr=0.01, batch_size=32)


def _train(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(["train", *argv])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _job(ws: Path, config: TrainConfig = CONFIG, **kw: Any) -> TrainJob:
    return TrainJob(arch="lenet", dataset="digits", workspace=ws, config=config, **kw)


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.glob(".*.tmp")]


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, good_saves: int) -> None:
    """torch.save works `good_saves` times, then fails the way it does on a full disk (a RuntimeError)."""
    real, calls = torch.save, [0]

    def save(obj: Any, fh: Any, *args: Any, **kw: Any) -> None:
        calls[0] += 1
        if calls[0] > good_saves:
            fh.write(b"PK\x03\x04 half a file")
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4416 vs 4352")
        real(obj, fh, *args, **kw)

    monkeypatch.setattr(ckpt.torch, "save", save)


# --- 1. disk full ------------------------------------------------------------------------------------------


def test_disk_full_at_the_first_checkpoint_is_one_line_and_resumable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _disk_full_after(monkeypatch, 0)
    rc, out, err = _train([*FAST, "--epochs", "2", "--max-batches", "3", "--workspace", str(tmp_path), "--json"],
                          capsys)
    assert rc == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "is full" in line and "free some space and resume" in line
    run_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    record = RunStore(tmp_path).get_run(run_id)
    assert record.status == "failed" and not (record.folder / "last.pt").exists()
    assert _temp_files(record.folder) == []
    monkeypatch.undo()  # space freed: the run trains again from epoch 1 with its own settings
    rc, out, err = _train(["--resume", run_id, "--workspace", str(tmp_path), "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["epochs_completed"] == 2


def test_disk_full_at_a_later_epoch_keeps_the_previous_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _disk_full_after(monkeypatch, 3)  # first last.pt, epoch 1's last.pt and best.pt; epoch 2's last.pt fails
    result = run_training(_job(tmp_path))
    assert result.status == "failed" and "is full" in result.message and result.run_id in result.message
    folder = RunStore(tmp_path).run_dir(result.run_id)
    assert ckpt.load_checkpoint(folder / "last.pt")["epoch"] == 1 and _temp_files(folder) == []
    monkeypatch.undo()
    again = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=result.run_id))
    assert again.status == "completed" and again.epochs_completed == 2


# --- 2. a resume changes nothing about the data --------------------------------------------------------------


def _stopped_run(ws: Path, **kw: Any) -> Any:
    control = TrainControl()

    class StopAfterEpoch1(Callback):
        def on_epoch_end(self, e: object) -> None:
            control.stop()

    result = run_training(_job(ws, **kw), [StopAfterEpoch1()], control)
    assert result.status == "stopped"
    return result


def _letters(root: Path, classes: str) -> None:
    rng = np.random.default_rng(0)
    from PIL import Image

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(8):
            pixels = np.clip(rng.normal(40 + 50 * k, 10, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_resume_refuses_another_data_folder_and_changed_classes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "imgs"
    _letters(folder, "abc")
    config = TrainConfig(epochs=2, max_batches=2, device="cpu", batch_size=8, image_size=28)
    stopped = _stopped_folder_run(tmp_path / "ws", folder, config)
    other = tmp_path / "other"
    _letters(other, "abc")
    rc, _, err = _train(["--resume", stopped, "--workspace", str(tmp_path / "ws"), "--data-root", str(other)], capsys)
    assert rc == 2 and "--data-root" in err and len(err.strip().splitlines()) == 1
    for flag in (["--input", "1,28,28"], ["--classes", "5"], ["--name", "x"], ["--set", "activation=relu"]):
        rc, _, err = _train(["--resume", stopped, "--workspace", str(tmp_path / "ws"), *flag], capsys)
        assert rc == 2 and flag[0] in err
    _letters(folder, "d")  # a class appeared in the run's own folder
    rc, _, err = _train(["--resume", stopped, "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2 and "classes (a, b, c, d) differ" in err
    assert RunStore(tmp_path / "ws").get_run(stopped).status == "stopped"  # the claim was given back


def _stopped_folder_run(ws: Path, folder: Path, config: TrainConfig) -> str:
    control = TrainControl()

    class StopAfterEpoch1(Callback):
        def on_epoch_end(self, e: object) -> None:
            control.stop()

    result = run_training(TrainJob(arch="lenet", dataset="imagefolder", data_root=folder, workspace=ws,
                                   config=config), [StopAfterEpoch1()], control)
    assert result.status == "stopped"
    return result.run_id


# --- 3. a finished run is never claimed again ------------------------------------------------------------------


def test_a_resume_that_loses_the_race_never_retrains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.data as data

    first = _stopped_run(tmp_path)
    real, inside = data.load_splits, []

    def slow_load(*args: Any, **kw: Any) -> Any:  # while the first resume loads its data, a second one tries
        if not inside:
            inside.append(1)
            with pytest.raises(Exception, match="still being trained by this process"):
                run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
        return real(*args, **kw)

    monkeypatch.setattr(data, "load_splits", slow_load)
    done = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
    assert done.status == "completed" and inside
    monkeypatch.undo()
    stamp = (RunStore(tmp_path).run_dir(first.run_id) / "last.pt").stat().st_mtime_ns
    with pytest.raises(Exception, match="already completed"):
        run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
    assert (RunStore(tmp_path).run_dir(first.run_id) / "last.pt").stat().st_mtime_ns == stamp


# --- 4. signals ----------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _wait_for_epoch(ws: Path, proc: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (ws / "runs.sqlite").exists():
            runs = RunStore(ws).list_runs()
            if runs and runs[0].epochs_completed >= 1:
                return runs[0].run_id
        time.sleep(0.05)
    raise AssertionError("the training subprocess made no progress")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_like_ctrl_c(signum: int, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "workbench", "train", *FAST, "--epochs", "30", "--workspace", str(tmp_path),
           "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    run_id = _wait_for_epoch(tmp_path, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped" and "Traceback" not in err
    record = RunStore(tmp_path).get_run(run_id)
    assert record.status == "stopped" and ckpt.load_checkpoint(record.folder / "last.pt")["epoch"] >= 1


def test_ctrl_c_in_the_first_moments_exits_130_without_a_traceback(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "workbench", "train", *FAST, "--workspace", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    time.sleep(0.4)  # Python is up; torch and the engine are still being imported
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# --- 5. runs without a checkpoint, and leftovers of interrupted writes ------------------------------------------


def test_a_run_killed_before_its_first_checkpoint_restarts_from_epoch_1(tmp_path: Path) -> None:
    child = ("import sys; from workbench.runs import RunStore; from workbench.training.config import TrainConfig;"
             "cfg = TrainConfig(epochs=1, max_batches=2, device='cpu', batch_size=32).to_dict();"
             "print(RunStore(sys.argv[1]).create_run(arch='lenet', arch_options={}, dataset='digits', config=cfg,"
             " device='cpu', input_shape=(1, 28, 28), num_classes=10))")
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path)], capture_output=True, text=True, check=True)
    run_id = out.stdout.strip().splitlines()[-1]
    store = RunStore(tmp_path)
    assert store.get_run(run_id).status == "interrupted"
    (store.run_dir(run_id) / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    result = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=run_id))
    assert result.status == "completed" and result.epochs_completed == 1
    assert _temp_files(store.run_dir(run_id)) == []  # the interrupted write's temp file was cleaned up
    assert [e for e, _, _ in store.metrics(run_id, ["val_accuracy"])["val_accuracy"]] == [1]


# --- 6. damaged checkpoints ---------------------------------------------------------------------------------


def test_a_damaged_checkpoint_is_named_and_best_is_offered(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _stopped_run(tmp_path).run_id
    last = RunStore(tmp_path).run_dir(run_id) / "last.pt"
    data = bytearray(last.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):  # a garbled region inside a tensor
        data[i] ^= 0x5A
    last.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(last)
    rc, _, err = _train(["--resume", run_id, "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "corrupt" in err and "--resume-from best" in err and "arbitrary Python objects" not in err
    rc, out, err = _train(["--resume", run_id, "--resume-from", "best", "--workspace", str(tmp_path), "--json"],
                          capsys)
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "completed"


def test_a_checkpoint_without_the_needed_keys_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _stopped_run(tmp_path).run_id
    folder = RunStore(tmp_path).run_dir(run_id)
    for name in ("last.pt", "best.pt"):
        state = ckpt.load_checkpoint(folder / name)
        state["epoch"] = "one"
        ckpt.save_checkpoint(folder / name, state)
    rc, _, err = _train(["--resume", run_id, "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "'epoch' should be a whole number" in err and "no other checkpoint of this run is usable" in err


# --- 9. a failing callback leaves the run resumable -----------------------------------------------------------


def test_an_exception_in_a_callback_stops_the_run_with_a_checkpoint(tmp_path: Path) -> None:
    class Broken(Callback):
        def on_epoch_end(self, e: object) -> None:
            raise ValueError("the plot widget is gone")

    result = run_training(_job(tmp_path), [Broken()])
    assert result.status == "stopped" and "Broken.on_epoch_end raised ValueError" in result.message
    record = RunStore(tmp_path).get_run(result.run_id)
    assert record.status == "stopped" and (record.folder / "last.pt").is_file()
    again = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=result.run_id))
    assert again.status == "completed" and again.epochs_completed == 2


# --- 7. the database -----------------------------------------------------------------------------------------


def test_one_bad_cell_damages_one_run_not_the_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    good = _stopped_run(tmp_path).run_id
    bad = _stopped_run(tmp_path).run_id
    conn = sqlite3.connect(tmp_path / "runs.sqlite")
    conn.execute("UPDATE runs SET epochs_completed = 'lots' WHERE id = ?", (bad,))
    conn.commit()
    conn.close()
    assert main(["runs", "--workspace", str(tmp_path), "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])}
    assert listed[good]["status"] == "stopped" and listed[bad]["status"] == "damaged"
    assert "runs delete" in listed[bad]["message"]
    rc, _, err = _train(["--resume", bad, "--workspace", str(tmp_path)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "damaged" in err
    rc, _, err = _train(["--resume", good, "--workspace", str(tmp_path)], capsys)
    assert rc == 0, err  # the other runs are untouched
    assert main(["runs", "delete", bad, "--workspace", str(tmp_path)]) == 0
    assert not (tmp_path / "runs" / bad).exists() and [r.run_id for r in RunStore(tmp_path).list_runs()] == [good]


def test_a_deleted_database_is_noticed_and_its_runs_reimported(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    done = run_training(_job(tmp_path)).run_id
    stopped = _stopped_run(tmp_path).run_id
    for name in ("runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert main(["runs", "--workspace", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "No runs" in captured.out and "2 run folder(s)" in captured.err and "runs import" in captured.err
    assert main(["runs", "import", "--workspace", str(tmp_path), "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["imported"]) == sorted([done, stopped])
    store = RunStore(tmp_path)
    assert store.get_run(done).status == "completed" and store.get_run(stopped).status == "stopped"
    assert store.get_run(done).epochs_completed == 2 and store.orphan_folders() == []
    again = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=stopped))
    assert again.status == "completed"  # a re-imported run resumes from its checkpoint


# --- 8. data sanity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "needle"), [
    (["--dataset", "fake", "--data-option", "train_size=100000000", "--data-option", "image_shape=3,64,64"],
     "over the limit of"),
    (["--dataset", "fake", "--data-option", "image_shape=3,100000,32"], "at most 4,096"),
    (["--dataset", "fake", "--data-option", "val_size=0"], "validation split of fake is empty"),
    (["--dataset", "digits", "--classes", "0"], "--classes must be at least 2"),
    (["--dataset", "digits", "--classes", "1"], "--classes must be at least 2"),
])
def test_data_limits_and_empty_splits_are_one_line(argv: list[str], needle: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _train(["--arch", "lenet", "--device", "cpu", *argv, "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "ws").exists()


def test_folder_problems_are_named_not_called_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "imgs"
    _letters(folder / "train", "ab")
    _letters(folder / "val", "ab")
    rc, _, err = _train(["--arch", "lenet", "--dataset", "imagefolder", "--data-root", str(folder), "--device", "cpu",
                         "--data-option", "image_size=64000", "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2 and "image_size must be at most 4,096" in err
    _letters(folder / "val", "z")  # z has no training images
    rc, _, err = _train(["--arch", "lenet", "--dataset", "imagefolder", "--data-root", str(folder), "--device", "cpu",
                         "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2 and "classes that" in err and "z (8 images)" in err and "unreadable" not in err
    one = tmp_path / "one"
    _letters(one, "a")
    rc, _, err = _train(["--arch", "lenet", "--dataset", "imagefolder", "--data-root", str(one), "--device", "cpu",
                         "--workspace", str(tmp_path / "ws")], capsys)
    assert rc == 2 and "needs at least two classes" in err


def _streamed_letters(tmp_path: Path, epochs: int) -> tuple[Path, TrainJob]:
    """A two-class folder of letters and a LeNet job that streams it from disk."""
    folder = tmp_path / "imgs"
    _letters(folder, "ab")
    return folder, TrainJob(arch="lenet", dataset="imagefolder", data_root=folder, workspace=tmp_path / "ws",
                            config=TrainConfig(epochs=epochs, batch_size=4, device="cpu", image_size=28),
                            dataset_options={"streaming": True})


def test_a_streamed_folder_whose_images_all_fail_does_not_complete(tmp_path: Path) -> None:
    folder, job = _streamed_letters(tmp_path, epochs=2)

    class BreakFiles(Callback):  # after the scan, every file turns into garbage
        def on_fit_start(self, e: object) -> None:
            for png in folder.rglob("*.png"):
                png.write_bytes(b"not an image any more")

    result = run_training(job, [BreakFiles()])
    assert result.status == "failed" and "could be read" in result.message
    assert RunStore(tmp_path / "ws").get_run(result.run_id).status == "failed"


def test_streamed_images_that_fail_are_counted(tmp_path: Path) -> None:
    folder, job = _streamed_letters(tmp_path, epochs=1)

    class BreakTwo(Callback):
        def on_fit_start(self, e: object) -> None:
            for png in sorted(folder.rglob("*.png"))[:2]:
                png.write_bytes(b"broken")

    result = run_training(job, [BreakTwo()])
    assert result.status == "completed" and "2 image(s) could not be read during the run" in result.message


def test_leftovers_of_interrupted_writes_are_swept_at_the_next_start(tmp_path: Path) -> None:
    old = _stopped_run(tmp_path).run_id
    leftover = RunStore(tmp_path).run_dir(old) / ".last.pt.x1y2.tmp"
    leftover.write_bytes(b"half a checkpoint")
    run_training(_job(tmp_path, config=CONFIG.replace(epochs=1)))  # any new run in the workspace sweeps
    assert not leftover.exists() and (RunStore(tmp_path).run_dir(old) / "last.pt").is_file()


def test_a_signal_swallowed_by_a_librarys_import_still_ends_the_command(capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that lands inside torch's import can be caught by a bare `except:` there; the start-up handler
    remembers it, so `train` still ends with 130 before any run exists."""
    import workbench.cli.train as train_cli
    from workbench.cli import common

    real = train_cli.job_from_args

    def swallowing(*args: object) -> object:
        try:
            common.remember_signal(signal.SIGINT, None)  # the signal arrives during an import...
        except BaseException:
            pass
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(train_cli, "job_from_args", swallowing)
    rc = main(["train", *FAST, "--epochs", "1", "--workspace", "/nonexistent/never-created"])
    assert rc == 130 and "interrupted" in capsys.readouterr().err
    assert not Path("/nonexistent/never-created").exists()


def test_an_error_that_follows_a_start_up_signal_ends_as_that_signal(monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C inside numpy's import (under torch's) leaves numpy half-loaded; the next import then fails with
    'cannot load module more than once per process'. That is the interruption's doing: exit 130, no traceback."""
    from workbench.cli import common, main
    from workbench.cli import train as train_cli

    def interrupted_during_import(args: object) -> int:
        common.EARLY_SIGNALS.append(signal.SIGINT)      # what the start-up handler records
        raise ImportError("cannot load module more than once per process")

    monkeypatch.setattr(train_cli, "cmd_train", interrupted_during_import)
    assert main(["train", "--arch", "lenet", "--dataset", "digits"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "workbench: interrupted" and "Traceback" not in err


def test_an_unexpected_error_without_a_signal_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import main
    from workbench.cli import train as train_cli

    def bug(args: object) -> int:
        raise ImportError("a real bug")

    monkeypatch.setattr(train_cli, "cmd_train", bug)
    with pytest.raises(ImportError, match="a real bug"):
        main(["train", "--arch", "lenet", "--dataset", "digits"])
