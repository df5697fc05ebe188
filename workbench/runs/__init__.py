"""workbench.runs: the run store (SQLite, WAL) and run folders. No Qt, no torch."""

from workbench.runs.buffer import MetricBuffer
from workbench.runs.db import DB_NAME
from workbench.runs.owner import DEFAULT_STALE_AFTER_S
from workbench.runs.records import (
    ALL_STATUSES,
    COMPLETED,
    DIVERGED,
    FAILED,
    FINISHED_STATUSES,
    INTERRUPTED,
    RUNNING,
    STOPPED,
    STORED_STATUSES,
    MetricRow,
    RunCompletedError,
    RunInUseError,
    RunRecord,
    RunStatus,
    new_run_id,
)
from workbench.runs.schema import SCHEMA_VERSION
from workbench.runs.store import RunStore, finished

__all__ = [
    "ALL_STATUSES", "COMPLETED", "DB_NAME", "DEFAULT_STALE_AFTER_S", "DIVERGED", "FAILED", "FINISHED_STATUSES",
    "INTERRUPTED", "RUNNING", "SCHEMA_VERSION", "STOPPED", "STORED_STATUSES", "MetricBuffer", "MetricRow",
    "RunCompletedError", "RunInUseError", "RunRecord", "RunStatus", "RunStore", "finished", "new_run_id",
]
