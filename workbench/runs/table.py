"""The runs table: one row of hyper-parameters and results per run, and "show only what differs".

Rows are built from `RunRecord`s alone (no torch, no checkpoint read), so the table fills at once. The parameter
count is not stored: `parameter_count(record)` computes it on demand (imports torch) by building the run's
architecture on the meta device, from the input shape and class count the run trained with (the record's; for
older runs its checkpoint's header); counts are cached per (arch, options, input shape, classes). `run_table(records,
parameters=True)` fills the column, or pass counts computed elsewhere (e.g. in a worker thread).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.runs.records import RunRecord


@dataclass(frozen=True)
class RunColumn:
    """One column of the runs table: its key (a RunRow field), its heading, and whether it sorts as a number."""

    key: str
    title: str
    numeric: bool = False


RUN_COLUMNS: tuple[RunColumn, ...] = (
    RunColumn("run_id", "Run"),
    RunColumn("name", "Name"),
    RunColumn("status", "Status"),
    RunColumn("arch", "Architecture"),
    RunColumn("options", "Options"),
    RunColumn("dataset", "Data set"),
    RunColumn("data_options", "Data options"),
    RunColumn("epochs", "Epochs", numeric=True),
    RunColumn("batch_size", "Batch", numeric=True),
    RunColumn("optimizer", "Optimizer"),
    RunColumn("lr", "Learning rate", numeric=True),
    RunColumn("schedule", "Schedule"),
    RunColumn("augment", "Augmentation"),
    RunColumn("amp", "AMP"),
    RunColumn("device", "Device"),
    RunColumn("parameters", "Parameters", numeric=True),
    RunColumn("best_val_accuracy", "Best val acc", numeric=True),
    RunColumn("seconds", "Time", numeric=True),
    RunColumn("created_at", "Created", numeric=True),
)
COLUMN_KEYS: tuple[str, ...] = tuple(c.key for c in RUN_COLUMNS)
# Flat fields for CSV/JSON export: the columns, with `epochs` as its two numbers.
EXPORT_FIELDS: tuple[str, ...] = tuple(
    f for k in COLUMN_KEYS for f in (("epochs_completed", "epochs_planned") if k == "epochs" else (k,)))


@dataclass(frozen=True)
class RunRow:
    """One run as the table shows it. `value(key)` sorts, `text(key)` displays, `to_dict()` exports (CSV/JSON).

    `seconds` is the wall-clock time from creation to the end (or the last update of a run still going); a
    resumed run's pause counts. `parameters` is None until counted (see `parameter_count`).
    """

    run_id: str
    name: str
    status: str
    arch: str
    options: str                       # compact "key=value, ..." of the architecture options
    dataset: str
    data_options: str
    epochs_completed: int
    epochs_planned: int | None
    batch_size: int | None
    optimizer: str
    lr: float | None
    schedule: str
    augment: bool | None
    amp: str
    device: str
    parameters: int | None
    best_val_accuracy: float | None
    seconds: float | None
    created_at: float

    def value(self, key: str) -> Any:
        """The sortable value of column `key` (None for unknown; `epochs` sorts on the completed count)."""
        if key == "epochs":
            return self.epochs_completed
        return getattr(self, key)

    def text(self, key: str) -> str:
        """The display text of column `key`."""
        value = self.value(key)
        if key == "epochs":
            return f"{self.epochs_completed}/{self.epochs_planned}" if self.epochs_planned is not None \
                else str(self.epochs_completed)
        if value is None or value == "":
            return "-"
        if key == "best_val_accuracy":
            return f"{100 * value:.2f}%"
        if key == "lr":
            return f"{value:g}"
        if key == "augment":
            return "on" if value else "off"
        if key == "parameters":
            return f"{value:,}"
        if key == "seconds":
            return format_seconds(value)
        if key == "created_at":
            import time

            return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
        return str(value)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (non-finite numbers as None), one key per RunRow field."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def format_seconds(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def compact(options: Mapping[str, Any] | None) -> str:
    """`key=value, ...` with Python-literal values, tuples and lists without spaces: `arch=((2,64),(2,128))`."""
    return ", ".join(f"{k}={_literal(v)}" for k, v in (options or {}).items())


def _literal(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_row(record: RunRecord, *, parameters: int | None = None) -> RunRow:
    """The table row of one run (`parameters`: a count computed elsewhere, or None)."""
    cfg = record.config or {}
    end = record.finished_at if record.finished_at is not None else record.updated_at
    seconds = max(0.0, float(end) - float(record.created_at)) if end is not None else None
    best = record.best_val_accuracy
    return RunRow(
        run_id=record.run_id, name=record.name, status=str(record.status), arch=record.arch,
        options=compact(record.arch_options), dataset=record.dataset, data_options=compact(record.dataset_options),
        epochs_completed=int(record.epochs_completed), epochs_planned=record.epochs_planned,
        batch_size=_int(cfg.get("batch_size")), optimizer=str(cfg.get("optimizer") or ""), lr=_float(cfg.get("lr")),
        schedule=str(cfg.get("schedule") or ""), augment=cfg.get("augment") if isinstance(cfg.get("augment"), bool)
        else None, amp=str(cfg.get("amp") or ""), device=record.device or str(cfg.get("device") or ""),
        parameters=parameters, best_val_accuracy=best if best is None or math.isfinite(best) else None,
        seconds=seconds, created_at=float(record.created_at))


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_table(records: Sequence[RunRecord], *, parameters: bool | Mapping[str, int | None] = False) -> list[RunRow]:
    """One row per record, in the records' order. `parameters`: False leaves the column empty, True counts
    them here (imports torch; cached), a mapping run_id -> count uses counts computed elsewhere."""
    if parameters is True:
        counts: Mapping[str, int | None] = {r.run_id: parameter_count(r) for r in records}
    elif parameters is False:
        counts = {}
    else:
        counts = parameters
    return [run_row(r, parameters=counts.get(r.run_id)) for r in records]


def differing_columns(rows: Sequence[RunRow], columns: Sequence[str] = COLUMN_KEYS) -> list[str]:
    """The keys of `columns` whose values are not the same in every row ("show only what differs"), in column
    order; empty for fewer than two rows. `epochs` compares completed and planned counts."""
    if len(rows) < 2:
        return []
    result = []
    for key in columns:
        values = {(r.epochs_completed, r.epochs_planned) if key == "epochs" else r.value(key) for r in rows}
        if len(values) > 1:
            result.append(key)
    return result


def parameter_count(record: RunRecord) -> int | None:
    """Trainable + frozen parameters of the run's model (None when its input shape is unknown or the
    architecture cannot be built here, e.g. it was registered by a plug-in that is not loaded)."""
    shape = _trained_shape(record)
    if shape is None:
        return None
    input_shape, num_classes = shape
    options = json.dumps(record.arch_options, sort_keys=True, default=str)
    return _count(record.arch, options, input_shape, num_classes)


def _trained_shape(record: RunRecord) -> tuple[tuple[int, int, int], int] | None:
    """(input shape, classes) from the record, else (runs stored before the store kept them) from the header of
    a checkpoint."""
    shape, classes = record.input_shape, record.num_classes
    if shape and len(shape) == 3 and classes:
        c, h, w = (int(v) for v in shape)
        return (c, h, w), int(classes)
    for name in ("last.pt", "best.pt"):
        path = Path(record.folder) / name
        if path.is_file():
            found = _checkpoint_shape(str(path), path.stat().st_mtime_ns)
            if found is not None:
                return found
    return None


@functools.lru_cache(maxsize=256)
def _checkpoint_shape(path: str, mtime_ns: int) -> tuple[tuple[int, int, int], int] | None:
    import torch

    try:  # mmap: only the pickled header is read, the weights stay on disk
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        c, h, w = (int(v) for v in state["input_shape"])
        return (c, h, w), int(state["num_classes"])
    except Exception:  # damaged or foreign file: the count just stays unknown
        return None


@functools.lru_cache(maxsize=256)
def _count(arch: str, options: str, input_shape: tuple[int, int, int], num_classes: int) -> int | None:
    from workbench.errors import WorkbenchError
    from workbench.models import build_model

    try:
        model = build_model(arch, num_classes=num_classes, input_shape=input_shape, options=json.loads(options),
                            device="meta")
    except WorkbenchError:
        return None
    return sum(p.numel() for p in model.parameters())
