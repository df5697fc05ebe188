"""Controlled experiments: a queue of runs that differ only in what is varied, trained one after another.

Every variant trains on the same data with the same seed and budget. Each architecture starts from its
recommended recipe (`recommended_config`, as `workbench train` does) under the options the user gave; where those
starting points disagree on a budget field (BUDGET_FIELDS: epochs, batch size, batch cap, seed, validation
fraction) every variant uses the general default instead, so no variant sees more data or steps than another.

The experiment's id is a hash of its normalised specification (dataset, data options and folder, input, classes,
and every variant's architecture, resolved options and configuration without the hardware fields), so running
the same command again finds the same experiment: completed (and diverged) variants are skipped, a stopped,
interrupted or failed one is resumed from its checkpoint, and the rest are trained. Variants are matched to their
runs by content (architecture, resolved options, configuration), not by position.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InvalidOptionError, WorkbenchError, suggest
from workbench.json_tags import plain
from workbench.runs.records import RunStatus
from workbench.training.config import TrainConfig, TrainJob, recommended_config
from workbench.training.experiment_status import (
    HARDWARE_FIELDS,
    QUEUED,
    ExperimentStatus,
    VariantStatus,
    experiment_status,
    identity,
    list_experiments,
    match_runs,
    model_size,
    planned_shape,
    status_of,
)

if TYPE_CHECKING:
    from workbench.runs.experiments import ExperimentRecord
    from workbench.training.callbacks import Callback
    from workbench.training.control import TrainControl
    from workbench.training.job import ProgressFn

__all__ = ["BUDGET_FIELDS", "HARDWARE_FIELDS", "QUEUED", "ExperimentPlan", "ExperimentSpec", "ExperimentStatus",
           "Variant", "VariantEvent", "VariantStatus", "experiment_id", "experiment_status", "list_experiments",
           "plan_experiment", "plan_from_record", "run_experiment"]

# Fields that bound how much a run trains; equal for every variant unless varied.
BUDGET_FIELDS = ("epochs", "batch_size", "max_batches", "seed", "val_fraction")
SPEC_FORMAT = 1


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment trains, as asked: architectures, the varied keys and the options every variant shares."""

    archs: tuple[str, ...]
    dataset: str
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()            # (key, values) in grid order
    arch_options: dict[str, dict[str, Any]] = field(default_factory=dict)   # per architecture (--set)
    train_options: dict[str, Any] = field(default_factory=dict)   # explicit TrainConfig values for every variant
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return plain(dataclasses.asdict(self))


@dataclass(frozen=True, eq=False)
class Variant:
    """One queued run: its architecture, resolved options, the varied values and the TrainJob that trains it."""

    index: int                      # 0-based position in the queue
    arch: str
    options: dict[str, Any]         # resolved architecture options
    varied: dict[str, Any]          # key -> value of each --vary key
    label: str                      # e.g. "resnet20 residual=False"; also the run's name
    job: TrainJob                   # a new run; see `job_for`

    @property
    def config(self) -> TrainConfig:
        """The variant's training configuration."""
        return self.job.config

    def identity(self) -> str:
        """What makes two runs the same variant: architecture, resolved options, configuration without hardware."""
        return identity(self.arch, self.options, self.config.to_dict())

    def job_for(self, resume_run_id: str | None) -> TrainJob:
        """The job that trains this variant: a new run, or the resume of `resume_run_id` on the current hardware."""
        if resume_run_id is None:
            return self.job
        hardware = {k: getattr(self.config, k) for k in HARDWARE_FIELDS}
        return dataclasses.replace(self.job, resume_run_id=resume_run_id, resume_overrides=hardware,
                                   data_root=None)


@dataclass(frozen=True, eq=False)
class ExperimentPlan:
    """The queue: the experiment's id and name, and its variants as TrainJobs (tagged with the id)."""

    experiment_id: str
    name: str
    dataset: str
    variants: tuple[Variant, ...]
    workspace: Path | None
    spec: dict[str, Any]            # what the store keeps: the request and the resolved variants


