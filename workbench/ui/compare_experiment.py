"""Train all: the Compare view's ticked architectures as controlled experiments (`workbench.training.experiment`),
trained one after another in a worker thread: the architectures ticked once form one experiment; an
architecture ticked with variants forms its own, varying the options its variants differ in.

Each architecture starts from its recommended recipe; the settings the user edited in the training panel, plus
its epochs, batch cap and device, apply to every variant (the engine keeps the budget equal). The same ticked set
and settings make the same experiments, so Train all after a Stop continues them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from workbench.errors import WorkbenchError
from workbench.ui.tasks import Task, TaskRunner, TaskSink
from workbench.ui.training_task import SinkCallback, TrainingFailure

if TYPE_CHECKING:
    from workbench.training.config import TrainConfig
    from workbench.training.control import TrainControl
    from workbench.training.events import FitResult
    from workbench.training.experiment import ExperimentSpec
    from workbench.training.experiment_status import ExperimentStatus
    from workbench.ui.compare_rows import CompareEntry

# Panel settings every variant shares even when the user left them at the shown default.
SHARED_FIELDS = ("epochs", "max_batches", "device")


def train_options(config: TrainConfig, edited: Sequence[str]) -> dict[str, Any]:
    """The training options the experiment gives every variant: the edited fields and SHARED_FIELDS."""
    values = dataclasses.asdict(config)
    return {k: values[k] for k in (*SHARED_FIELDS, *sorted(edited)) if k in values}


class ExperimentCallback(SinkCallback):
    """The trainer's events to the sink, each run's FitResult included (the plots and runs list end the run on
    it, and the Compare table refreshes its accuracy column)."""

    def on_fit_end(self, r: FitResult) -> None:
        self.sink.partial(r)


def experiment_specs(entries: Sequence[CompareEntry], *, dataset: str, data_root: Path | None,
                     options: dict[str, Any]) -> list[ExperimentSpec]:
    """The experiments that train `entries`: one of the architectures ticked once (each with its options), and
    one per architecture ticked with variants, varying the options its variants differ in (`--vary`). Variants
    must cover every combination of those values (one differing option always does); WorkbenchError if not."""
    from workbench.models import resolve_options
    from workbench.training.experiment import ExperimentSpec

    by_arch: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        resolved = resolve_options(entry.arch, entry.options)
        if resolved not in by_arch.setdefault(entry.arch, []):   # a variant equal to another trains once
            by_arch[entry.arch].append(resolved)
    shared = dict(dataset=dataset, train_options=dict(options), data_root=str(data_root) if data_root else None)
    singles = [arch for arch, variants in by_arch.items() if len(variants) == 1]
    specs = []
    if singles:
        specs.append(ExperimentSpec(archs=tuple(singles), arch_options={a: by_arch[a][0] for a in singles},
                                    name="Compare: " + ", ".join(singles), **shared))  # type: ignore[arg-type]
    for arch, variants in by_arch.items():
        if len(variants) < 2:
            continue
        keys = [k for k in variants[0] if len({repr(v[k]) for v in variants}) > 1]
        values = {k: list({repr(v[k]): v[k] for v in variants}.values()) for k in keys}
        combos = {tuple(repr(v[k]) for k in keys) for v in variants}
        grid = {tuple(repr(x) for x in combo) for combo in itertools.product(*(values[k] for k in keys))}
        if combos != grid:
            raise WorkbenchError(f"The variants of {arch} differ in {', '.join(keys)} but are not every combination "
                                 "of their values; tick one variant per combination, or vary one option at a time.")
        common = {k: v for k, v in variants[0].items() if k not in keys}
        vary = tuple((k, tuple(values[k])) for k in keys)
        label = " ".join(f"{k}={','.join(map(str, vs))}" for k, vs in vary)
        specs.append(ExperimentSpec(archs=(arch,), vary=vary, arch_options={arch: common},
                                    name=f"Compare: {arch} {label}", **shared))  # type: ignore[arg-type]
    return specs


def experiment_task(entries: Sequence[CompareEntry], *, dataset: str, data_root: Path | None,
                    options: dict[str, Any], workspace: Path, control: TrainControl) -> Task:
    """A task: plan every experiment first (WorkbenchError for bad input, before anything trains), then run their
    queues one after another (a stop ends all); reports the trainer's events and the engine's VariantEvents as
    partials; returns the ExperimentStatus of each experiment run."""
    todo = tuple(entries)

    def task(sink: TaskSink) -> list[ExperimentStatus]:
        from workbench.training.experiment import plan_experiment, run_experiment

        specs = experiment_specs(todo, dataset=dataset, data_root=data_root, options=options)
        plans = [plan_experiment(spec, workspace=workspace) for spec in specs]
        callback = ExperimentCallback(sink)
        statuses = []
        for plan in plans:
            if control.stopped:
                break
            statuses.append(run_experiment(plan, lambda _variant: [callback], control, on_variant=sink.partial,
                                           progress=sink.progress))
        return statuses

    return task


class ExperimentRunner(QObject):
    """Runs `experiment_task` on a TaskRunner; the trainer's events as TrainingPanel's signals while it trains,
    `ended(message, details)` at the end (details non-empty only for a bug's traceback)."""

    runStarted = Signal(object)        # FitStart of each run (as TrainingPanel's signals)
    stepReported = Signal(object)      # StepMetrics
    epochReported = Signal(object)     # EpochMetrics
    runFinished = Signal(object)       # FitResult
    runFailed = Signal(str, str)       # a run failed (message, traceback); the queue goes on
    variant = Signal(object)           # the engine's VariantEvent (skipped / started / finished)
    ended = Signal(str, str)

    def __init__(self, workspace: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = Path(workspace)
        self.runner = TaskRunner("experiment", self)
        self.runner.partial.connect(self._on_partial)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.control: TrainControl | None = None
        self.statuses: list[ExperimentStatus] = []
        self._message = ""
        self._details = ""

    def is_running(self) -> bool:
        return self.runner.is_running()

    def start(self, entries: Sequence[CompareEntry], *, dataset: str, data_root: Path | None, config: TrainConfig,
              edited: Sequence[str] = ()) -> bool:
        """Start training `entries`; False when an experiment already runs."""
        from workbench.training.control import TrainControl

        if self.is_running():
            return False
        self.control = control = TrainControl()
        self.statuses, self._message, self._details = [], "", ""
        self.runner.start(experiment_task(entries, dataset=dataset, data_root=data_root,
                                          options=train_options(config, edited), workspace=self.workspace,
                                          control=control), on_cancel=control.stop)
        return True

    @Slot()
    def stop(self) -> None:
        """Stop the current run (it checkpoints); the rest of the queue stays for the next Train all."""
        if self.is_running():
            self.runner.cancel()

    def wait(self, timeout_ms: int) -> bool:
        """Stop and wait up to `timeout_ms`; True when the thread has ended."""
        return self.runner.wait(timeout_ms)

    @Slot(object)
    def _on_partial(self, event: object) -> None:
        from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics

        match event:
            case FitStart():
                self.runStarted.emit(event)
            case StepMetrics():
                self.stepReported.emit(event)
            case EpochMetrics():
                self.epochReported.emit(event)
            case FitResult():
                self.runFinished.emit(event)
            case TrainingFailure():
                self.runFailed.emit(event.message, event.details)
            case _:
                self.variant.emit(event)

    @Slot(object)
    def _on_done(self, statuses: list[ExperimentStatus]) -> None:
        self.statuses = statuses
        variants = [v for status in statuses for v in status.variants]
        done = sum(1 for v in variants if v.status == "completed")
        left = sum(1 for v in variants if v.to_train)
        ids = ", ".join(status.experiment_id for status in statuses)
        self._message = (f"Experiment {ids}: {done} of {len(variants)} run(s) completed"
                         + (f", {left} still to train (Train all continues)." if left else "."))

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self._message, self._details = message, details

    @Slot()
    def _on_finished(self) -> None:
        self.control = None
        self.ended.emit(self._message or "The experiment ended.", self._details)
