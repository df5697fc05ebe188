"""Several processes, one run: `workbench train --nproc 2` on CPUs with gloo (LeNet on digits, a few batches).

The launched processes take a test hook through a `sitecustomize` on PYTHONPATH (WB_HOOK): rank 0 sends Ctrl-C to
the launcher after step 3, rank 1 raises at step 2, every rank saves its final weights. One process, in this test
process, is the reference: the same global batch must give the same weights (up to float rounding).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.cli.train import add_train_arguments, job_from_args, worker_argv
from workbench.data import InMemoryImages, make_loader
from workbench.errors import InvalidOptionError
from workbench.runs import RunStore
from workbench.training import distributed as dist_mod
from workbench.training import launcher
from workbench.training import trainer as trainer_mod
from workbench.training.checkpoint import load_checkpoint
from workbench.training.config import TrainJob, recommended_config
from workbench.training.control import TrainControl
from workbench.training.job import StopRequests, run_training
from workbench.training.totals import DeviceSums, EpochClock, EpochTotals, ValidationBatches

# 8 steps of the global batch 32 in one epoch; SGD with a constant rate keeps the comparison tight.
TRAIN_ARGS = ["--arch", "lenet", "--dataset", "digits", "--epochs", "1", "--max-batches", "8", "--optimizer", "sgd",
              "--schedule", "constant"]
CONFIG = {"epochs": 1, "max_batches": 8, "optimizer": "sgd", "schedule": "constant"}
STOP_AT = 3
BOUND_S = 60          # every launched run ends (or is stopped) well within this

HOOK = f'''
import os, signal, time
hook = os.environ.get("WB_HOOK", "")
if hook and "RANK" in os.environ:
    import torch
    from workbench.training import trainer
    rank = int(os.environ["RANK"])
    step, fit = trainer.Trainer._optimizer_step, trainer.Trainer.fit
    if hook == "sigint":
        trainer.STEP_EMIT_INTERVAL = 0.0   # agree on the stop at the very next step

    def hooked_step(self, *args, **kwargs):
        step(self, *args, **kwargs)
        if hook == "sigint" and rank == 0 and self.step == {STOP_AT}:
            os.kill(os.getppid(), signal.SIGINT)       # Ctrl-C to the launcher, which hands it to every rank
            deadline = time.monotonic() + 30
            while not self.dist._local.stopped and time.monotonic() < deadline:
                time.sleep(0.01)
        if hook == "raise" and rank == 1 and self.step == 2:
            raise RuntimeError("injected failure in process 1")

    def hooked_fit(self, *args, **kwargs):
        result = fit(self, *args, **kwargs)
        if os.environ.get("WB_DUMP"):
            torch.save(self.model.state_dict(), os.path.join(os.environ["WB_DUMP"], f"rank{{rank}}.pt"))
        return result

    trainer.Trainer._optimizer_step, trainer.Trainer.fit = hooked_step, hooked_fit
'''


@dataclasses.dataclass
class Reference:
    """One-process runs in this process: the whole 8 steps, and a run stopped after step 3 (resumable)."""

    workspace: Path
    full: dict[str, torch.Tensor]
    stopped_run: str
    stopped: dict[str, torch.Tensor]


def _job(workspace: Path, **kw: Any) -> TrainJob:
    return TrainJob(arch="lenet", dataset="digits", config=recommended_config("lenet", "digits", CONFIG),
                    workspace=workspace, **kw)


def _weights(workspace: Path, run_id: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(workspace / "runs" / run_id / "last.pt")["model"]


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    ws = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = run_training(_job(ws))
        step = trainer_mod.Trainer._optimizer_step

        def stop_after(self: Any, *args: Any, **kwargs: Any) -> None:
            step(self, *args, **kwargs)
            if self.step == STOP_AT:
                self.control.stop()

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(trainer_mod.Trainer, "_optimizer_step", stop_after)
            stopped = run_training(_job(ws))
    finally:
        torch.set_num_threads(threads)
    assert full.status == "completed" and stopped.status == "stopped"
    yield Reference(ws, _weights(ws, full.run_id), stopped.run_id, _weights(ws, stopped.run_id))


@pytest.fixture
def hooked_env(tmp_path: Path) -> dict[str, str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK)
    (tmp_path / "dump").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(hooks), *filter(None, [env.get("PYTHONPATH")])]),
               OMP_NUM_THREADS="1", WB_DUMP=str(tmp_path / "dump"), WORKBENCH_DIST_TIMEOUT_S=str(BOUND_S))
    return env


def _workbench(args: list[str], env: dict[str, str], timeout: float = 3 * BOUND_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _no_duplicated_rows(store: RunStore, run_id: str, epochs: int) -> None:
    metrics = store.metrics(run_id)
    assert [e for e, _, _ in metrics["val_accuracy"]] == list(range(1, epochs + 1))
    steps = [(e, s) for e, s, _ in metrics.get("step_loss", [])]
    assert len(steps) == len(set(steps))


# --- launched processes --------------------------------------------------------------------------------------


def test_two_processes_stop_mid_epoch_like_one_and_resume_with_one(tmp_path: Path, reference: Reference,
                                                                   hooked_env: dict[str, str]) -> None:
    ws = tmp_path / "ws"
    started = time.monotonic()
    done = _workbench(["train", "--nproc", "2", *TRAIN_ARGS, "--workspace", str(ws), "--json"],
                      {**hooked_env, "WB_HOOK": "sigint"})
    assert time.monotonic() - started < BOUND_S + 30, "the stopped run did not end in time"
    assert done.returncode == 130, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])   # rank 0's JSON line is the last stdout line
    assert line["status"] == "stopped" and f"after {STOP_AT} batch(es)" in line["message"]
    assert line["world_size"] == 2
    store = RunStore(ws)
    (record,) = store.list_runs()                               # one run row, written by rank 0 only
    assert record.status == "stopped" and record.world_size == 2
    state = load_checkpoint(ws / "runs" / record.run_id / "last.pt")
    assert (state["epoch"], state["batch"], state["step"]) == (0, STOP_AT, STOP_AT)
    _assert_close(state["model"], reference.stopped)            # 2 processes x 16 images == 1 process x 32
    dumps = sorted((tmp_path / "dump").glob("rank*.pt"))
    assert len(dumps) == 2                                      # both processes ended their fit cleanly
    ranks = [torch.load(p) for p in dumps]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = run_training(TrainJob(arch="", dataset="", workspace=ws, resume_run_id=record.run_id))
    finally:
        torch.set_num_threads(threads)
    assert resumed.status == "completed" and store.get_run(record.run_id).world_size == 1  # the count it ran with
    _assert_close(_weights(ws, record.run_id), reference.full)  # 2 -> 1 continues exactly
    _no_duplicated_rows(store, record.run_id, 1)


def test_one_process_run_resumes_with_two(reference: Reference, hooked_env: dict[str, str], tmp_path: Path) -> None:
    ws, run_id = reference.workspace, reference.stopped_run
    done = _workbench(["train", "--resume", run_id, "--nproc", "2", "--workspace", str(ws), "--json", "--quiet"],
                      {**hooked_env, "WB_HOOK": "dump"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "completed"
    _assert_close(_weights(ws, run_id), reference.full)        # 1 -> 2 continues exactly
    ranks = [torch.load(p) for p in sorted((tmp_path / "dump").glob("rank*.pt"))]
    assert len(ranks) == 2 and all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    store = RunStore(ws)
    assert len(store.list_runs()) == 2                          # the resume made no new row
    assert store.get_run(run_id).world_size == 2
    _no_duplicated_rows(store, run_id, 1)


def test_a_process_that_raises_fails_the_run_without_hanging(tmp_path: Path, hooked_env: dict[str, str]) -> None:
    # Launched by torchrun itself (the external-launcher recipe): the engine reads the launcher's environment.
    ws = tmp_path / "ws"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "workbench",
         "train", *TRAIN_ARGS, "--workspace", str(ws)],
        env={**hooked_env, "WB_HOOK": "raise"}, capture_output=True, text=True, timeout=3 * BOUND_S)
    assert time.monotonic() - started < 2 * BOUND_S
    assert done.returncode == 1, done.stderr
    assert "workbench: process 1: Training failed: RuntimeError: injected failure in process 1" in done.stderr
    (record,) = RunStore(ws).list_runs()
    assert record.status in ("failed", "interrupted")           # never left "running"


def test_a_stop_request_through_the_store_stops_every_process(tmp_path: Path, hooked_env: dict[str, str]) -> None:
    ws = tmp_path / "ws"
    args = ["train", "--nproc", "2", "--arch", "lenet", "--dataset", "digits", "--epochs", "1000",
            "--workspace", str(ws), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *args], env=hooked_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        store = RunStore(ws)
        deadline = time.monotonic() + 3 * BOUND_S
        runs: list = []
        while time.monotonic() < deadline and proc.poll() is None:
            runs = store.list_runs() if (ws / "runs.sqlite").exists() else []
            if runs and runs[0].status == "running":   # training (or about to): rank 0 created the run
                break
            time.sleep(0.1)
        assert runs and proc.poll() is None, proc.communicate()[1] if proc.poll() is not None else "no run"
        asked_at = time.monotonic()
        assert store.request_stop(runs[0].run_id)
        _, err = proc.communicate(timeout=BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - asked_at < BOUND_S
    assert proc.returncode == 130, err
    record = store.get_run(runs[0].run_id)
    assert record.status == "stopped" and not record.stop_requested and record.world_size == 2
    assert (ws / "runs" / record.run_id / "last.pt").is_file()
    assert "Stopped by request" in record.message


# --- in this process ------------------------------------------------------------------------------------------


def _source(n: int) -> InMemoryImages:
    images = torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    return InMemoryImages(images, torch.arange(n) % 3)


class _Stream(torch.utils.data.Dataset):
    """A streaming (not in-memory) source: the DataLoader path."""

    channels, size = 1, (8, 8)

    def __init__(self, n: int) -> None:
        self.src = _source(n)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.src.images[i], int(self.src.labels[i])


def _batches(shard: tuple[int, int] | None, train: bool, n: int = 37, batch: int = 8,
             stream: bool = False) -> list[tuple]:
    gen = torch.Generator().manual_seed(4)
    loader = make_loader(_Stream(n) if stream else _source(n), batch_size=batch, device="cpu", train=train,
                         image_size=(8, 8), channels=1, mean=(0.5,), std=(0.25,), crop_padding=2, hflip=True,
                         generator=gen, shard=shard, num_workers=0)
    return list(loader)


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streaming"])
def test_shards_together_are_the_one_process_batches(stream: bool) -> None:
    whole = _batches(None, True, stream=stream)
    parts = [_batches((rank, 2), True, stream=stream) for rank in range(2)]
    assert len(parts[0]) == len(parts[1]) == len(whole) == 5
    for b, (x, y) in enumerate(whole):   # same permutation and per-sample augmentation, split in rank order
        assert torch.equal(torch.cat([parts[0][b][0], parts[1][b][0]]), x)
        assert torch.equal(torch.cat([parts[0][b][1], parts[1][b][1]]), y)
    val = [_batches((rank, 2), False, stream=stream) for rank in range(2)]
    assert torch.equal(torch.cat([y for part in val for _, y in part]), torch.arange(37) % 3)   # in order


def test_shard_edges() -> None:
    # 33 = 4 * 8 + 1: the last global batch has one image, fewer than the processes: it is left out.
    assert [len(_batches(None, True, n=33)), len(_batches((1, 2), True, n=33))] == [5, 4]
    gen = torch.Generator()
    loader = make_loader(_source(37), batch_size=8, device="cpu", train=True, image_size=8, channels=1,
                         mean=(0.5,), std=(0.25,), generator=gen, shard=(1, 2))
    assert loader.batch_share(0) == 0.5 and loader.batch_share(4) == 2 / 5   # 5 images: 3 + 2
    with pytest.raises(InvalidOptionError, match="split evenly"):
        make_loader(_source(8), batch_size=7, device="cpu", train=True, image_size=8, channels=1, mean=(0.5,),
                    std=(0.25,), generator=gen, shard=(0, 2))
    with pytest.raises(InvalidOptionError, match="multiple of 4"):
        dist_mod.check_batch_split(30, 4)


def test_one_process_is_a_no_op() -> None:
    d = dist_mod.from_environment()   # no launcher variables in the test process
    assert type(d) is dist_mod.Distributed and d.is_main and d.world_size == 1 and d.shard is None
    control = TrainControl()
    assert d.trainer_control(control) is control and d.from_main(lambda: 7) == d.agree(lambda: 7) == 7
    model = torch.nn.Linear(2, 2)
    assert d.wrap(model, torch.device("cpu")) is model


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    add_train_arguments(parser)
    return parser.parse_args(argv)


def test_each_process_runs_the_same_command_without_nproc() -> None:
    argv = ["train", "--arch", "lenet", "--dataset", "digits", "--set", "activation='relu'", "--nproc", "2",
            "--batch-size", "64", "--lr", "0.1", "--no-augment", "--grad-clip", "none", "--sync-batchnorm",
            "--json", "--workspace", "/tmp/w"]
    args = _parse(argv)
    job = job_from_args(args)
    again = _parse(worker_argv(job, args))
    assert again.nproc is None and again.json and not again.quiet
    assert job_from_args(again) == job                 # every process trains exactly the launcher's job


def test_nproc_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from workbench.cli import main
    from workbench.cli.train import job_from_args

    # --nproc may change on resume (it picks hardware, not what is learned); other options may not.
    assert job_from_args(_parse(["train", "--resume", "R", "--nproc", "2"])).resume_run_id == "R"
    with pytest.raises(InvalidOptionError, match=r"--nproc may change\); drop --lr"):
        job_from_args(_parse(["train", "--resume", "R", "--nproc", "2", "--lr", "0.1"]))
    assert main(["train", "--arch", "lenet", "--dataset", "digits", "--nproc", "3", "--batch-size", "32",
                 "--workspace", str(tmp_path)]) == 2
    assert "does not split evenly over 3 processes" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "1")
    assert main(["train", "--arch", "lenet", "--dataset", "digits", "--nproc", "2"]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err


@pytest.mark.parametrize(("raised", "code", "said"), [
    ("RuntimeError('gloo: connection closed by peer')", 1, "RuntimeError: gloo: connection closed by peer"),
    ("KeyboardInterrupt()", 130, "workbench: interrupted"),
    ("InvalidOptionError('no such thing')", 2, "workbench: error: no such thing"),
])
def test_a_launched_process_leaves_with_its_own_code_whatever_ends_it(tmp_path: Path, raised: str, code: int,
                                                                         said: str) -> None:
    """Under a launcher the process ends through os._exit (no C++ destructors, which can abort) with the exit code
    the exception means; Python's normal exit (the atexit line) never runs."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('NORMAL EXIT\\n'))\n"
        "from workbench.cli import train\n"
        "from workbench.errors import InvalidOptionError\n"
        "def failing(args, job):\n"
        f"    raise {raised}\n"
        "train._train = failing\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "localhost", "MASTER_PORT": "1"}
    done = _workbench(["train", *TRAIN_ARGS, "--workspace", str(tmp_path / "ws")], env)
    assert done.returncode == code, done.stderr
    assert said in done.stderr and "NORMAL EXIT" not in done.stderr


