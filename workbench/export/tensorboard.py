"""A stored run as TensorBoard event files: its scalars and its hyper-parameters (hparams plugin).

Layout: `<logdir>/<run_id>/events.out.tfevents.*`, so several runs exported into one log dir show side by side
(`tensorboard --logdir DIR`). Epoch metrics are written as `epoch/<name>` at their epoch, step metrics
(`step_loss`, ...) as `step/<name>` at their global step, and the best validation accuracy as
`run/best_val_accuracy` at the last epoch. Only a SessionStartInfo/SessionEndInfo pair is written, no
Experiment summary: TensorBoard then builds the hparams table from every run in the log dir (union of columns),
whereas one run's Experiment summary would hide the others' hyper-parameters.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from workbench.export.common import ExportError, ExportResult, atomic_folder, require_extra

STEP_PREFIX = "step_"
BEST_TAG = "run/best_val_accuracy"
DEFAULT_LOGDIR = "tensorboard"


def scalar_tag(name: str) -> str:
    """The TensorBoard tag of a stored metric: `step_loss` -> `step/loss`, `val_accuracy` -> `epoch/val_accuracy`."""
    return f"step/{name[len(STEP_PREFIX):]}" if name.startswith(STEP_PREFIX) else f"epoch/{name}"


def run_hparams(record: Any) -> dict[str, bool | int | float | str]:
    """The hyper-parameters of a run as TensorBoard wants them: architecture, its options (`arch.<key>`), data
    set and its options (`data.<key>`), then every training setting. None values are left out; tuples, lists
    and dicts become compact text."""
    items: dict[str, Any] = {"arch": record.arch}
    items.update({f"arch.{k}": v for k, v in sorted(record.arch_options.items())})
    items["dataset"] = record.dataset
    items.update({f"data.{k}": v for k, v in sorted((record.dataset_options or {}).items())})
    items.update({k: v for k, v in record.config.items() if k not in items})
    return {k: _hparam_value(v) for k, v in items.items() if v is not None}


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def export_tensorboard(run_id: str, *, workspace: Path | str | None = None, out: Path | str | None = None,
                       overwrite: bool = False) -> ExportResult:
    """Write run `run_id`'s scalars and hyper-parameters as event files in `<out>/<run_id>/` (out defaults to
    `./tensorboard`). The folder appears complete or not at all. Needs the `tensorboard` extra."""
    require_extra("tensorboard", "TensorBoard export")
    from workbench.training.restore import open_store

    store = open_store(workspace)
    try:
        record = store.get_run(run_id)
        metrics = store.metrics(run_id)
    finally:
        store.close()
    logdir = Path(out).expanduser() if out is not None else Path.cwd() / DEFAULT_LOGDIR
    if logdir.exists() and not logdir.is_dir():
        raise ExportError(f"{logdir} is a file; give --out a folder for the TensorBoard logs.")
    folder = (logdir / run_id).absolute()
    start = time.perf_counter()
    with atomic_folder(folder, overwrite=overwrite) as tmp:
        counts = _write_events(tmp, record, metrics)
    files = tuple(sorted(p for p in folder.iterdir() if p.is_file()))
    if not files:
        raise ExportError(f"TensorBoard wrote no event file in {folder}; check the folder is writable.")
    return ExportResult(format="tensorboard", path=folder, files=files, arch=record.arch,
                        bytes=sum(p.stat().st_size for p in files),
                        seconds=time.perf_counter() - start, run_id=run_id, checkpoint=None,
                        details={"logdir": str(logdir.absolute()), **counts})


def _write_events(folder: Path, record: Any, metrics: dict[str, list[tuple[int, int, float]]]) -> dict[str, int]:
    from torch.utils.tensorboard import SummaryWriter

    hparams = run_hparams(record)
    scalars, last_epoch = 0, 0
    tags: set[str] = set()
    writer = SummaryWriter(log_dir=str(folder))
    try:
        fw = writer._get_file_writer()
        fw.add_summary(_session_start(hparams, record), 0)
        for name, rows in sorted(metrics.items()):
            tag = scalar_tag(name)
            for epoch, step, value in rows:
                at = step if name.startswith(STEP_PREFIX) else epoch
                writer.add_scalar(tag, value, at)
                scalars += 1
                tags.add(tag)
                if not name.startswith(STEP_PREFIX):
                    last_epoch = max(last_epoch, epoch)
        best = record.best_val_accuracy
        if best is not None and math.isfinite(best):
            writer.add_scalar(BEST_TAG, best, max(last_epoch, record.epochs_completed))
            scalars += 1
            tags.add(BEST_TAG)
        end = _session_end(record)
        if end is not None:
            fw.add_summary(end, max(last_epoch, record.epochs_completed))
        writer.flush()
    finally:
        writer.close()
    return {"scalars": scalars, "hparams": len(hparams), "tags": len(tags)}


def _session_start(hparams: dict[str, bool | int | float | str], record: Any) -> Any:
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionStartInfo(group_name=record.run_id, start_time_secs=float(record.created_at))
    for key, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[key].number_value = float(value)
        else:
            info.hparams[key].string_value = value
    return _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def _session_end(record: Any) -> Any:
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    status = {"completed": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
              "diverged": api_pb2.STATUS_FAILURE, "stopped": api_pb2.STATUS_UNKNOWN,
              "interrupted": api_pb2.STATUS_UNKNOWN}.get(str(record.status))
    if status is None:  # still running: no end yet
        return None
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=float(record.finished_at or record.updated_at))
    return _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _summary(tag: str, data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])