@dataclass(frozen=True)
class VariantEvent:
    """Sent by `run_experiment` as the queue advances: a variant skipped (already done), started or finished."""

    experiment_id: str
    index: int
    total: int
    arch: str
    label: str
    phase: str                      # "skipped" | "started" | "finished"
    run_id: str | None              # None for a new run that has not started yet
    status: str | None              # the run's status when skipped or finished
    resumed: bool = False           # started: continues a stopped run from its checkpoint


# --- planning -----------------------------------------------------------------------------------------------


def plan_experiment(spec: ExperimentSpec, *, workspace: Path | None = None, download: bool = False) -> ExperimentPlan:
    """Check the specification and expand it into variants (architectures x the --vary grid).

    Every bad input raises WorkbenchError here, before anything trains: unknown names, a --vary key that is
    neither an option of every listed architecture nor a training option, bad values, inputs too small for a
    network (each variant is summarised on the meta device).
    """
    from workbench.data import get_dataset
    from workbench.models import get_spec, resolve_options
    from workbench.training.job_data import check_classes_option

    if not spec.archs:
        raise InvalidOptionError("An experiment needs at least one architecture (--arch NAME).")
    arch_names = {a: {o.name for o in get_spec(a).options} for a in spec.archs}
    get_dataset(spec.dataset)
    check_classes_option(spec.num_classes)
    for arch in spec.arch_options:
        if arch not in arch_names:
            raise InvalidOptionError(f"Options are given for {arch!r}, which is not among the experiment's "
                                     f"architectures ({', '.join(spec.archs)}).")
    kinds = _vary_kinds(spec, arch_names)
    base = recommended_config("", spec.dataset, spec.train_options)
    drafts: list[tuple[str, dict[str, Any], dict[str, Any], TrainConfig]] = []
    for arch in spec.archs:
        for combo in itertools.product(*(values for _, values in spec.vary)):
            varied = {key: value for (key, _), value in zip(spec.vary, combo, strict=True)}
            arch_varied = {k: v for k, v in varied.items() if kinds[k] == "arch"}
            train_varied = {k: v for k, v in varied.items() if kinds[k] == "train"}
            options = resolve_options(arch, {**spec.arch_options.get(arch, {}), **arch_varied})
            config = recommended_config(arch, spec.dataset, {**spec.train_options, **train_varied})
            drafts.append((arch, options, varied, config))
    drafts = _same_budget(drafts, base, {k for k, kind in kinds.items() if kind == "train"})
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for arch, options, varied, config in drafts:
        key = identity(arch, options, config.to_dict())
        if key in seen:   # e.g. --vary residual=True,True
            continue
        seen.add(key)
        rows.append({"arch": arch, "options": plain(options), "config": config.to_dict(), "varied": plain(varied),
                     "label": _label(arch, varied)})
    stored = {"format": SPEC_FORMAT, "request": spec.to_dict(), "dataset": spec.dataset,
              "dataset_options": plain(spec.dataset_options), "data_root": _root_text(spec.data_root),
              "input_shape": list(spec.input_shape) if spec.input_shape else None, "num_classes": spec.num_classes,
              "variants": rows}
    plan = _plan_from_stored(experiment_id(stored), spec.name, stored, workspace=workspace, download=download)
    for variant in plan.variants:   # an input too small for one network fails now, not hours into the queue
        shape, classes = planned_shape(variant, stored)
        model_size(variant.arch, variant.options, shape, classes or 10, strict=True)
    return plan


