"""The run store: round trips, WAL, concurrency across threads and processes, liveness, schema."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workbench.errors import InvalidOptionError, UnknownNameError, WorkspaceError
from workbench.runs import (
    COMPLETED,
    INTERRUPTED,
    RUNNING,
    SCHEMA_VERSION,
    MetricRow,
    RunInUseError,
    RunStore,
)


def _new(store: RunStore, **kw) -> str:
    args = dict(arch="lenet", arch_options={"act": "relu"}, dataset="digits", config={"epochs": 4, "lr": 0.05},
                device="cpu")
    args.update(kw)
    return store.create_run(**args)


def _raw(store: RunStore) -> sqlite3.Connection:
    return sqlite3.connect(store.db_path, isolation_level=None, timeout=30)


def test_create_get_update_list_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "ws")
    first = _new(store, name="first")
    second = _new(store, arch="resnet18", arch_options={"widths": (16, 32)}, name="second")
    record = store.get_run(first)
    assert (record.name, record.status, record.arch, record.dataset, record.device) == (
        "first", RUNNING, "lenet", "digits", "cpu")
    assert record.arch_options == {"act": "relu"} and record.config == {"epochs": 4, "lr": 0.05}
    assert record.folder == tmp_path / "ws" / "runs" / first == store.run_dir(first)
    assert record.folder.is_dir()
    assert record.owner_pid == os.getpid() and record.finished_at is None and record.epochs_planned == 4

    store.update_run(first, epochs_completed=3, best_val_accuracy=0.97, best_metrics={"epoch": 3},
                     final_metrics={"val_accuracy": 0.96, "val_loss": float("nan")}, message="done",
                     status=COMPLETED)
    record = store.get_run(first)
    assert record.status == COMPLETED and record.epochs_completed == 3 and record.best_val_accuracy == 0.97
    assert record.message == "done" and record.finished_at is not None and record.best_metrics == {"epoch": 3}
    assert math.isnan(record.final_metrics["val_loss"])
    assert record.to_dict()["final_metrics"]["val_loss"] is None  # JSON-safe
    assert [r.run_id for r in store.list_runs()] == [second, first]  # newest first
    assert [r.run_id for r in store.list_runs(status=COMPLETED)] == [first]
    assert store.get_run(second).arch_options == {"widths": [16, 32]}


def test_run_ids_are_sortable_unique_and_safe(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    ids = [_new(store) for _ in range(30)]
    assert len(set(ids)) == 30
    assert all(len(i) <= 24 and i.replace("-", "").isalnum() for i in ids)
    assert sorted(ids, key=lambda i: i[:15]) == ids  # timestamp prefix sorts by creation
    with pytest.raises(UnknownNameError):
        store.run_dir("../escape")


def test_metrics_round_trip_and_nan(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = _new(store)
    store.log_metrics(run, [MetricRow(1, 10, "train_loss", 2.0, 1.0), MetricRow(1, 20, "train_loss", 1.5, 2.0)])
    store.log_metrics(run, [(1, 20, "val_accuracy", 0.5, 3.0), (2, 40, "train_loss", float("nan"), 4.0)])
    got = store.metrics(run)
    assert got["train_loss"][:2] == [(1, 10, 2.0), (1, 20, 1.5)]
    assert math.isnan(got["train_loss"][2][2]) and got["train_loss"][2][:2] == (2, 40)
    assert store.metrics(run, names=["val_accuracy"]) == {"val_accuracy": [(1, 20, 0.5)]}
    assert store.discard_metrics_after(run, 1) == 1
    assert store.metrics(run)["train_loss"] == [(1, 10, 2.0), (1, 20, 1.5)]
    with pytest.raises(UnknownNameError, match="Did you mean"):
        store.log_metrics(run[:-1] + "z", [(1, 1, "x", 1.0, 1.0)])
    with pytest.raises(UnknownNameError):
        store.metrics("nope")


def test_unknown_run_and_bad_status(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = _new(store)
    with pytest.raises(UnknownNameError, match="workbench runs"):
        store.get_run("20000101-000000-abcd")
    with pytest.raises(UnknownNameError):
        store.update_run("missing", status=COMPLETED)
    with pytest.raises(InvalidOptionError):
        store.update_run(run, status="interrupted")  # derived, never stored


def test_wal_schema_version_and_integrity(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    _new(store)
    conn = _raw(store)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.integrity_check() == "ok"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store.close()
    with pytest.raises(WorkspaceError, match="newer"):
        RunStore(tmp_path)


def test_a_version_1_database_gains_dataset_options_and_keeps_its_runs(tmp_path: Path) -> None:
    from workbench.runs import DB_NAME
    from workbench.runs.schema import _SCHEMA_V1

    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript(_SCHEMA_V1)
    conn.execute("INSERT INTO runs (id, created_at, updated_at, status, arch, dataset) "
                 "VALUES ('20250101-000000-abcd', 1.0, 1.0, 'completed', 'lenet', 'digits')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = RunStore(tmp_path)
    old = store.get_run("20250101-000000-abcd")
    assert old.status == "completed" and old.dataset_options == {}
    assert (old.experiment_id, old.world_size, old.stop_requested) == (None, 1, False)
    new = _new(store, dataset="fake", dataset_options={"train_size": 64, "image_shape": (1, 8, 8)})
    assert store.get_run(new).dataset_options == {"train_size": 64, "image_shape": [1, 8, 8]}
    assert _raw(store).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert store.integrity_check() == "ok"


def test_unusable_workspace_raises_workspace_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(WorkspaceError, match="choose a writable folder"):
            RunStore(bad)


def test_delete_run_removes_rows_and_folder(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run, keep = _new(store), _new(store)
    store.log_metrics(run, [(1, 1, "loss", 1.0, 1.0)])
    store.log_metrics(keep, [(1, 1, "loss", 1.0, 1.0)])
    (store.run_dir(run) / "last.pt").write_bytes(b"x")
    with pytest.raises(RunInUseError):
        store.delete_run(run)  # still running in this live process
    store.update_run(run, status="stopped")
    store.delete_run(run)
    assert not store.run_dir(run).exists()
    assert [r.run_id for r in store.list_runs()] == [keep]
    assert _raw(store).execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run,)).fetchone()[0] == 0
    with pytest.raises(UnknownNameError):
        store.get_run(run)


_CHILD_CREATES = """
import sys
from workbench.runs import RunStore
print(RunStore(sys.argv[1]).create_run(arch="vgg11", arch_options={}, dataset="cifar10", config={}, device="cpu"))
"""


def test_run_of_dead_process_reads_interrupted_and_can_be_resumed(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD_CREATES, str(tmp_path)], capture_output=True, text=True,
                         check=True)
    run = out.stdout.strip().splitlines()[-1]
    store = RunStore(tmp_path)
    assert store.get_run(run).status == INTERRUPTED
    assert [r.status for r in store.list_runs()] == [INTERRUPTED]
    assert [r.run_id for r in store.list_runs(status=INTERRUPTED)] == [run]
    before = store.claim_run(run)  # the trainer flips it back to running, owned by us
    assert before.status == INTERRUPTED
    resumed = store.get_run(run)
    assert resumed.status == RUNNING and resumed.owner_pid == os.getpid()


def test_liveness_other_host_heartbeat_and_pid_reuse(tmp_path: Path) -> None:
    store = RunStore(tmp_path, stale_after_s=60)
    run = _new(store)
    conn = _raw(store)
    conn.execute("UPDATE runs SET owner_host = 'elsewhere', heartbeat_at = ? WHERE id = ?", (time.time(), run))
    assert store.get_run(run).status == RUNNING  # fresh heartbeat from another host
    with pytest.raises(RunInUseError, match="still being trained"):
        store.claim_run(run)
    conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - 600, run))
    assert store.get_run(run).status == INTERRUPTED
    store.claim_run(run)
    store.heartbeat(run)
    assert store.get_run(run).status == RUNNING
    if sys.platform.startswith("linux"):  # our pid, but a different process start time: pid was reused
        conn.execute("UPDATE runs SET owner_start = '1' WHERE id = ?", (run,))
        assert store.get_run(run).status == INTERRUPTED


_CHILD_WRITES = """
import sys, time
from workbench.runs import RunStore
store = RunStore(sys.argv[1])
run, tag, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
for i in range(n):
    store.log_metrics(run, [(1, i, tag, float(i), time.time()), (1, i, tag + "_b", float(-i), time.time())],
                      heartbeat=(i % 10 == 0))
    if i % 25 == 0:
        store.list_runs()
