"""The run store: one SQLite database (WAL) per workspace plus a folder per run.

Safe to share between threads (one connection per thread) and processes (WAL, short IMMEDIATE write
transactions, a busy timeout), so a Qt worker, the GUI thread and `torchrun` ranks can all use it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import InvalidOptionError, UnknownNameError, WorkspaceError, suggest
from workbench.runs.db import Database
from workbench.runs.owner import current_owner, owner_alive
from workbench.runs.records import (
    FINISHED_STATUSES,
    INTERRUPTED,
    RUNNING,
    STORED_STATUSES,
    MetricRow,
    RunCompletedError,
    RunInUseError,
    RunRecord,
    RunStatus,
    damaged_record,
    is_valid_run_id,
    new_run_id,
)


def _dumps(value: Any) -> str:
    return json.dumps(value if value is not None else {}, sort_keys=True, default=str)


def _whole(value: object) -> int:
    """A stored whole number; ValueError for anything else (a damaged cell)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _shape(text: str | None) -> tuple[int, ...] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return tuple(int(v) for v in value) if isinstance(value, list) else None


def _loads(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class RunStore(Database):
    """Runs and their metrics in `<workspace>/runs.sqlite`; run folders under `<workspace>/runs/`."""

    # --- runs ---------------------------------------------------------------------------------------

    def run_dir(self, run_id: str) -> Path:
        """The run's folder, `<workspace>/runs/<run_id>/` (not created here)."""
        if not is_valid_run_id(run_id):
            raise UnknownNameError(f"{run_id!r} is not a valid run id; run `workbench runs` to list them.")
        return self.runs_root / run_id

    def create_run(
        self,
        *,
        arch: str,
        arch_options: dict | None,
        dataset: str,
        config: dict,
        device: str,
        name: str = "",
        dataset_options: dict | None = None,
        experiment_id: str | None = None,
        world_size: int = 1,
        data_root: str | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> str:
        """Insert a `running` run owned by this process, create its folder, and return its id."""
        owner = current_owner()
        for _ in range(20):
            run_id = new_run_id()
            now = time.time()
            try:
                with self._write("create a run in") as conn:
                    conn.execute(
                        "INSERT INTO runs (id, name, created_at, updated_at, status, arch, arch_options, dataset,"
                        " config, device, owner_pid, owner_host, owner_start, heartbeat_at, dataset_options,"
                        " experiment_id, world_size, data_root, input_shape, num_classes)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, name, now, now, RUNNING, arch, _dumps(arch_options), dataset, _dumps(config),
                         device, owner.pid, owner.host, owner.start, now, _dumps(dataset_options), experiment_id,
                         int(world_size), data_root,
                         json.dumps([int(v) for v in input_shape]) if input_shape else None, num_classes),
                    )
            except WorkspaceError as exc:
                if isinstance(exc.__cause__, sqlite3.IntegrityError):
                    continue  # id collision within the same second: draw another suffix
                raise
            break
        else:  # pragma: no cover - 20 collisions in a row
            raise WorkspaceError(f"Could not allocate a new run id in {self.db_path}; try again.")
        try:
            self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"Cannot create the run folder {self.run_dir(run_id)} ({exc.strerror}); "
                                 "choose a writable workspace.") from None
        return run_id

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        epochs_completed: int | None = None,
        best_val_accuracy: float | None = None,
        final_metrics: dict | None = None,
        message: str | None = None,
        best_metrics: dict | None = None,
        name: str | None = None,
        device: str | None = None,
        config: dict | None = None,
        world_size: int | None = None,
    ) -> None:
        """Change the given fields. Setting status `running` makes this process the owner (resume);
        a finished status records `finished_at`."""
        sets: dict[str, Any] = {}
        if status is not None:
            if status not in STORED_STATUSES:
                raise InvalidOptionError(f"Run status {status!r} is not one of: {', '.join(STORED_STATUSES)}.")
            sets["status"] = status
            if status == RUNNING:
                owner = current_owner()
                sets.update(owner_pid=owner.pid, owner_host=owner.host, owner_start=owner.start,
                            heartbeat_at=time.time(), finished_at=None, stop_requested_at=None)
            else:
                sets["finished_at"] = time.time()
        for key, value in (("epochs_completed", epochs_completed), ("best_val_accuracy", best_val_accuracy),
                           ("message", message), ("name", name), ("device", device), ("world_size", world_size)):
            if value is not None:
                sets[key] = value
        for key, blob in (("final_metrics", final_metrics), ("best_metrics", best_metrics), ("config", config)):
            if blob is not None:
                sets[key] = _dumps(blob)
        sets["updated_at"] = time.time()
        assignments = ", ".join(f"{key} = ?" for key in sets)
        with self._write("update a run in") as conn:
            cur = conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*sets.values(), run_id))
            if cur.rowcount == 0:
                raise self._unknown(run_id, conn)

    def claim_run(self, run_id: str) -> RunRecord:
        """Flip a stopped/interrupted/failed run back to `running`, owned by this process (for resume), and
        return the record as it was before. Check and flip happen in one transaction, so of two claims (two
        processes, or two threads of one) only one succeeds. RunInUseError while a live process (this one
        included) trains it; RunCompletedError for a completed run."""
        me = current_owner()
        with self._write("update a run in") as conn:
            row = conn.execute(f"SELECT {self._COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise self._unknown(run_id, conn)
            record = self._record(row, time.time())
            if record.status == RUNNING:
                who = ("this process" if (record.owner_pid, record.owner_host) == (me.pid, me.host)
                       else f"process {record.owner_pid} on {record.owner_host}")
                raise RunInUseError(f"Run {run_id} is still being trained by {who}; stop it before resuming.")
            if record.status == RunStatus.DAMAGED:
                raise WorkspaceError(record.message)
            if record.status == RunStatus.COMPLETED:
                raise RunCompletedError(f"Run {run_id} already completed ({record.epochs_completed} epochs); "
                                        "start a new run to train longer.")
            now = time.time()
            conn.execute(
                "UPDATE runs SET status = ?, owner_pid = ?, owner_host = ?, owner_start = ?, heartbeat_at = ?,"
                " updated_at = ?, finished_at = NULL, message = '', stop_requested_at = NULL WHERE id = ?",
                (RUNNING, me.pid, me.host, me.start, now, now, run_id),
            )
        return record

    def heartbeat(self, run_id: str) -> None:
        """Mark the owning process alive now (matters for runs owned from another host)."""
        now = time.time()
        with self._write("update a run in") as conn:
            cur = conn.execute("UPDATE runs SET heartbeat_at = ?, updated_at = ? WHERE id = ?", (now, now, run_id))
            if cur.rowcount == 0:
                raise self._unknown(run_id, conn)

    def request_stop(self, run_id: str) -> bool:
        """Ask the process training `run_id` to stop (it checkpoints and ends `stopped`, like Ctrl-C); for a run
        this process did not start (the app stopping a CLI run). True when the run was running and is now asked;
        False when it is not running (nothing to stop). Cleared when the run is claimed or running again."""
        now = time.time()
        with self._write("update a run in") as conn:
            cur = conn.execute("UPDATE runs SET stop_requested_at = ?, updated_at = ? WHERE id = ? AND status = ?",
                               (now, now, run_id, RUNNING))
            if cur.rowcount:
                return True
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown(run_id, conn)
        return False

    def _unknown(self, run_id: str, conn: sqlite3.Connection | None = None) -> UnknownNameError:
        rows = (conn or self._conn()).execute("SELECT id FROM runs ORDER BY created_at DESC LIMIT 500").fetchall()
        return UnknownNameError(
            f"No run {run_id!r} in workspace {self.workspace}.{suggest(run_id, [r[0] for r in rows])}"
            " Run `workbench runs` to list them."
        )

    _COLUMNS = ("id, name, status, arch, arch_options, dataset, config, device, created_at, updated_at, finished_at,"
                " epochs_completed, best_val_accuracy, final_metrics, message, best_metrics, owner_pid, owner_host,"
                " owner_start, heartbeat_at, dataset_options, experiment_id, world_size, stop_requested_at, data_root,"
                " input_shape, num_classes")

    def _record(self, row: tuple, now: float) -> RunRecord:
        """A row as a RunRecord; a row with an unreadable cell reads back as a `damaged` record (the rest of the
        workspace stays listable)."""
        try:
            return self._parse(row, now)
        except (TypeError, ValueError, OverflowError) as exc:
            return damaged_record(row, self.runs_root, exc)

    def _parse(self, row: tuple, now: float) -> RunRecord:
        (run_id, name, status, arch, arch_options, dataset, config, device, created_at, updated_at, finished_at,
         epochs_completed, best_val, final_metrics, message, best_metrics, pid, host, start, heartbeat_at,
         dataset_options, experiment_id, world_size, stop_requested_at, data_root, input_shape, num_classes) = row
        if status == RUNNING and not owner_alive(pid, host, start, heartbeat_at, now, self.stale_after_s):
            status = INTERRUPTED
        status = RunStatus(status)
        return RunRecord(
            run_id=str(run_id), name=str(name), status=status, arch=str(arch), arch_options=_loads(arch_options),
            dataset=str(dataset), config=_loads(config), device=str(device), created_at=float(created_at),
            updated_at=float(updated_at), finished_at=None if finished_at is None else float(finished_at),
            epochs_completed=_whole(epochs_completed),
            best_val_accuracy=None if best_val is None else float(best_val), final_metrics=_loads(final_metrics),
            message=str(message), folder=self.runs_root / str(run_id), best_metrics=_loads(best_metrics),
            owner_pid=pid, owner_host=host or "", heartbeat_at=heartbeat_at, dataset_options=_loads(dataset_options),
            experiment_id=experiment_id, world_size=_whole(world_size or 1),
            stop_requested=stop_requested_at is not None and status == RUNNING, data_root=data_root,
            input_shape=_shape(input_shape), num_classes=None if num_classes is None else _whole(num_classes),
        )

    def get_run(self, run_id: str) -> RunRecord:
        """One run; UnknownNameError (with close-id suggestions) when absent."""
        rows = self._read(f"SELECT {self._COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            with self._errors("read"):
                raise self._unknown(run_id)
        return self._record(rows[0], time.time())

    def list_runs(self, status: str | None = None) -> list[RunRecord]:
        """All runs, newest first; `status` filters on the resolved status (e.g. 'interrupted')."""
        now = time.time()
        rows = self._read(f"SELECT {self._COLUMNS} FROM runs ORDER BY created_at DESC, id DESC")
        records = [self._record(row, now) for row in rows]
        return [r for r in records if status is None or r.status == status]

    def delete_run(self, run_id: str, *, force: bool = False) -> None:
        """Remove the run's rows (metrics and history too) and its folder; what the CLI's `runs delete` and the
        app's Delete call. RunInUseError while a live process trains it (unless force)."""
        record = self.get_run(run_id)
        if record.status == RUNNING and not force:
            raise RunInUseError(f"Run {run_id} is still being trained; stop it before deleting it.")
        with self._write("delete a run from") as conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM sample_history WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def import_run(self, run_id: str, *, status: RunStatus, arch: str, arch_options: dict, dataset: str,
                   config: dict, device: str, created_at: float, epochs_completed: int,
                   best_val_accuracy: float | None, message: str, dataset_options: dict | None = None,
                   data_root: str | None = None, input_shape: Sequence[int] | None = None,
                   num_classes: int | None = None) -> None:
        """Insert a row for an existing run folder (re-importing runs whose database row was lost)."""
        if status not in STORED_STATUSES or status == RUNNING:
            raise InvalidOptionError(f"An imported run cannot have status {status!r}.")
        now = time.time()
        with self._write("import a run into") as conn:
            conn.execute(
                "INSERT INTO runs (id, created_at, updated_at, finished_at, status, arch, arch_options, dataset,"
                " config, device, epochs_completed, best_val_accuracy, message, dataset_options, data_root,"
                " input_shape, num_classes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, created_at, now, now, status, arch, _dumps(arch_options), dataset, _dumps(config), device,
                 int(epochs_completed), best_val_accuracy, message, _dumps(dataset_options), data_root,
                 json.dumps([int(v) for v in input_shape]) if input_shape else None, num_classes))

    def orphan_folders(self) -> list[Path]:
        """Run folders with a checkpoint but no row (e.g. runs.sqlite was deleted): runs that can be re-imported."""
        try:
            folders = [p for p in self.runs_root.iterdir() if p.is_dir() and is_valid_run_id(p.name)]
        except OSError:
            return []
        known = {row[0] for row in self._read("SELECT id FROM runs")}
        return sorted(p for p in folders if p.name not in known and any(p.glob("*.pt")))

    # --- metrics ------------------------------------------------------------------------------------

    def log_metrics(self, run_id: str, rows: Iterable[MetricRow | tuple], *, heartbeat: bool = False) -> None:
        """Append metric rows (epoch, step, name, value, time) in one short transaction.
        With heartbeat=True the run's heartbeat is refreshed in the same transaction."""
        values = []
        for row in rows:
            epoch, step, name, value, at = row
            value = float(value)
            values.append((run_id, int(epoch), int(step), str(name), None if value != value else value, float(at)))
        if not values and not heartbeat:
            return
        with self._write("log metrics in") as conn:
            if heartbeat:
                now = time.time()
                cur = conn.execute("UPDATE runs SET heartbeat_at = ?, updated_at = ? WHERE id = ?", (now, now, run_id))
                if cur.rowcount == 0:
                    raise self._unknown(run_id, conn)
            if values:
                try:
                    conn.executemany(
                        "INSERT INTO metrics (run_id, epoch, step, name, value, time) VALUES (?, ?, ?, ?, ?, ?)",
                        values,
                    )
                except sqlite3.IntegrityError:  # foreign key: the run does not exist
                    raise self._unknown(run_id, conn) from None

    def metrics(self, run_id: str, names: Iterable[str] | None = None) -> dict[str, list[tuple[int, int, float]]]:
        """name -> [(epoch, step, value)] in logging order; NaN values come back as NaN."""
        sql = "SELECT name, epoch, step, value FROM metrics WHERE run_id = ?"
        params: list[Any] = [run_id]
        if names is not None:
            wanted = list(names)
            if not wanted:
                return {}
            sql += f" AND name IN ({', '.join('?' * len(wanted))})"
            params += wanted
        rows = self._read(sql + " ORDER BY epoch, step, rowid", params)
        if not rows and not self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            with self._errors("read"):
                raise self._unknown(run_id)
        result: dict[str, list[tuple[int, int, float]]] = {}
        for name, epoch, step, value in rows:
            result.setdefault(name, []).append((epoch, step, float("nan") if value is None else value))
        return result

    def discard_metrics_after(self, run_id: str, epoch: int) -> int:
        """Delete rows logged for epochs after `epoch` (the partial epoch a crash left behind, before a
        resume from the checkpoint at `epoch`). Returns the number of rows deleted."""
        with self._write("update metrics in") as conn:
            return conn.execute("DELETE FROM metrics WHERE run_id = ? AND epoch > ?", (run_id, int(epoch))).rowcount

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` result ('ok' when the database is sound)."""
        return "; ".join(str(r[0]) for r in self._read("PRAGMA integrity_check"))


def open_existing(workspace: Path | str | None, run_id: str | None = None) -> RunStore:
    """The RunStore of an existing workspace; UnknownNameError (nothing created) when the folder does not exist
    or holds no runs (`run_id`, when given, is named in the message)."""
    from workbench.paths import default_workspace
    from workbench.runs.db import DB_NAME

    folder = Path(workspace).expanduser() if workspace is not None else default_workspace()
    what = f"No run {run_id!r}: workspace" if run_id else "Workspace"
    if not folder.is_dir():
        raise UnknownNameError(f"{what} {folder} does not exist; check --workspace (or $WORKBENCH_HOME).")
    if not (folder / DB_NAME).is_file():
        raise UnknownNameError(f"{what} {folder} holds no runs (no {DB_NAME}); check --workspace, or train a "
                               "model first.")
    return RunStore(folder)


def finished(status: str) -> bool:
    """True for statuses that end a run (completed, stopped, failed, diverged)."""
    return status in FINISHED_STATUSES
