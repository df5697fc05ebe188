"""The store side of experiments: the `experiments` table (schema v3) and the runs tagged with an experiment's id.

An experiment row holds its id (a hash of its normalised specification, so the same command finds the same
experiment), a name, when it was created, and its specification as JSON (what `workbench.training.experiment`
needs to rebuild the queue). Its runs are ordinary runs whose `experiment_id` column names it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import UnknownNameError, suggest
from workbench.runs.records import RunRecord

if TYPE_CHECKING:
    from workbench.runs.store import RunStore

_EXPERIMENT_ID_RE = re.compile(r"^exp-[0-9a-f]{12}$")


@dataclass(frozen=True)
class ExperimentRecord:
    """One stored experiment: its id, name, creation time and specification (a JSON object)."""

    experiment_id: str
    name: str
    created_at: float
    spec: dict[str, Any]


def is_experiment_id(text: str) -> bool:
    """True when `text` looks like an experiment id (`exp-` and 12 hex digits)."""
    return bool(_EXPERIMENT_ID_RE.match(text))


def save_experiment(store: RunStore, experiment_id: str, *, name: str, spec: dict[str, Any]) -> ExperimentRecord:
    """Store the experiment unless it exists; returns the stored record (the first one wins: a re-run of the
    same specification keeps its original name and creation time)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    with store._write("record an experiment in") as conn:
        conn.execute("INSERT OR IGNORE INTO experiments (id, name, created_at, spec) VALUES (?, ?, ?, ?)",
                     (experiment_id, name, time.time(), text))
    return get_experiment(store, experiment_id)


def get_experiment(store: RunStore, experiment_id: str) -> ExperimentRecord:
    """The stored experiment; UnknownNameError (with close ids) when there is none."""
    rows = store._read("SELECT id, name, created_at, spec FROM experiments WHERE id = ?", (experiment_id,))
    if not rows:
        known = [r[0] for r in store._read("SELECT id FROM experiments ORDER BY created_at DESC LIMIT 500")]
        raise UnknownNameError(f"No experiment {experiment_id!r} in workspace {store.workspace}."
                               f"{suggest(experiment_id, known)}")
    return _record(rows[0])


def list_experiment_records(store: RunStore) -> list[ExperimentRecord]:
    """Every stored experiment, newest first."""
    rows = store._read("SELECT id, name, created_at, spec FROM experiments ORDER BY created_at DESC, id")
    return [_record(row) for row in rows]


def experiment_names(store: RunStore) -> tuple[tuple[str, str], ...]:
    """(experiment id, name) of every stored experiment, newest first; the specs are not read (the runs list
    polls this)."""
    rows = store._read("SELECT id, name FROM experiments ORDER BY created_at DESC, id")
    return tuple((str(experiment_id), str(name)) for experiment_id, name in rows)


def experiment_runs(store: RunStore, experiment_id: str) -> list[RunRecord]:
    """The runs tagged with `experiment_id`, oldest first (statuses resolved as `RunStore.list_runs` does)."""
    now = time.time()
    rows = store._read(f"SELECT {store._COLUMNS} FROM runs WHERE experiment_id = ? ORDER BY created_at, id",
                       (experiment_id,))
    return [store._record(row, now) for row in rows]


def _record(row: tuple[Any, ...]) -> ExperimentRecord:
    experiment_id, name, created_at, text = row
    try:
        spec = json.loads(text) if text else {}
    except ValueError:
        spec = {}
    return ExperimentRecord(experiment_id=str(experiment_id), name=str(name or ""), created_at=float(created_at),
                            spec=spec if isinstance(spec, dict) else {})
