"""Where an experiment stands: each variant matched to its run, with the run's results and the model's size.

Split from `experiment.py` (which re-exports everything public here); this module does not import it at load time.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.json_tags import plain
from workbench.runs.records import RunRecord, RunStatus
from workbench.training.config import RESUME_OVERRIDES, TrainConfig

if TYPE_CHECKING:
    from workbench.runs.store import RunStore
    from workbench.training.experiment import ExperimentPlan, Variant

QUEUED = "queued"   # the status of a variant that has no run yet
# Fields that pick hardware, not what is learned: left out of the id, and a resumed variant may change them.
HARDWARE_FIELDS = RESUME_OVERRIDES


@dataclass(frozen=True)
class VariantStatus:
    """Where one variant stands: its run (None while queued) and that run's results and model size."""

    index: int                      # 0-based position in the queue
    arch: str
    label: str                      # e.g. "resnet20 residual=False" (also the run's name)
    options: dict[str, Any]         # resolved architecture options, JSON-ready
    varied: dict[str, Any]          # the --vary values of this variant
    run_id: str | None
    status: str                     # "queued" or the run's status (running, completed, stopped, ...)
    epochs_completed: int
    best_val_accuracy: float | None
    train_seconds: float | None     # the training loop's time (validation excluded), from the run's checkpoint
    images_per_second: float | None
    params: int | None              # from workbench.models.summarize on the meta device
    mult_adds: int | None

    @property
    def to_train(self) -> bool:
        """True while the variant still has training to do (no run, or a run that can be resumed)."""
        return self.status == QUEUED or RunStatus(self.status).can_resume

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (one entry of `runs` in `workbench experiment --json`)."""
        return plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class ExperimentStatus:
    """An experiment and its variants, in queue order."""

    experiment_id: str
    name: str
    dataset: str
    created_at: float | None
    variants: tuple[VariantStatus, ...]

    @property
    def queued(self) -> tuple[VariantStatus, ...]:
        """Variants still to train (no run yet, or a stopped, interrupted or failed run to resume)."""
        return tuple(v for v in self.variants if v.to_train)

    @property
    def finished(self) -> bool:
        """True when every variant has completed or diverged."""
        return all(v.status in (RunStatus.COMPLETED, RunStatus.DIVERGED) for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: `{experiment_id, name, dataset, created_at, runs: [VariantStatus.to_dict(), ...]}`."""
        return {"experiment_id": self.experiment_id, "name": self.name, "dataset": self.dataset,
                "created_at": self.created_at, "runs": [v.to_dict() for v in self.variants]}


def experiment_status(store: RunStore, experiment_id: str, *, sizes: bool = True) -> ExperimentStatus:
    """The stored experiment's variants with their runs (UnknownNameError when there is none); `sizes=False`
    skips the parameter and Mult-Add counts (each new network costs a summary on the meta device)."""
    from workbench.runs.experiments import get_experiment
    from workbench.training.experiment import plan_from_record

    record = get_experiment(store, experiment_id)
    return status_of(store, plan_from_record(record, workspace=store.workspace), sizes=sizes,
                     created_at=record.created_at)


def list_experiments(store: RunStore, *, sizes: bool = False) -> list[ExperimentStatus]:
    """Every experiment of the workspace, newest first (experiments of an unknown format are left out)."""
    from workbench.runs.experiments import list_experiment_records
    from workbench.training.experiment import plan_from_record

    result = []
    for record in list_experiment_records(store):
        try:
            plan = plan_from_record(record, workspace=store.workspace)
        except WorkbenchError:
            continue
        result.append(status_of(store, plan, sizes=sizes, created_at=record.created_at))
    return result


def status_of(store: RunStore, plan: ExperimentPlan, *, sizes: bool = True,
              created_at: float | None = None) -> ExperimentStatus:
    """The plan's variants with the runs the store holds for them."""
    from workbench.runs.experiments import experiment_runs

    runs = match_runs(plan.variants, experiment_runs(store, plan.experiment_id))
    rows = tuple(_variant_status(v, runs.get(v.index), plan.spec, sizes) for v in plan.variants)
    return ExperimentStatus(experiment_id=plan.experiment_id, name=plan.name, dataset=plan.dataset,
                            created_at=created_at, variants=rows)