def plan_from_record(record: ExperimentRecord, *, workspace: Path | None = None, download: bool = False,
                     hardware: dict[str, Any] | None = None) -> ExperimentPlan:
    """The plan of a stored experiment (to continue it): its variants as stored, on `hardware` when given
    (device, amp, channels_last for the variants still to train)."""
    spec = record.spec
    if spec.get("format") != SPEC_FORMAT or not isinstance(spec.get("variants"), list):
        raise InvalidOptionError(f"Experiment {record.experiment_id} was stored by another version of CNN "
                                 "Workbench; run its command again to start it afresh.")
    bad = sorted(set(hardware or {}) - set(HARDWARE_FIELDS))
    if bad:
        raise InvalidOptionError(f"A continued experiment keeps its settings except {', '.join(HARDWARE_FIELDS)}; "
                                 f"cannot change {', '.join(bad)}.")
    if hardware:
        spec = {**spec, "variants": [{**row, "config": {**row["config"], **hardware}} for row in spec["variants"]]}
    return _plan_from_stored(record.experiment_id, record.name, spec, workspace=workspace, download=download)


def experiment_id(stored: dict[str, Any]) -> str:
    """`exp-` and 12 hex digits of the SHA-256 of the normalised specification (hardware fields left out)."""
    key = {k: stored[k] for k in ("dataset", "dataset_options", "data_root", "input_shape", "num_classes")}
    key["variants"] = [json.loads(identity(r["arch"], r["options"], r["config"])) for r in stored["variants"]]
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return "exp-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _plan_from_stored(exp_id: str, name: str, stored: dict[str, Any], *, workspace: Path | None,
                      download: bool) -> ExperimentPlan:
    from workbench.models import resolve_options
    from workbench.models.init import as_recorded

    root = stored.get("data_root")
    shape = stored.get("input_shape")
    variants = []
    for index, row in enumerate(stored["variants"]):
        arch = str(row["arch"])
        try:   # JSON turned tuples into lists; the registry turns them back
            options = resolve_options(arch, as_recorded(arch, row["options"]))
        except WorkbenchError:
            options = dict(row["options"])
        job = TrainJob(arch=arch, dataset=str(stored["dataset"]), arch_options=options,
                       config=TrainConfig.from_dict(row["config"]), data_root=Path(root) if root else None,
                       download=download, workspace=workspace, name=str(row["label"]),
                       input_override=tuple(int(v) for v in shape) if shape else None,  # type: ignore[arg-type]
                       num_classes_override=stored.get("num_classes"),
                       dataset_options=dict(stored.get("dataset_options") or {}), experiment_id=exp_id)
        variants.append(Variant(index=index, arch=arch, options=options, varied=dict(row.get("varied") or {}),
                                label=str(row["label"]), job=job))
    return ExperimentPlan(experiment_id=exp_id, name=name, dataset=str(stored["dataset"]),
                          variants=tuple(variants), workspace=workspace, spec=stored)