print("ok")
"""


def test_concurrent_writers_across_processes_and_threads(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = _new(store)
    n = 150
    children = [subprocess.Popen([sys.executable, "-c", _CHILD_WRITES, str(tmp_path), run, f"p{k}", str(n)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
    errors: list[BaseException] = []

    def thread_writer() -> None:  # like a Qt worker thread sharing the store with the GUI thread
        try:
            for i in range(n):
                store.log_metrics(run, [(1, i, "thread", float(i), time.time())])
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=thread_writer)
    worker.start()
    for i in range(n):
        store.log_metrics(run, [(1, i, "main", float(i), time.time())])
        if i % 20 == 0:
            store.get_run(run)
            store.metrics(run, names=["main"])
    worker.join()
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        assert stdout.strip() == "ok"
    assert not errors
    got = store.metrics(run)
    for name in ("main", "thread", "p0", "p1", "p0_b", "p1_b"):
        assert len(got[name]) == n, name
    assert [v for _, _, v in got["p1"]] == [float(i) for i in range(n)]
    assert store.integrity_check() == "ok"
    store.close()


def test_connections_of_finished_threads_are_released(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = _new(store)
    for _ in range(5):  # e.g. one worker thread per training run in a long GUI session
        worker = threading.Thread(target=lambda: store.log_metrics(run, [(1, 1, "loss", 1.0, 1.0)]))
        worker.start()
        worker.join()
    store.get_run(run)  # opens nothing new on this thread, then a new thread prunes the dead ones
    worker = threading.Thread(target=lambda: store.heartbeat(run))
    worker.start()
    worker.join()
    assert len(store._connections) <= 2  # this thread's and the last worker's
    assert len(store.metrics(run)["loss"]) == 5


_CHILD_LOOPS = """
import sys, time
from workbench.runs import RunStore
store = RunStore(sys.argv[1])
run = sys.argv[2]
i = 0
print("started", flush=True)
while True:
    store.log_metrics(run, [(1, i, "loss", float(k), time.time()) for k in range(7)], heartbeat=True)
    i += 1