def match_runs(variants: Sequence[Variant], runs: Sequence[RunRecord]) -> dict[int, RunRecord]:
    """Variant index -> its run: a run of the same architecture, resolved options and configuration (hardware
    aside). Of several, the newest completed one, else the newest."""
    by_identity: dict[str, list[RunRecord]] = {}
    for record in runs:
        key = record_identity(record)
        if key is not None:
            by_identity.setdefault(key, []).append(record)
    found: dict[int, RunRecord] = {}
    for variant in variants:
        candidates = sorted(by_identity.get(variant.identity(), []), key=lambda r: (r.created_at, r.run_id))
        done = [r for r in candidates if r.status == RunStatus.COMPLETED]
        if done or candidates:
            found[variant.index] = (done or candidates)[-1]
    return found


def record_identity(record: RunRecord) -> str | None:
    """The variant identity of a stored run (None when its options or config no longer resolve)."""
    from workbench.models import resolve_options
    from workbench.models.init import as_recorded

    try:
        options = resolve_options(record.arch, as_recorded(record.arch, record.arch_options))
        config = TrainConfig.from_dict(record.config).to_dict()
    except WorkbenchError:
        return None
    return identity(record.arch, options, config)


def identity(arch: str, options: dict[str, Any], config: dict[str, Any]) -> str:
    """What makes two runs the same variant: architecture, resolved options, configuration without hardware."""
    config = {k: v for k, v in config.items() if k not in HARDWARE_FIELDS}
    return json.dumps({"arch": arch, "options": plain(options), "config": config}, sort_keys=True,
                      separators=(",", ":"), default=str)


def _variant_status(variant: Variant, run: RunRecord | None, stored: dict[str, Any], sizes: bool) -> VariantStatus:
    params = mult_adds = None
    if sizes:
        shape, classes = planned_shape(variant, stored)
        if run is not None and run.input_shape and len(run.input_shape) == 3 and run.num_classes:
            shape, classes = (int(run.input_shape[0]), int(run.input_shape[1]), int(run.input_shape[2])), \
                run.num_classes
        if classes:
            params, mult_adds = model_size(variant.arch, variant.options, shape, classes)
    ips = run.final_metrics.get("images_per_second") if run is not None else None
    return VariantStatus(
        index=variant.index, arch=variant.arch, label=variant.label, options=plain(variant.options),
        varied=plain(variant.varied), run_id=run.run_id if run else None,
        status=str(run.status) if run else QUEUED, epochs_completed=run.epochs_completed if run else 0,
        best_val_accuracy=run.best_val_accuracy if run else None,
        train_seconds=train_seconds(run.folder) if run else None,
        images_per_second=float(ips) if isinstance(ips, (int, float)) else None, params=params, mult_adds=mult_adds)


def planned_shape(variant: Variant, stored: dict[str, Any]) -> tuple[tuple[int, int, int], int | None]:
    """The (C, H, W) input and class count a variant trains with, as far as known before its data is read."""
    from workbench.data import get_dataset
    from workbench.models import get_spec

    shape = stored.get("input_shape")
    if shape:
        c, h, w = (int(v) for v in shape)
    else:
        c, h, w = get_spec(variant.arch).natural_input_for(variant.options)
        side = variant.config.image_size
        h, w = (side, side) if side else (h, w)
    classes = stored.get("num_classes") or (stored.get("dataset_options") or {}).get("num_classes")
    if not isinstance(classes, int):
        classes = get_dataset(variant.job.dataset).num_classes or None
    return (c, h, w), classes


def model_size(arch: str, options: dict[str, Any], input_shape: Sequence[int], num_classes: int, *,
               strict: bool = False) -> tuple[int | None, int | None]:
    """(parameters, Mult-Adds) from `workbench.models.summarize` on the meta device, cached; (None, None) when the
    network cannot be built at that input (or, with strict=True, that WorkbenchError)."""
    key = json.dumps([arch, plain(options), [int(v) for v in input_shape], int(num_classes)], sort_keys=True,
                     default=str)
    if key not in _SIZES:
        from workbench.models import summarize

        c, h, w = (int(v) for v in input_shape)
        try:
            totals = summarize(arch, input_shape=(c, h, w), num_classes=int(num_classes), options=options).totals
        except WorkbenchError:
            if strict:
                raise
            return None, None
        _SIZES[key] = (int(totals.total_params), int(totals.mult_adds))
    return _SIZES[key]


_SIZES: dict[str, tuple[int, int]] = {}


def train_seconds(folder: Path) -> float | None:
    """The training loop's seconds over the whole run (validation excluded) from its last checkpoint's header."""
    path = Path(folder) / "last.pt"
    try:
        return _checkpoint_seconds(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _checkpoint_seconds(path: str, mtime_ns: int) -> float | None:
    import torch

    try:   # mmap: only the pickled header is read, the weights stay on disk
        value = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("train_seconds")
    except Exception:   # damaged or foreign file: the time just stays unknown
        return None
    return float(value) if isinstance(value, (int, float)) else None