def _vary_kinds(spec: ExperimentSpec, arch_names: dict[str, set[str]]) -> dict[str, str]:
    """Each --vary key as "arch" (an option of every architecture) or "train" (a TrainConfig field)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kinds: dict[str, str] = {}
    for key, values in spec.vary:
        if key in kinds:
            raise InvalidOptionError(f"--vary {key} is given twice; list all its values in one --vary {key}=A,B.")
        if not values:
            raise InvalidOptionError(f"--vary {key} needs at least one value, e.g. --vary {key}=A,B.")
        having = [a for a in spec.archs if key in arch_names[a]]
        if key in HARDWARE_FIELDS:
            raise InvalidOptionError(f"--vary {key} changes where a run trains, not what it learns; compare "
                                     "devices with `workbench compare --measure` instead.")
        if having and key in fields:
            raise InvalidOptionError(f"--vary {key} is ambiguous: it is a training option and an option of "
                                     f"{', '.join(having)}; rename one of them.")
        if len(having) == len(spec.archs):
            kinds[key] = "arch"
            if any(key in spec.arch_options.get(a, {}) for a in spec.archs):
                raise InvalidOptionError(f"{key} is both set (--set) and varied (--vary); drop one of them.")
        elif key in fields:
            kinds[key] = "train"
            if key in spec.train_options:
                raise InvalidOptionError(f"{key} is both given (--{key.replace('_', '-')}) and varied (--vary); "
                                         "drop one of them.")
        elif having:
            missing = [a for a in spec.archs if a not in having]
            raise InvalidOptionError(f"--vary {key}: {key!r} is an option of {', '.join(having)} but not of "
                                     f"{', '.join(missing)}; vary it in an experiment of those architectures only.")
        else:
            names = sorted(set.intersection(*arch_names.values()) | fields)
            raise InvalidOptionError(f"--vary {key!r} is neither an option of every listed architecture nor a "
                                     f"training option (see `workbench list` and `workbench train --help`)."
                                     f"{suggest(key, names)}")
    return kinds


def _same_budget(drafts: list[tuple[str, dict[str, Any], dict[str, Any], TrainConfig]], base: TrainConfig,
                 varied: set[str]) -> list[tuple[str, dict[str, Any], dict[str, Any], TrainConfig]]:
    """Budget fields the variants disagree on (architecture starting points) take the general default."""
    pinned = {f: getattr(base, f) for f in BUDGET_FIELDS
              if f not in varied and len({getattr(d[3], f) for d in drafts}) > 1}
    if not pinned:
        return drafts
    return [(arch, options, v, config.replace(**pinned)) for arch, options, v, config in drafts]


def _label(arch: str, varied: dict[str, Any]) -> str:
    return " ".join([arch, *(f"{k}={_text(v)}" for k, v in varied.items())])


def _text(value: Any) -> str:
    return str(value).replace(" ", "") if not isinstance(value, str) else value


def _root_text(root: str | None) -> str | None:
    return str(Path(root).expanduser().resolve()) if root else None


# --- running -----------------------------------------------------------------------------------------------


def run_experiment(plan: ExperimentPlan, callbacks_for: Callable[[Variant], Sequence[Callback]] | None = None,
                   control: TrainControl | None = None, *, on_variant: Callable[[VariantEvent], None] | None = None,
                   progress: ProgressFn | None = None) -> ExperimentStatus:
    """Train the plan's variants one after another and return where the experiment stands.

    Completed and diverged variants are skipped; a stopped, interrupted or failed one is resumed from its
    checkpoint; the others start. A variant that fails does not hold up the rest. A stop (`control.stop()`, e.g.
    Ctrl-C) ends the current run with a checkpoint and leaves the rest queued, as does a run that ends `stopped`
    for another reason (a stop request through the store, a failing callback). `callbacks_for(variant)` gives
    each run its callbacks; `on_variant` hears each variant skipped, started and finished. Bad input raises
    WorkbenchError (as `run_training` does) and stops the queue.
    """
    from workbench.runs.experiments import experiment_runs, save_experiment
    from workbench.runs.store import RunStore
    from workbench.training.control import TrainControl
    from workbench.training.job import StoppedBeforeStartError, run_training

    control = control or TrainControl()
    store = RunStore(plan.workspace)
    record = save_experiment(store, plan.experiment_id, name=plan.name, spec=plan.spec)
    total = len(plan.variants)

    def tell(variant: Variant, phase: str, run_id: str | None, status: str | None, resumed: bool = False) -> None:
        if on_variant is not None:
            on_variant(VariantEvent(experiment_id=plan.experiment_id, index=variant.index, total=total,
                                    arch=variant.arch, label=variant.label, phase=phase, run_id=run_id,
                                    status=status, resumed=resumed))

    for variant in plan.variants:
        if control.stopped:
            break
        run = match_runs([variant], experiment_runs(store, plan.experiment_id)).get(variant.index)
        if run is not None and not run.status.can_resume and run.status != RunStatus.RUNNING:
            tell(variant, "skipped", run.run_id, str(run.status))
            continue
        resume_id = run.run_id if run is not None else None   # a live run refuses the claim (RunInUseError)
        tell(variant, "started", resume_id, None, resumed=resume_id is not None)
        callbacks = list(callbacks_for(variant)) if callbacks_for is not None else []
        try:
            result = run_training(variant.job_for(resume_id), callbacks, control, progress)
        except StoppedBeforeStartError:
            break
        tell(variant, "finished", result.run_id, str(result.status))
        if result.status == RunStatus.STOPPED:
            break
    return status_of(store, plan, created_at=record.created_at)
