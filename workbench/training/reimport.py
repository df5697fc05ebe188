"""Runs whose row in runs.sqlite was lost (the file deleted or replaced) re-imported from their folders."""

from __future__ import annotations

import calendar
import time
from pathlib import Path

from workbench.errors import CheckpointError
from workbench.runs import RunStatus, RunStore
from workbench.runs.records import MetricRow
from workbench.training import checkpoint as ckpt

EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_second")


def _created_at(run_id: str, folder: Path) -> float:
    """The creation time encoded in a run id (20250301-142530-7f3a, UTC), else the folder's mtime."""
    try:
        return float(calendar.timegm(time.strptime(run_id[:15], "%Y%m%d-%H%M%S")))
    except ValueError:
        return folder.stat().st_mtime


def reimport_runs(store: RunStore) -> tuple[list[str], list[str]]:
    """Give every orphan run folder (a checkpoint, no row) a row again, from its newest readable checkpoint.
    Returns (imported run ids, one-line problems for folders that could not be read)."""
    imported: list[str] = []
    problems: list[str] = []
    for folder in store.orphan_folders():
        state = None
        for name in (ckpt.LAST_NAME, ckpt.BEST_NAME):
            try:
                state = ckpt.load_checkpoint(folder / name)
                break
            except CheckpointError as exc:
                problems.append(str(exc))
        if state is None:
            continue
        config = dict(state.get("config") or {})
        epoch = int(state.get("epoch", 0))
        done = epoch >= int(config.get("epochs", epoch + 1))
        store.import_run(
            folder.name, status=RunStatus.COMPLETED if done else RunStatus.STOPPED, arch=str(state.get("arch", "?")),
            arch_options=ckpt.decode_options(state.get("arch_options") or {}), dataset=str(state.get("dataset", "?")),
            config=config, device="", created_at=_created_at(folder.name, folder), epochs_completed=epoch,
            best_val_accuracy=state.get("best_val_accuracy"),
            message="Re-imported from its folder; metrics before the last epoch were lost with the old database.",
            dataset_options=ckpt.decode_options(state.get("dataset_options") or {}), data_root=state.get("data_root"),
            input_shape=state.get("input_shape"), num_classes=state.get("num_classes"))
        last = state.get("last") or {}
        store.log_metrics(folder.name, [MetricRow(epoch, 0, k, float(last[k]), time.time())
                                        for k in EPOCH_METRICS if k in last and epoch > 0])
        imported.append(folder.name)
    return imported, problems
