"""Reading the run store off the GUI thread: the poll that follows runs trained by other processes, a run's stored
history, and the runs' parameter counts.

`RunWatcher` polls at most twice a second (POLL_MS), only while `set_wanted(True)`: the runs panel wants it while a
run in the workspace is `running` in another process (a CLI or torchrun run) or while the runs or curves tab is on
screen. Each poll is one TaskRunner task: the run list, and the followed run's metrics when it changed since the
last poll (its `updated_at` moves with every metrics flush and heartbeat).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from workbench.runs.experiments import experiment_names
from workbench.runs.records import RunRecord, RunStatus
from workbench.ui.plot_data import RunCurves
from workbench.ui.tasks import TaskRunner, TaskSink

if TYPE_CHECKING:
    from workbench.runs import RunStore

POLL_MS = 500           # at most 2 Hz


@dataclass(frozen=True)
class FollowRequest:
    """The run whose full metrics each poll brings when it changed: `since` is the `updated_at` already shown."""

    run_id: str
    label: str
    since: float | None = None


@dataclass(frozen=True)
class PollResult:
    """The runs, the experiments' names by id, and the followed run's curves (None: unchanged or none)."""

    records: tuple[RunRecord, ...]
    followed: RunCurves | None = None
    experiments: tuple[tuple[str, str], ...] = ()


def run_curves(store: RunStore, record: RunRecord, label: str, names: Sequence[str] | None = None, *,
               epochs: int | None = None, batches_per_epoch: int | None = None) -> RunCurves:
    """A run's stored metrics (`names` only, when given) as RunCurves, with its aux weight and planned epochs."""
    weight = record.config.get("aux_weight") if isinstance(record.config, dict) else None
    return RunCurves(record.run_id, label, store.metrics(record.run_id, names),
                     aux_weight=float(weight) if isinstance(weight, (int, float)) else 0.0,
                     epochs=epochs if epochs is not None else record.epochs_planned,
                     batches_per_epoch=batches_per_epoch, running=record.status == RunStatus.RUNNING)


def poll_task(store: RunStore, follow: FollowRequest | None) -> Callable[[TaskSink], PollResult]:
    """A task: the run list, plus the followed run's metrics when its `updated_at` is not `follow.since`."""

    def task(_sink: TaskSink) -> PollResult:
        records = tuple(store.list_runs())
        followed = None
        if follow is not None:
            record = next((r for r in records if r.run_id == follow.run_id), None)
            if record is not None and record.updated_at != follow.since:
                followed = run_curves(store, record, follow.label)
        return PollResult(records, followed, experiment_names(store))

    return task


def history_task(store: RunStore, run_id: str, label: str, epochs: int, batches_per_epoch: int
                 ) -> Callable[[TaskSink], RunCurves]:
    """A task: every stored metric of a run that (re)starts here (a resumed run's history)."""

    def task(_sink: TaskSink) -> RunCurves:
        return run_curves(store, store.get_run(run_id), label, epochs=epochs, batches_per_epoch=batches_per_epoch)

    return task


def parameters_task(records: Sequence[RunRecord]) -> Callable[[TaskSink], dict[str, int | None]]:
    """A task: each run's parameter count (built on the meta device; cached by the engine)."""

    def task(sink: TaskSink) -> dict[str, int | None]:
        from workbench.runs.table import parameter_count

        counts: dict[str, int | None] = {}
        for record in records:
            if sink.cancelled():
                break
            try:
                counts[record.run_id] = parameter_count(record)
            except Exception:  # an architecture that cannot be built here: the cell stays empty
                counts[record.run_id] = None
        return counts

    return task


class RunWatcher(QObject):
    """Polls the run store (POLL_MS) while wanted; `polled(PollResult)`, `failed(message)`."""

    polled = Signal(object)
    failed = Signal(str)

    def __init__(self, store: Callable[[], RunStore], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.follow: FollowRequest | None = None
        self.runner = TaskRunner("runs-poll", self)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.polls = 0

    def set_wanted(self, wanted: bool) -> None:
        """Poll while `wanted` (the timer stops otherwise: nothing runs while nobody looks)."""
        if wanted and not self.timer.isActive():
            self.timer.start()
        elif not wanted and self.timer.isActive():
            self.timer.stop()

    @property
    def active(self) -> bool:
        return self.timer.isActive()

    @Slot()
    def poll(self) -> bool:
        """Start one poll now unless one is in flight; returns whether it started."""
        if self.runner.is_running():
            return False
        self.polls += 1
        self.runner.start(poll_task(self._store(), self.follow))
        return True

    def _on_done(self, result: PollResult) -> None:
        self.polled.emit(result)

    def _on_failed(self, message: str, _details: str) -> None:
        self.failed.emit(message)

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop polling and wait for a poll in flight."""
        self.timer.stop()
        return self.runner.wait(timeout_ms)