def test_a_process_that_reads_other_data_says_which_and_where(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    from types import SimpleNamespace

    from workbench.training.job_data import DataFacts, load_shard_data

    monkeypatch.setenv("RANK", "3")
    for key, value in (("WORLD_SIZE", "4"), ("MASTER_ADDR", "localhost"), ("MASTER_PORT", "1")):
        monkeypatch.setenv(key, value)
    plan = SimpleNamespace(dataset="digits", data_root=None, data_options={}, config=recommended_config("", "digits"))
    main_process = DataFacts(classes=("0", "1"), train_size=10, val_size=2)
    with pytest.raises(InvalidOptionError) as raised:
        load_shard_data(plan, main_process, TrainControl())  # type: ignore[arg-type]
    said = str(raised.value)
    assert said.startswith(f"Process 3 on {socket.gethostname()} reads different data from the default data root")
    assert "10 classes) than the main process (10 / 2, 2 classes)" in said


def test_launcher_exit_code_is_the_main_process(capsys: pytest.CaptureFixture) -> None:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    def failure(rank: int, code: int) -> ProcessFailure:
        return ProcessFailure(local_rank=rank, pid=1, exitcode=code, error_file="")

    assert launcher._exit_code({0: failure(0, 130), 1: failure(1, 1)}, 2) == 130
    assert launcher._exit_code({0: failure(0, -9)}, 2) == 137
    assert not capsys.readouterr().err
    # Process 1 failed; the launcher then ended process 0 with SIGTERM: the run failed (1), it was not stopped.
    assert launcher._exit_code({1: failure(1, 1), 0: failure(0, -15)}, 2) == 1
    assert "process 1 of 2 exited with code 1" in capsys.readouterr().err


def test_stop_requests_callback_stops_the_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run_id = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={}, device="cpu")
    control = TrainControl()
    watcher = StopRequests(store, run_id, control, every_s=0.0)
    step: Any = None
    watcher.on_train_batch_end(step)
    assert not control.stopped
    assert store.request_stop(run_id)
    watcher.on_train_batch_end(step)
    assert control.stopped
    store.update_run(run_id, status="stopped")
    assert not store.request_stop(run_id) and not store.get_run(run_id).stop_requested


