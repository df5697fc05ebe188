"""The training panel's run control (launch, stop, pause) and its handling of a run's events: progress, status,
hints, and the form put back at the end.

A mixin of TrainingPanel (kept apart so the panel reads as its widgets and its public API); it only uses the panel's
widgets and signals declared below.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import Slot

from workbench.runs.records import RunStatus
from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics
from workbench.ui.process_training import ProcessRunStarted, process_training_task
from workbench.ui.training_run import device_locked
from workbench.ui.training_task import NotStarted, TrainingFailure, training_task

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QLabel, QPushButton

    from workbench.training.config import TrainJob
    from workbench.training.control import TrainControl
    from workbench.ui.dataset_picker import DatasetPicker
    from workbench.ui.estimate_view import EstimateView
    from workbench.ui.lr_finder_ui import LrFinder
    from workbench.ui.run_progress import RunProgress
    from workbench.ui.tasks import TaskRunner
    from workbench.ui.training_advice import AdviceLabel
    from workbench.ui.training_run import RunSettings


def ending(status: RunStatus, message: str, run_id: str = "") -> FitResult:
    """A FitResult for a run that ended before the engine could report one (bad input, stopped while loading)."""
    return FitResult(run_id=run_id, status=status, message=message, epochs_completed=0, train_loss=None,
                     train_accuracy=None, val_loss=None, val_accuracy=None, best_val_accuracy=None,
                     images_per_second=None, device="")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


class RunEvents:
    """Launching and pausing a run, and the slots of the training task's signals (see TrainingPanel)."""

    if TYPE_CHECKING:
        runStarted: SignalInstance
        stepReported: SignalInstance
        epochReported: SignalInstance
        runFinished: SignalInstance
        statusText: SignalInstance
        deviceChanged: SignalInstance
        throughputChanged: SignalInstance
        errorOccurred: SignalInstance
        processRunStarted: SignalInstance
        progress: RunProgress
        picker: DatasetPicker
        pauseButton: QPushButton
        statusLabel: QLabel
        trainingHint: AdviceLabel
        run_settings: RunSettings
        control: TrainControl | None
        runner: TaskRunner
        estimate: EstimateView
        settingsWarning: AdviceLabel
        _pause_action: QAction | None
        _lr_finder: LrFinder | None
        _run_id: str | None
        _result: FitResult | None
        _failure_shown: bool
        _first_step_seen: bool

        def _show_run_note(self) -> None: ...
        def _apply_recommended(self) -> None: ...
        def _update_buttons(self) -> None: ...
        def _refresh_advice(self) -> None: ...
        def is_training(self) -> bool: ...
        def processes(self) -> int: ...

    # ----- run control ---------------------------------------------------------------------
    def _launch(self, job: TrainJob) -> None:
        from workbench.training.control import TrainControl

        self._result, self._failure_shown, self._run_id = None, False, job.resume_run_id
        self._first_step_seen = False
        self.estimate.cancel()   # frees the device for the run (it waits for the lock)
        self.run_settings.begin(job)
        self._show_run_note()
        self.trainingHint.set_hints([])
        self.settingsWarning.set_hints([])
        self.progress.busy(job.config.epochs if not job.resume_run_id else self.run_settings.epochs())
        self.throughputChanged.emit(math.nan)   # never a previous run's img/s
        self.pauseButton.setChecked(False)
        self._set_status("Preparing data and model…")
        processes = self.processes()
        if processes > 1:  # a child process runs `workbench train --nproc N`; the store tells how it goes
            self.control = None
            self.runner.start(process_training_task(job, processes))
            self._set_status(f"Starting {processes} training processes…")
        else:
            self.control = control = TrainControl()
            self.runner.start(device_locked(training_task(job, control)), on_cancel=control.stop)
        self._update_buttons()

    def request_stop(self) -> None:
        """Ask the run to stop cooperatively (Esc); it checkpoints first."""
        if self.is_training():
            self.runner.cancel()
            self._set_status("Stopping after this step…")
        if self.picker.downloads.is_running():
            self.picker.downloads.cancel()
        if self._lr_finder is not None:
            self._lr_finder.cancel()

    def bind_pause_action(self, action: QAction) -> None:
        """Make a checkable menu action mirror the Pause button (both ways) and follow its enabled state."""
        self._pause_action = action
        action.setCheckable(True)
        action.setChecked(self.pauseButton.isChecked())
        action.toggled.connect(self.pauseButton.setChecked)
        self.pauseButton.toggled.connect(action.setChecked)
        action.setEnabled(self.pauseButton.isEnabled())

    @Slot(bool)
    def _on_pause(self, paused: bool) -> None:
        control = self.control
        if control is None or not self.is_training():
            return
        control.pause() if paused else control.resume()
        self.pauseButton.setText("Resume" if paused else "Pause")
        self._set_status("Paused." if paused else "Resumed.")

    # ----- the run's events ----------------------------------------------------------------
    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if self._first_step_seen:
            return
        if stage == "Training":
            stage = "Starting the first training step…"
        self._set_status(f"{stage} {100 * fraction:.0f} %" if 0 < fraction < 1 else stage)

    @Slot(object)
    def _on_event(self, event: object) -> None:
        match event:
            case StepMetrics():
                if not self._first_step_seen:
                    self._first_step_seen = True
                    self._set_status(self._training_text())
                self.progress.step(event.batch, event.batches, event.eta_seconds)
                self.throughputChanged.emit(event.images_per_second)
                self.stepReported.emit(event)
            case EpochMetrics():
                self.progress.epoch_done(event.epoch)
                self._set_status(f"Epoch {event.epoch}/{event.epochs}: val accuracy "
                                 f"{100 * event.val_accuracy:.2f} %, {event.images_per_second:,.0f} img/s")
                self.trainingHint.set_hints(self.run_settings.epoch_done(event))
                self.epochReported.emit(event)
            case FitStart():
                self._on_fit_start(event)
            case TrainingFailure():
                self._failure_shown = True
                self.errorOccurred.emit(event.message, event.details)
            case ProcessRunStarted():
                self._run_id = event.run_id
                self._set_status(f"Training run {event.run_id} in {event.processes} processes; its curves follow "
                                 "in the Training curves tab.")
                self.processRunStarted.emit(event.run_id)

    def _training_text(self) -> str:
        e = self.run_settings.start
        if e is None:
            return "Training…"
        text = (f"Training {e.arch} on {e.dataset} ({e.device}, {e.train_size:,} train / {e.val_size:,} val "
                "images).")
        if e.skipped:
            text += f" Skipped {_plural(e.skipped, 'unreadable file')}."
        return text

    def _on_fit_start(self, e: FitStart) -> None:
        self._run_id = e.run_id
        self.run_settings.fit_started(e)
        self._show_run_note()
        self.progress.start(e.epochs, e.start_epoch, e.batches_per_epoch)
        self.progress.busy()   # until the first batch has finished
        self.deviceChanged.emit(e.device)
        self._set_status(self._training_text() + " First step…")
        self.runStarted.emit(e)

    @Slot(object)
    def _on_done(self, outcome: FitResult | NotStarted) -> None:
        if isinstance(outcome, NotStarted):
            self._result = ending(RunStatus.STOPPED, outcome.message)
            self._set_status(outcome.message)
            return
        self._result = result = outcome
        if result.status.is_failure and not self._failure_shown:
            self._failure_shown = True
            self.errorOccurred.emit(result.message or f"Training {result.status}.", "")
        if result.status == RunStatus.COMPLETED:
            best = result.best_val_accuracy
            text = f"Run completed: {result.epochs_completed} epoch(s)"
            text += f", best val accuracy {100 * best:.2f} %." if best is not None else "."
        else:
            text = result.message or f"Run {result.status}."  # the engine's message already says how it ended
        self._set_status(text)

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self._result = ending(RunStatus.FAILED, message, self._run_id or "")
        self._failure_shown = True
        self.errorOccurred.emit(message, details)
        self._set_status(message)

    @Slot()
    def _on_thread_ended(self) -> None:
        result = self._result or ending(RunStatus.FAILED, "The training thread ended without a result.",
                                        self._run_id or "")
        self.control = None
        self.pauseButton.setChecked(False)
        self.pauseButton.setText("Pause")
        self.progress.ended()
        self.run_settings.end()        # the form shows what the next Train will run again
        self._show_run_note()
        self._apply_recommended()      # e.g. an architecture picked while the run trained
        self.picker.refresh()
        self._update_buttons()
        self._refresh_advice()
        self.runFinished.emit(result)

    @Slot(str, str)
    def _on_download_failed(self, message: str, details: str) -> None:
        if message:
            self.errorOccurred.emit(message, details)

    def _set_status(self, text: str) -> None:
        self.statusLabel.setText(text)
        self.statusText.emit(text)
