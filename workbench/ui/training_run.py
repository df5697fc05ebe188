"""What the settings form shows around a run, and what the next run will be.

`RunSettings`: while a run trains (or resumes) the form shows that run's own settings, read-only; the user's own
values and edits are kept aside and put back when it ends, so a recipe seen during a run is never mistaken for
the next one. It also collects the run's epochs for the hints. `next_run_inputs` is what the estimate needs;
`device_locked` keeps a run and a timing from sharing the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

from workbench.training import estimate as est
from workbench.training.events import EpochMetrics, FitStart
from workbench.ui.estimate_view import EstimateInputs
from workbench.ui.tasks import Task, TaskSink
from workbench.ui.training_task import NotStarted

if TYPE_CHECKING:
    from workbench.models.summary import ModelSummary, Totals
    from workbench.training.config import TrainJob
    from workbench.training.hints import Hint
    from workbench.ui.architecture_panel import ArchSelection
    from workbench.ui.training_settings import SettingsForm


def device_locked(task: Task) -> Task:
    """`task` run while holding the device lock (a timing in flight stops at its next step and lets go); a stop
    while waiting ends it as NotStarted."""

    def run(sink: TaskSink) -> object:
        while not est.DEVICE_LOCK.acquire(timeout=0.05):
            if sink.cancelled():
                return NotStarted("Stopped before training started; no run was created.")
        try:
            return task(sink)
        finally:
            est.DEVICE_LOCK.release()

    return run


def recommended_settings(arch: str, dataset: str) -> dict[str, Any] | None:
    """The engine's recommended settings for `arch` on `dataset` (None when it has none)."""
    from workbench.errors import WorkbenchError
    from workbench.training.config import recommended_config

    try:
        return dataclasses.asdict(recommended_config(arch, dataset))
    except WorkbenchError:
        return None


def stored_config(job: TrainJob) -> tuple[dict[str, Any], str, str]:
    """(config, arch, dataset) a resumed run was started with, read from its record ({} when unreadable)."""
    from workbench.errors import WorkbenchError
    from workbench.training.restore import open_store

    try:
        with contextlib.closing(open_store(job.workspace, job.resume_run_id)) as store:
            record = store.get_run(str(job.resume_run_id))
            return dict(record.config), record.arch, record.dataset
    except (WorkbenchError, OSError):
        return {}, "", ""


class RunSettings:
    """Swaps the form to a run's settings while it trains and back afterwards."""

    def __init__(self, form: SettingsForm) -> None:
        self.form = form
        self.active = False
        self.resumed_id: str | None = None
        self.arch = self.dataset = ""
        self.config: dict[str, Any] = {}
        self.start: FitStart | None = None
        self.epochs_seen: list[EpochMetrics] = []
        self._saved: tuple[dict[str, Any], set[str]] = ({}, set())

    def begin(self, job: TrainJob) -> None:
        """A run is launched: keep the user's values aside; a resumed run shows its stored settings at once."""
        self._saved = (self.form.raw_values_safe(), set(self.form.edited_fields))
        self.active, self.start, self.epochs_seen = True, None, []
        self.resumed_id = job.resume_run_id
        if job.resume_run_id:
            self.config, self.arch, self.dataset = stored_config(job)
        else:
            self.config, self.arch, self.dataset = job.config.to_dict(), job.arch, job.dataset
        self._show(self.config)

    def fit_started(self, e: FitStart) -> None:
        """The engine's own account of the run (a resume's settings with its device overrides applied)."""
        self.start, self.arch, self.dataset = e, e.arch, e.dataset
        if e.config:
            self.config = dict(e.config)
            self._show(self.config)

    def epochs(self) -> int | None:
        value = self.config.get("epochs")
        return value if isinstance(value, int) else None

    def epoch_done(self, e: EpochMetrics) -> list[Hint]:
        """Hints from the run's epochs so far."""
        from workbench.training.hints import hints

        self.epochs_seen.append(e)
        if self.start is None or not self.start.num_classes:
            return []
        return hints(self.epochs_seen, self.start.num_classes, self.config, self.start.arch_options)

    def end(self) -> None:
        """The run is over: the form shows the user's own values and edits again."""
        if not self.active:
            return
        self.active = False
        values, edited = self._saved
        self.form.blockSignals(True)   # the progress bars keep where the run got to
        try:
            self.form.set_values(values, edited=False)
        finally:
            self.form.blockSignals(False)
        self.form.edited_fields = set(edited)
        self.form.validate()

    def user_values(self) -> tuple[dict[str, Any], set[str]]:
        """The user's values and edited fields (kept aside while a run's settings are shown)."""
        if self.active:
            return dict(self._saved[0]), set(self._saved[1])
        return self.form.raw_values_safe(), set(self.form.edited_fields)

    def note(self) -> str:
        """What the form shows, when it is a run's settings ("" otherwise)."""
        if not self.active:
            return ""
        what = f"{self.arch} on {self.dataset}" if self.arch else "the run"
        if self.resumed_id:
            return f"Settings of the resumed run {self.resumed_id} ({what}), read-only while it trains."
        return f"Settings of the run in progress ({what}), read-only until it ends."

    def _show(self, config: dict[str, Any]) -> None:
        if config:
            self.form.set_values(config, edited=False)


def next_run_inputs(selection: ArchSelection | None, form: SettingsForm, info: dict[str, Any],
                    summary: ModelSummary | None) -> tuple[EstimateInputs | None, Totals | None, str]:
    """(what the next run trains, the summary's totals when they are of that model, why there is nothing to
    estimate — "" when the form or the selection already say why)."""
    if selection is None or not selection.valid or not selection.arch:
        return None, None, ""
    try:
        config = form.config()
    except ValueError:  # the form highlights the field
        return None, None, ""
    side = config.image_size
    shape = selection.input_override or ((selection.input_shape[0], side, side) if side else selection.input_shape)
    inputs = EstimateInputs(selection.arch, dict(selection.options), tuple(shape), selection.num_classes, config,
                            info.get("train_size"), info.get("val_size"))
    totals = None
    if (summary is not None and summary.arch == selection.arch and summary.num_classes == selection.num_classes
            and tuple(summary.input_shape) == tuple(selection.input_shape) and summary.options == selection.options):
        totals = summary.totals
    return inputs, totals, ""
