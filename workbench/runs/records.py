"""Plain records of the run store: run rows, metric rows, statuses and run ids (no Qt, no torch)."""

from __future__ import annotations

import math
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from workbench.errors import WorkbenchError


class RunStatus(StrEnum):
    """How a run stands; the one status type of the store, trainer, job, CLI and UI (compares equal to its text).

    INTERRUPTED and DAMAGED are never stored: they are how a `running` row whose owning process is gone, and a
    row with an unreadable cell, read back.
    """

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    DAMAGED = "damaged"          # never stored: a row whose cells cannot be read (shown, not resumable)

    @property
    def is_finished(self) -> bool:
        """True for statuses that end a run (completed, stopped, failed, diverged)."""
        return self in FINISHED_STATUSES

    @property
    def is_failure(self) -> bool:
        """True for a run that ended badly (failed or diverged)."""
        return self in (RunStatus.FAILED, RunStatus.DIVERGED)

    @property
    def can_resume(self) -> bool:
        """True for a run that can be continued from its checkpoint."""
        return self in (RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED)


RUNNING, COMPLETED, STOPPED, FAILED, DIVERGED, INTERRUPTED = (
    RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.DIVERGED,
    RunStatus.INTERRUPTED)
STORED_STATUSES: tuple[RunStatus, ...] = (RUNNING, COMPLETED, STOPPED, FAILED, DIVERGED)
ALL_STATUSES: tuple[RunStatus, ...] = (*STORED_STATUSES, INTERRUPTED)
FINISHED_STATUSES: tuple[RunStatus, ...] = (COMPLETED, STOPPED, FAILED, DIVERGED)

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RunInUseError(WorkbenchError):
    """The run is being trained by a live process, so it cannot be resumed or deleted now."""


class RunCompletedError(WorkbenchError):
    """Resume was asked for a run that already finished all its epochs."""


class MetricRow(NamedTuple):
    """One logged value: `name` at (`epoch`, `step`), recorded at wall-clock `time` (seconds)."""

    epoch: int
    step: int
    name: str
    value: float
    time: float


@dataclass(frozen=True)
class RunRecord:
    """One run as stored, with `status` already resolved (a dead owner reads `interrupted`)."""

    run_id: str
    name: str
    status: RunStatus
    arch: str
    arch_options: dict
    dataset: str
    config: dict
    device: str
    created_at: float
    updated_at: float
    finished_at: float | None
    epochs_completed: int
    best_val_accuracy: float | None
    final_metrics: dict
    message: str
    folder: Path
    # Additions to the documented contract (all defaulted).
    best_metrics: dict = field(default_factory=dict)
    owner_pid: int | None = None
    owner_host: str = ""
    heartbeat_at: float | None = None
    dataset_options: dict = field(default_factory=dict)   # load_splits options (tuples read back as lists)
    experiment_id: str | None = None      # the experiment this run belongs to
    world_size: int = 1                   # processes that trained it (torchrun / --nproc)
    stop_requested: bool = False          # another process asked the training process to stop
    data_root: str | None = None          # the data folder the run reads (None: the default data root)
    input_shape: tuple[int, ...] | None = None   # (C, H, W) the model trains on (None: runs before schema 3)
    num_classes: int | None = None        # outputs of the model

    @property
    def epochs_planned(self) -> int | None:
        """The configured number of epochs, when the config records it."""
        value = self.config.get("epochs")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the folder as a string, non-finite numbers (a diverged loss) as None."""
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["epochs_planned"] = self.epochs_planned
        return _finite(data)


def damaged_record(row: tuple, runs_root: Path, error: Exception) -> RunRecord:
    """What a row with an unreadable cell reads back as: its id, names and the damage, status DAMAGED."""
    run_id = str(row[0])
    return RunRecord(
        run_id=run_id, name=str(row[1] or ""), status=RunStatus.DAMAGED, arch=str(row[3] or "?"), arch_options={},
        dataset=str(row[5] or "?"), config={}, device="", created_at=_number(row[8]), updated_at=_number(row[9]),
        finished_at=None, epochs_completed=0, best_val_accuracy=None, final_metrics={},
        message=f"The run's record in runs.sqlite is damaged (a cell holds {error}); delete the run with "
                f"`workbench runs delete {run_id}`, or repair the database.",
        folder=runs_root / run_id)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def new_run_id(now: float | None = None) -> str:
    """A short id that sorts by creation time (UTC, to the second) with a random suffix: 20250301-142530-7f3a."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


def is_valid_run_id(run_id: str) -> bool:
    """True when `run_id` is safe to use as a folder name (letters, digits, '-', '_', '.')."""
    return bool(_RUN_ID_RE.match(run_id)) and ".." not in run_id
