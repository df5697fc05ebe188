"""The training panel: data set, settings, Train / Pause / Stop, progress and status.

It runs the training task and re-emits the engine's typed events (FitStart, StepMetrics, EpochMetrics, FitResult)
as its own signals; the window routes them to the plots and the runs list, which it owns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from workbench.runs.records import RunStatus
from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics
from workbench.ui import gc_guard
from workbench.ui.dataset_picker import DatasetPicker
from workbench.ui.run_progress import RunProgress
from workbench.ui.tasks import TaskRunner
from workbench.ui.training_settings import SettingsForm, available_devices
from workbench.ui.training_task import NotStarted, TrainingFailure, training_task

if TYPE_CHECKING:
    from workbench.training.config import TrainJob
    from workbench.training.control import TrainControl
    from workbench.ui.architecture_panel import ArchSelection

READY = "Ready."


def ending(status: RunStatus, message: str, run_id: str = "") -> FitResult:
    """A FitResult for a run that ended before the engine could report one (bad input, stopped while loading)."""
    return FitResult(run_id=run_id, status=status, message=message, epochs_completed=0, train_loss=None,
                     train_accuracy=None, val_loss=None, val_accuracy=None, best_val_accuracy=None,
                     images_per_second=None, device="")


class TrainingPanel(QWidget):
    """See docs/ARCHITECTURE.md (workbench.ui). The engine is imported lazily by `ensure_engine()`."""

    datasetChanged = Signal(dict)
    runStarted = Signal(object)        # FitStart
    stepReported = Signal(object)      # StepMetrics (throttled to ~20 Hz)
    epochReported = Signal(object)     # EpochMetrics
    runFinished = Signal(object)       # FitResult, once the training thread has ended (every run ends with one)
    statusText = Signal(str)
    deviceChanged = Signal(str)        # the device the run trains on (fit start)
    throughputChanged = Signal(float)  # images/s of the run in flight
    errorOccurred = Signal(str, str)   # message, details

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.workspace = Path(workspace)
        self.selection: ArchSelection | None = None
        self._pending_settings: dict[str, Any] | None = None
        self._run_id: str | None = None
        self._result: FitResult | None = None
        self._failure_shown = False
        self._showing_block_reason = False
        self.control: TrainControl | None = None
        self.picker = DatasetPicker()
        self.settings = SettingsForm()
        self.runner = TaskRunner("training", self)

        self.trainButton = QPushButton("Train")
        self.trainButton.setObjectName("trainButton")
        self.pauseButton = QPushButton("Pause")
        self.pauseButton.setObjectName("pauseButton")
        self.pauseButton.setCheckable(True)
        self.stopButton = QPushButton("Stop")
        self.stopButton.setObjectName("stopButton")
        self.progress = RunProgress()
        self.epochProgress = self.progress.epochProgress
        self.batchProgress = self.progress.batchProgress
        self.etaLabel = self.progress.etaLabel
        self.statusLabel = QLabel(READY)
        self.statusLabel.setObjectName("trainingStatus")
        self.statusLabel.setWordWrap(True)
        self._build_layout()
        self._idle_progress()

        self.trainButton.clicked.connect(self.start_training)
        self.stopButton.clicked.connect(self.request_stop)
        self.pauseButton.toggled.connect(self._on_pause)
        self.picker.changed.connect(self._on_dataset)
        self.picker.availabilityChanged.connect(lambda _s: self._update_buttons())
        self.picker.downloadFailed.connect(self._on_download_failed)
        self.settings.changed.connect(self._on_settings_changed)
        self.runner.partial.connect(self._on_event)
        self.runner.progressed.connect(self._on_progress)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_thread_ended)
        self._update_buttons()
        # Torch and the data registry are imported after the window is up (see ensure_engine).
        QTimer.singleShot(0, self.ensure_engine)

    def _build_layout(self) -> None:
        data_box = QGroupBox("Data set")
        QVBoxLayout(data_box).addWidget(self.picker)
        # Only the data set and settings scroll; the buttons, progress and status below always stay in view.
        form = QWidget()
        form_layout = QVBoxLayout(form)
        form_layout.setContentsMargins(0, 0, 0, 0)
        form_layout.addWidget(data_box)
        form_layout.addWidget(self.settings)
        form_layout.addStretch(1)
        self.settingsScroll = QScrollArea()
        self.settingsScroll.setObjectName("trainingSettingsScroll")
        self.settingsScroll.setWidgetResizable(True)
        self.settingsScroll.setFrameShape(QFrame.Shape.NoFrame)
        self.settingsScroll.setWidget(form)
        buttons = QHBoxLayout()
        for button in (self.trainButton, self.pauseButton, self.stopButton):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.settingsScroll, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.statusLabel)

    # ----- engine --------------------------------------------------------------------------
    def ensure_engine(self) -> None:
        """Import the engine, fill the dataset list and build the settings form (idempotent)."""
        if self.settings.is_built():
            return
        devices = available_devices()
        self.settings.build(devices)
        self.deviceChanged.emit(devices[2] if len(devices) > 2 else "cpu")  # what "auto" picks
        if self._pending_settings:
            self.settings.set_values(self._pending_settings)
            self._pending_settings = None
        self.picker.load()
        self._apply_recommended()
        self._idle_progress()
        self._update_buttons()
        gc_guard.settle()

    def is_ready(self) -> bool:
        return self.settings.is_built() and self.picker.is_loaded()

    # ----- contract API --------------------------------------------------------------------
    def set_architecture(self, selection: ArchSelection | None) -> None:
        """What to train; an invalid selection disables Train with its reason as the tooltip."""
        self.selection = selection
        self._apply_recommended()
        self._update_buttons()

    def _apply_recommended(self) -> None:
        """Give the settings the engine's starting point for this architecture + data set, except for the
        fields the user has edited (`recommended_config`)."""
        arch = self.selection.arch if self.selection else None
        dataset = self.picker.current_name() if self.picker.is_loaded() else None
        if not arch or not dataset or not self.settings.is_built() or self.is_training():
            return
        from workbench.errors import WorkbenchError
        from workbench.training.config import recommended_config

        try:
            cfg = recommended_config(arch, dataset)
        except WorkbenchError:
            return
        self.settings.apply_defaults(dataclasses.asdict(cfg))

    def current_dataset(self) -> dict:
        return self.picker.current()

    @property
    def run_id(self) -> str | None:
        """The run trained last (or now) from this panel."""
        return self._run_id

    def is_training(self) -> bool:
        return self.runner.is_running()

    def train_block_reason(self) -> str:
        """"" when Train can start, else why not (also Train's tooltip)."""
        sel = self.selection
        if self.is_training():
            return "A training run is in progress."
        if not self.is_ready():
            return "The training engine is still loading."
        if sel is None or not sel.arch:
            return "Select an architecture first."
        if not sel.valid:
            return sel.reason or "The architecture's options are not valid."
        state = self.picker.availability()
        if state == "needs download":
            return "The data set is not on disk yet: click Download first."
        if state == "needs folder":
            return "Choose the image folder with “Open folder…” first."
        if state not in ("bundled", "on disk"):
            return f"The data set is not available ({state}); check the data root."
        return self.settings.error

    def start_training(self) -> None:
        """Start a new run with the current settings (Ctrl+Return)."""
        self.ensure_engine()
        reason = self.train_block_reason()
        if reason or self.selection is None:
            self._set_status(reason)
            return
        from workbench.training.config import TrainJob

        sel, name = self.selection, self.picker.current_name() or ""
        job = TrainJob(arch=sel.arch, dataset=name, arch_options=dict(sel.options), config=self.settings.config(),
                       data_root=self.picker.root_for(name), workspace=self.workspace,
                       input_override=sel.input_override, num_classes_override=sel.classes_override)
        self._launch(job)

    def resume_run(self, run_id: str) -> None:
        """Continue an interrupted or stopped run from its last checkpoint (its own settings and data)."""
        self.ensure_engine()
        if self.is_training():
            self._set_status("A training run is in progress.")
            return
        from workbench.training.config import TrainJob

        self._launch(TrainJob(arch="", dataset="", workspace=self.workspace, resume_run_id=run_id))

    def _launch(self, job: TrainJob) -> None:
        from workbench.training.control import TrainControl

        self._result, self._failure_shown, self._run_id = None, False, job.resume_run_id
        self.progress.start(job.config.epochs)
        self.pauseButton.setChecked(False)
        self._set_status("Preparing data and model…")
        self.control = control = TrainControl()
        self.runner.start(training_task(job, control), on_cancel=control.stop)
        self._update_buttons()

    def request_stop(self) -> None:
        """Ask the run to stop cooperatively (Esc); it checkpoints first."""
        if self.is_training():
            self.runner.cancel()
            self._set_status("Stopping after this step…")
        if self.picker.downloads.is_running():
            self.picker.downloads.cancel()

    def wait_stopped(self, timeout_ms: int) -> bool:
        """Stop training/downloads and wait up to `timeout_ms`; True when no thread is left running."""
        ok = self.runner.wait(timeout_ms)
        return self.picker.downloads.wait(timeout_ms) and ok

    def save_state(self) -> dict:
        """The settings the user edited (others follow the recommended defaults) and the data set."""
        if self.settings.is_built():
            safe = self.settings.raw_values_safe()
            values = {k: v for k, v in safe.items() if k in self.settings.edited_fields}
        else:
            values = self._pending_settings or {}
        return {"settings": values, **self.picker.save_state()}

    def restore_state(self, state: dict) -> None:
        settings = dict(state.get("settings") or {})
        if self.settings.is_built():
            self.settings.set_values(settings)
        else:
            self._pending_settings = settings
        self.picker.restore_state(state)
        self._apply_recommended()
        self._idle_progress()
        self._update_buttons()

    # ----- state ---------------------------------------------------------------------------
    def _idle_progress(self) -> None:
        """Between runs: the epoch bar counts to the epochs setting, the batch bar to max batches (if set)."""
        if self.is_training():
            return
        values = self.settings.raw_values_safe() if self.settings.is_built() else {}
        self.progress.idle(values.get("epochs"), values.get("max_batches"))

    @Slot()
    def _on_settings_changed(self) -> None:
        self._idle_progress()
        self._update_buttons()

    def _update_buttons(self) -> None:
        reason = self.train_block_reason()
        self.trainButton.setEnabled(not reason)
        self.trainButton.setToolTip(reason or "Start training (Ctrl+Return)")
        running = self.is_training()
        if not running and reason:
            self._showing_block_reason = True
            self._set_status(f"Cannot train: {reason}")
        elif not running and self._showing_block_reason:
            self._showing_block_reason = False
            self._set_status(READY)
        self.stopButton.setEnabled(running)
        self.pauseButton.setEnabled(running)
        self.settings.setEnabled(not running)
        self.picker.setEnabled(not running)

    @Slot(dict)
    def _on_dataset(self, info: dict) -> None:
        self._update_buttons()
        self.datasetChanged.emit(info)

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
        self._set_status(f"{stage} {100 * fraction:.0f} %" if 0 <= fraction < 1 else stage)

    @Slot(object)
    def _on_event(self, event: object) -> None:
        match event:
            case StepMetrics():
                self.progress.step(event.batch, event.batches, event.eta_seconds)
                self.throughputChanged.emit(event.images_per_second)
                self.stepReported.emit(event)
            case EpochMetrics():
                self.progress.epoch_done(event.epoch)
                self._set_status(f"Epoch {event.epoch}/{event.epochs}: val accuracy "
                                 f"{100 * event.val_accuracy:.2f} %, {event.images_per_second:,.0f} img/s")
                self.epochReported.emit(event)
            case FitStart():
                self._on_fit_start(event)
            case TrainingFailure():
                self._failure_shown = True
                self.errorOccurred.emit(event.message, event.details)

    def _on_fit_start(self, e: FitStart) -> None:
        self._run_id = e.run_id
        self.progress.start(e.epochs, e.start_epoch, e.batches_per_epoch)
        self.deviceChanged.emit(e.device)
        self._set_status(f"Training {e.arch} on {e.dataset} ({e.device}, {e.train_size} train / {e.val_size} val "
                         "images).")
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
        self.picker.refresh()
        self._update_buttons()
        self.runFinished.emit(result)

    @Slot(str, str)
    def _on_download_failed(self, message: str, details: str) -> None:
        if message:
            self.errorOccurred.emit(message, details)

    def _set_status(self, text: str) -> None:
        self.statusLabel.setText(text)
        self.statusText.emit(text)
