"""What a run is trained with: a new job's settings, or a resumed run's own (checkpoint or record) settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import InvalidOptionError
from workbench.models.init import as_recorded
from workbench.runs.records import RunRecord
from workbench.training import checkpoint as ckpt
from workbench.training.config import RESUME_OVERRIDES, TrainConfig, TrainJob
from workbench.training.restore import checkpoint_path


@dataclass
class Settings:
    """The names, options, config and data a run trains with (before validation)."""

    arch: str
    dataset: str
    options: dict[str, Any]
    data_options: dict[str, Any]
    config: TrainConfig
    data_root: Path | None
    input_shape: tuple[int, int, int] | None
    num_classes: int | None
    state: dict[str, Any] | None = None
    classes: tuple[str, ...] | None = None      # the resumed run's class names (its data must have the same)


def new_settings(job: TrainJob) -> Settings:
    return Settings(
        arch=job.arch, dataset=job.dataset, options=dict(job.arch_options or {}),
        data_options=dict(job.dataset_options or {}), config=job.config,
        data_root=Path(job.data_root).expanduser() if job.data_root is not None else None,
        input_shape=tuple(int(v) for v in job.input_override) if job.input_override else None,  # type: ignore[arg-type]
        num_classes=job.num_classes_override)


def resume_settings(job: TrainJob, record: RunRecord) -> Settings:
    """A resumed run's own settings (its checkpoint's, else its record's when it was stopped before writing one);
    only RESUME_OVERRIDES may change, and the data must be the same."""
    state = _resume_checkpoint(record, job.resume_from)
    source: dict[str, Any] = state or {}
    config = TrainConfig.from_dict(dict(source.get("config") or record.config))
    bad = sorted(set(job.resume_overrides) - set(RESUME_OVERRIDES))
    if bad:
        raise InvalidOptionError(f"A resumed run keeps its settings except {', '.join(RESUME_OVERRIDES)}; "
                                 f"cannot change {', '.join(bad)}.")
    if job.resume_overrides:
        config = config.replace(**job.resume_overrides)
    stored_root = source.get("data_root") or record.data_root
    data_root = Path(stored_root) if stored_root else None
    if job.data_root is not None and _resolved(job.data_root) != _resolved(data_root):
        raise InvalidOptionError(f"--data-root {job.data_root} is not the data run {record.run_id} trained on "
                                 f"({data_root or 'the default data root'}); a resumed run reads the same data, "
                                 "so leave --data-root out.")
    shape = source.get("input_shape") or record.input_shape
    classes = source.get("num_classes") or record.num_classes
    arch = str(source.get("arch") or record.arch)
    return Settings(
        arch=arch, dataset=str(source.get("dataset") or record.dataset),
        options=as_recorded(arch, ckpt.decode_options(source.get("arch_options") or record.arch_options)),
        data_options=ckpt.decode_options(source.get("dataset_options") or record.dataset_options or {}),
        config=config, data_root=data_root,
        input_shape=tuple(int(v) for v in shape) if shape else None,  # type: ignore[arg-type]
        num_classes=int(classes) if classes else None, state=state,
        classes=tuple(str(c) for c in source["classes"]) if source.get("classes") else None)


def _resume_checkpoint(record: RunRecord, which: str) -> dict[str, Any] | None:
    """The checkpoint to continue from, checked for damage; None when the run stopped before writing one."""
    folder = record.folder
    path = checkpoint_path(folder, which)
    if not path.is_file():
        if which == "best":
            raise ckpt.CheckpointError(f"Run {record.run_id} has no best checkpoint; resume from the last one.")
        if checkpoint_path(folder, "best").is_file():
            raise ckpt.CheckpointError(
                f"Run {record.run_id} has no last checkpoint; resume from the best one with "
                f"`workbench train --resume {record.run_id} --resume-from best`.")
        return None  # killed or out of disk before its first checkpoint: train it again from epoch 1
    try:
        return ckpt.check_resume_state(ckpt.load_checkpoint(path), path)
    except ckpt.CheckpointError as exc:
        other = "best" if which == "last" else "last"
        other_path = checkpoint_path(folder, other)
        usable = other_path.is_file() and _loads_cleanly(other_path)
        advice = (f"resume from the {other} checkpoint with `workbench train --resume {record.run_id} "
                  f"--resume-from {other}`" if usable else "no other checkpoint of this run is usable; start a new "
                  "run")
        raise ckpt.CheckpointError(f"{exc} To continue, {advice}.") from None


def _loads_cleanly(path: Path) -> bool:
    try:
        ckpt.check_resume_state(ckpt.load_checkpoint(path), path)
    except ckpt.CheckpointError:
        return False
    return True


def _resolved(path: Path | str | None) -> Path | None:
    return Path(path).expanduser().resolve() if path is not None else None
