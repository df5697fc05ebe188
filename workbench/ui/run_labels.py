"""How runs are named on the curves: by the name given in the app, else by what differs between the runs shown
together (architecture, options, learning rate, ...), never by a timestamp. Qt-free."""

from __future__ import annotations

from collections.abc import Sequence

from workbench.runs.records import RunRecord
from workbench.runs.table import RunRow, differing_columns, run_table

# Columns whose difference names a run, in the order the parts are written.
LABEL_COLUMNS = ("arch", "options", "dataset", "data_options", "optimizer", "lr", "batch_size", "schedule",
                 "augment", "amp", "device")


def _part(row: RunRow, key: str) -> str:
    text = row.text(key)
    if key in ("options", "data_options"):
        return text if text != "-" else "default options"
    if key == "lr":
        return f"lr {text}"
    if key == "batch_size":
        return f"batch {text}"
    if key == "schedule":
        return f"{text} schedule"
    if key == "augment":
        return f"augment {text}"
    if key == "amp":
        return f"amp {text}"
    return text


def difference_labels(records: Sequence[RunRecord], among: Sequence[RunRecord] = ()) -> dict[str, str]:
    """run_id -> label for `records`, compared with each other and with `among` (e.g. the run training now).

    A named run is labelled by its name. Otherwise: the architecture, then what differs ("lenet, lr 0.01",
    "resnet20 residual=False"); a run compared with nothing reads "lenet on digits"; runs that differ in none of
    LABEL_COLUMNS are numbered in creation order ("lenet on digits #2")."""
    pool = {r.run_id: r for r in (*records, *among)}
    rows = {row.run_id: row for row in run_table(list(pool.values()))}
    keys = differing_columns(list(rows.values()), LABEL_COLUMNS)
    planned = {r.epochs_planned for r in pool.values()}
    labels: dict[str, str] = {}
    for record in records:
        row = rows[record.run_id]
        if record.name:
            labels[record.run_id] = record.name
            continue
        parts = [row.arch + (f" {_part(row, 'options')}" if _varies(rows, row, "options", "arch") else "")]
        parts += [_part(row, k) for k in keys if k not in ("arch", "options", "data_options")]
        if _varies(rows, row, "data_options", "dataset"):
            parts.append(_part(row, "data_options"))
        if len(planned) > 1 and record.epochs_planned is not None:
            parts.append(f"{record.epochs_planned} epochs")
        labels[record.run_id] = ", ".join(parts) if len(parts) > 1 or parts[0] != row.arch or "arch" in keys \
            else f"{row.arch} on {row.dataset}"
    _number_duplicates(labels, records)
    return labels


def _varies(rows: dict[str, RunRow], row: RunRow, key: str, within: str) -> bool:
    """Whether another run of the same `within` (architecture, data set) has a different `key` (its options):
    options of different architectures always differ, and say nothing the architecture does not."""
    return any(r.value(within) == row.value(within) and r.value(key) != row.value(key) for r in rows.values())


def _number_duplicates(labels: dict[str, str], records: Sequence[RunRecord]) -> None:
    seen: dict[str, list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: (r.created_at, r.run_id)):
        if not record.name:
            seen.setdefault(labels[record.run_id], []).append(record)
    for text, same in seen.items():
        if len(same) > 1:
            for index, record in enumerate(same, start=1):
                labels[record.run_id] = f"{text} #{index}"