@pytest.fixture
def group(tmp_path: Path) -> Iterator[dist_mod.ProcessGroup]:
    """A real (one-process, gloo) process group in this process: the collectives run, nothing waits on peers."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        yield dist_mod.ProcessGroup(0, 1, 0, 1, owned=True)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _one_step(sums: DeviceSums) -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    sums.add(torch.tensor(0.5), torch.tensor(0.4), [torch.tensor(0.2)], logits, torch.tensor([0, 0]), share=0.5)


def test_stop_and_pause_are_agreed_at_synchronisation_points(group: dist_mod.ProcessGroup) -> None:
    control = TrainControl()
    agreed = group.trainer_control(control)
    assert agreed is not control
    clock, totals, sums = EpochClock(), EpochTotals(), DeviceSums(torch.device("cpu"))
    clock.start()
    _one_step(sums)
    control.stop()                     # a signal in this process: the trainer does not see it before the sync
    assert not agreed.stopped and group.sync_due(clock, agreed, 0.06)
    group.fold(sums, totals, clock)
    assert agreed.stopped
    assert (totals.batches, totals.seen, totals.correct) == (1, 2, 1.0)
    assert totals.loss_sum == pytest.approx(0.25) and totals.aux_loss_sums == [pytest.approx(0.1)]

    control = TrainControl()
    agreed = group.trainer_control(control)
    control.pause()
    timer = threading.Timer(0.3, control.resume)
    timer.start()
    started = clock.started
    _one_step(sums)
    group.fold(sums, totals, clock)    # every process waits here until no process is paused
    timer.join()
    assert not control.paused and not agreed.stopped and totals.batches == 2
    assert clock.started is not None and started is not None and clock.started - started >= 0.3   # not trained
    assert 1 <= group._every <= dist_mod._MAX_EVERY


def test_group_validation_buffers_and_errors(group: dist_mod.ProcessGroup) -> None:
    batches = ValidationBatches()
    batches.add(torch.tensor([0.5, 1.5]), torch.tensor([1, 0]), torch.tensor([1, 1]), [torch.tensor([1.0, 3.0])])
    batches.add(torch.tensor([2.0]), torch.tensor([2]), torch.tensor([2]), [torch.tensor([2.0])])
    assert group.validation(batches, torch.device("cpu")) == batches.result()
    model = torch.nn.BatchNorm1d(2)
    group.sync_buffers(model)
    assert group.wrap(torch.nn.Linear(2, 2), torch.device("cpu")).__class__.__name__ == "DistributedDataParallel"
    with pytest.raises(InvalidOptionError, match="CUDA GPUs"):
        group.device_for(torch.device("mps"))
    assert group.from_main(lambda: 3) == 3
    with pytest.raises(ZeroDivisionError):
        group.agree(lambda: 1 / 0)