"""


def test_sigkill_mid_write_leaves_database_sound(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = _new(store)
    child = subprocess.Popen([sys.executable, "-c", _CHILD_LOOPS, str(tmp_path), run], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    # wait (without sleeping blindly) until the child has committed a few batches, then kill it mid-stream
    watcher = _raw(store)
    while watcher.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] < 70:
        child.poll()
        assert child.returncode is None
    child.kill()
    child.wait()
    watcher.close()
    fresh = RunStore(tmp_path)
    assert fresh.integrity_check() == "ok"
    count = _raw(fresh).execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert count >= 70 and count % 7 == 0  # whole transactions only
    fresh.log_metrics(run, [(2, 0, "loss", 0.5, time.time())])  # still writable after the crash


def test_a_claim_rechecks_the_status_atomically(tmp_path: Path) -> None:
    import threading

    from workbench.runs import RunCompletedError

    store = RunStore(tmp_path)
    run = _new(store)
    store.update_run(run, status="stopped")
    winners: list[str] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        try:
            store.claim_run(run)
            winners.append(threading.current_thread().name)
        except RunInUseError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(errors) == 3  # threads of one process: only one claim succeeds
    assert "this process" in str(errors[0])
    store.update_run(run, status=COMPLETED)
    with pytest.raises(RunCompletedError, match="already completed"):
        store.claim_run(run)  # a run the first resume finished meanwhile is never retrained
    assert store.get_run(run).status == COMPLETED
