"""The training panel: data set, settings, Train / Pause / Stop, the pre-launch estimate, progress, status, hints.

It runs the training task and re-emits the engine's typed events (FitStart, StepMetrics, EpochMetrics, FitResult)
as its own signals; the window routes them to the plots and the runs list, which it owns. The settings form shows
what the next Train will run, or — while a run trains — the settings of that run (read-only); see RunSettings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.training.events import FitResult
from workbench.ui import gc_guard
from workbench.ui.dataset_picker import DatasetPicker
from workbench.ui.estimate_view import EstimateView
from workbench.ui.process_training import max_processes
from workbench.ui.run_progress import RunProgress
from workbench.ui.tasks import TaskRunner
from workbench.ui.training_advice import AdviceLabel
from workbench.ui.training_events import RunEvents, ending
from workbench.ui.training_run import RunSettings, next_run_inputs, recommended_settings
from workbench.ui.training_settings import SettingsForm, available_devices

if TYPE_CHECKING:
    from PySide6.QtGui import QAction

    from workbench.models.summary import ModelSummary
    from workbench.training.config import TrainJob
    from workbench.training.control import TrainControl
    from workbench.ui.architecture_panel import ArchSelection
    from workbench.ui.lr_finder_ui import LrFinder

__all__ = ["READY", "TrainingPanel", "ending"]

READY = "Ready."


class TrainingPanel(RunEvents, QWidget):
    """See docs/ARCHITECTURE.md (workbench.ui). The engine is imported lazily by `ensure_engine()`."""

    datasetChanged = Signal(dict)
    runStarted = Signal(object)        # FitStart
    stepReported = Signal(object)      # StepMetrics (throttled to ~20 Hz)
    epochReported = Signal(object)     # EpochMetrics
    runFinished = Signal(object)       # FitResult, once the training thread has ended (every run ends with one)
    statusText = Signal(str)
    deviceChanged = Signal(str)        # the device the run trains on (fit start)
    throughputChanged = Signal(float)  # images/s of the run in flight; NaN: none yet (a run is starting)
    errorOccurred = Signal(str, str)   # message, details
    processRunStarted = Signal(str)    # run id of a run trained in several child processes (followed via the store)

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.workspace = Path(workspace)
        self.selection: ArchSelection | None = None
        self.summary: ModelSummary | None = None
        self._pending_settings: dict[str, Any] | None = None
        self._run_id: str | None = None
        self._result: FitResult | None = None
        self._failure_shown = False
        self._showing_block_reason = False
        self._first_step_seen = False
        self._pause_action: QAction | None = None
        self._lr_finder: LrFinder | None = None
        self.control: TrainControl | None = None
        self.picker = DatasetPicker()
        self.settings = SettingsForm()
        self.run_settings = RunSettings(self.settings)
        self.runner = TaskRunner("training", self)
        self.blocked_by = ""    # why another part of the app keeps this panel from training: set_blocked()

        self.trainButton = QPushButton("Train")
        self.trainButton.setObjectName("trainButton")
        self.pauseButton = QPushButton("Pause")
        self.pauseButton.setObjectName("pauseButton")
        self.pauseButton.setCheckable(True)
        self.stopButton = QPushButton("Stop")
        self.stopButton.setObjectName("stopButton")
        self.processesSpin = QSpinBox(prefix="Processes: ", minimum=1, maximum=max_processes())
        self.processesSpin.setObjectName("processesSpin")
        self.processesSpin.setToolTip("Train in several processes (DistributedDataParallel: one per GPU, or CPU "
                                      "processes); the batch size stays the global batch.")
        self.resetButton = QPushButton("Reset to recommended")
        self.resetButton.setObjectName("resetRecommendedButton")
        self.resetButton.setToolTip("Forget your edits: the settings the engine recommends for this architecture "
                                    "and data set")
        self.settingsNote = QLabel()
        self.settingsNote.setObjectName("settingsNote")
        self.settingsNote.setWordWrap(True)
        self.settingsWarning = AdviceLabel("settingsWarning", "⚠", "#d35400")
        self.trainingHint = AdviceLabel("trainingHint", "<b>Hint:</b>", "#1f6fb2")
        self.estimate = EstimateView()
        self.progress = RunProgress()
        self.epochProgress = self.progress.epochProgress
        self.batchProgress = self.progress.batchProgress
        self.etaLabel = self.progress.etaLabel
        self.statusLabel = QLabel(READY)
        self.statusLabel.setObjectName("trainingStatus")
        self.statusLabel.setWordWrap(True)
        self._refresh_timer = QTimer(self)   # settings edits come in bursts (typing): refresh the advice once
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(150)
        self._refresh_timer.timeout.connect(self._refresh_advice)
        self._build_layout()
        self._idle_progress()

        self.trainButton.clicked.connect(self.start_training)
        self.stopButton.clicked.connect(self.request_stop)
        self.pauseButton.toggled.connect(self._on_pause)
        self.resetButton.clicked.connect(self.reset_to_recommended)
        self.settings.findLrButton.clicked.connect(self.find_lr)
        self.settingsWarning.fieldActivated.connect(self.settings.focus_field)
        self.trainingHint.fieldActivated.connect(self.settings.focus_field)
        self.picker.changed.connect(self._on_dataset)
        self.picker.availabilityChanged.connect(self._on_availability)
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
        header = QHBoxLayout()
        header.addWidget(self.settingsNote, 1)
        header.addWidget(self.processesSpin)
        header.addWidget(self.resetButton)
        # Only the data set and settings scroll; the buttons, estimate, progress and status always stay in view.
        form = QWidget()
        form_layout = QVBoxLayout(form)
        form_layout.setContentsMargins(0, 0, 0, 0)
        form_layout.addWidget(data_box)
        form_layout.addLayout(header)
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
        layout.addWidget(self.settingsWarning)
        layout.addLayout(buttons)
        layout.addWidget(self.estimate)
        layout.addWidget(self.progress)
        layout.addWidget(self.statusLabel)
        layout.addWidget(self.trainingHint)

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
        """What to train; an invalid selection disables Train with its reason as the tooltip. While a run trains
        the form keeps showing that run's settings; the new selection's take over when it ends."""
        self.selection = selection
        self._apply_recommended()
        self._update_buttons()
        self._refresh_timer.start()   # the advice a moment later: a click in the list stays one short turn

    def set_summary(self, summary: ModelSummary) -> None:
        """The layer summary the window shows (its totals feed the memory estimate)."""
        self.summary = summary
        self._refresh_timer.start()

    def _apply_recommended(self) -> None:
        """Give the settings the engine's starting point for this architecture + data set, except for the
        fields the user has edited (`recommended_config`)."""
        cfg = self._recommended()
        if cfg is not None and not self.is_training():
            self.settings.apply_defaults(cfg)

    def _recommended(self) -> dict[str, Any] | None:
        arch = self.selection.arch if self.selection else None
        dataset = self.picker.current_name() if self.picker.is_loaded() else None
        if not arch or not dataset or not self.settings.is_built():
            return None
        return recommended_settings(arch, dataset)

    def reset_to_recommended(self) -> None:
        """"Reset to recommended": forget the edits; every field takes the architecture's recommended value."""
        cfg = self._recommended()
        if cfg is not None and not self.is_training():
            self.settings.reset_to(cfg)
            self._set_status("Settings reset to the recommended ones for "
                             f"{self.selection.arch if self.selection else '?'} on {self.picker.current_name()}.")

    def current_dataset(self) -> dict:
        return self.picker.current()

    @property
    def run_id(self) -> str | None:
        """The run trained last (or now) from this panel."""
        return self._run_id

    def set_workspace(self, workspace: Path) -> None:
        """Runs started from now on are stored in `workspace`."""
        self.workspace = Path(workspace)

    def processes(self) -> int:
        """How many processes the next run trains in (1: in this process, on a worker thread)."""
        return self.processesSpin.value()

    def is_training(self) -> bool:
        return self.runner.is_running()

    def set_blocked(self, reason: str) -> None:
        """Keep this panel from training ("" lets it train again), e.g. while Train all's experiment trains: the
        panel is disabled as a whole and Train and Resume say why."""
        self.blocked_by = reason
        self.setEnabled(not reason)
        self.setToolTip(reason)
        self._update_buttons()

    def _busy_reason(self) -> str:
        if self.blocked_by:
            return self.blocked_by
        return "A training run is in progress." if self.is_training() else ""

    def train_block_reason(self) -> str:
        """"" when Train can start, else why not (also Train's tooltip)."""
        sel = self.selection
        if busy := self._busy_reason():
            return busy
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
        if self.picker.error:
            return self.picker.error
        if self.picker.is_scanning():
            return "The image folder is still being read."
        return self.settings.error

    def next_job(self) -> TrainJob | None:
        """The job Train would start now (None when Train is blocked)."""
        if self.train_block_reason() or self.selection is None:
            return None
        from workbench.training.config import TrainJob

        sel, name = self.selection, self.picker.current_name() or ""
        return TrainJob(arch=sel.arch, dataset=name, arch_options=dict(sel.options), config=self.settings.config(),
                        data_root=self.picker.root_for(name), workspace=self.workspace,
                        input_override=sel.input_override, num_classes_override=sel.classes_override,
                        dataset_options=self.picker.dataset_options())

    def start_training(self) -> None:
        """Start a new run with the current settings (Ctrl+Return)."""
        self.ensure_engine()
        job = self.next_job()
        if job is None:
            self._set_status(self.train_block_reason())
            return
        self._launch(job)

    def resume_run(self, run_id: str) -> None:
        """Continue an interrupted or stopped run from its last checkpoint (its own settings and data)."""
        self.ensure_engine()
        if busy := self._busy_reason():
            self._set_status(busy)
            return
        from workbench.training.config import TrainJob

        self._launch(TrainJob(arch="", dataset="", workspace=self.workspace, resume_run_id=run_id))

    def wait_stopped(self, timeout_ms: int) -> bool:
        """Stop training, downloads, scans, timings and the LR finder, and wait up to `timeout_ms` for each;
        True when no thread is left running."""
        ok = self.runner.wait(timeout_ms)
        ok = self.estimate.wait_stopped(timeout_ms) and ok
        ok = (self._lr_finder is None or self._lr_finder.wait(timeout_ms)) and ok
        return self.picker.wait_stopped(timeout_ms) and ok

    def save_state(self) -> dict:
        """The settings the user edited (others follow the recommended defaults) and the data set."""
        if self.settings.is_built():
            values, edited = self.run_settings.user_values()
            values = {k: v for k, v in values.items() if k in edited}
        else:
            values = self._pending_settings or {}
        return {"settings": values, "processes": self.processes(), **self.picker.save_state()}

    def restore_state(self, state: dict) -> None:
        settings = dict(state.get("settings") or {})
        if self.settings.is_built():
            self.settings.set_values(settings)
        else:
            self._pending_settings = settings
        self.picker.restore_state(state)
        self.processesSpin.setValue(int(state.get("processes") or 1))
        self._apply_recommended()
        self._idle_progress()
        self._update_buttons()

    # ----- Find LR ------------------------------------------------------------------------
    def find_lr(self) -> None:
        """"Find LR": run the learning-rate range test on the next run's job, show the curve, fill the field."""
        job = self.next_job()
        if job is None:
            self._set_status(f"Cannot find a learning rate: {self.train_block_reason()}")
            return
        if self._lr_finder is None:
            from workbench.ui.lr_finder_ui import LrFinder

            self._lr_finder = LrFinder(self)
            self._lr_finder.suggested.connect(self._on_lr_suggested)
            self._lr_finder.failed.connect(self.errorOccurred)
            self._lr_finder.finished.connect(self._update_buttons)
        self.estimate.cancel()
        self._lr_finder.start(job)
        self._update_buttons()

    @Slot(float)
    def _on_lr_suggested(self, lr: float) -> None:
        self.settings.set_values({"lr": float(f"{lr:.3g}")})
        self._set_status(f"Learning rate set to the finder's suggestion, {lr:.3g}.")

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
        if not self.is_training():   # (while a run trains the form shows its settings, not the next run's)
            self.picker.set_val_fraction(self.settings.raw_values_safe().get("val_fraction"))
            self._refresh_timer.start()

    def _refresh_advice(self) -> None:
        """Warnings about implausible values and the estimate, for what the next Train would run."""
        if self.is_training() or not self.settings.is_built():
            return
        from workbench.training.hints import settings_warnings

        info = self.picker.current()
        self.settingsWarning.set_hints(settings_warnings(self.settings.raw_values_safe(),
                                                         train_size=info.get("train_size")))
        inputs, totals, reason = next_run_inputs(self.selection, self.settings, info, self.summary)
        self.estimate.set_inputs(inputs, totals, self.selection.input_shape if self.selection else None, reason)

    def _update_buttons(self) -> None:
        reason = self.train_block_reason()
        finding = self._lr_finder is not None and self._lr_finder.is_running()
        self.trainButton.setEnabled(not reason and not finding)
        self.trainButton.setToolTip(reason or "Start training (Ctrl+Return)")
        running = self.is_training()
        if not running and reason:
            self._showing_block_reason = True
            self._set_status(f"Cannot train: {reason}")
        elif not running and self._showing_block_reason:
            self._showing_block_reason = False
            self._set_status(READY)
        self.stopButton.setEnabled(running)
        self.pauseButton.setEnabled(running and self.control is not None)  # a child-process run cannot pause
        self.processesSpin.setEnabled(not running)
        if self._pause_action is not None:
            self._pause_action.setEnabled(running and self.control is not None)
        self.settings.setEnabled(not running and not finding)
        self.picker.setEnabled(not running and not finding)
        self.resetButton.setEnabled(not running and not finding and self._recommended() is not None)
        self.settings.findLrButton.setEnabled(not reason and not finding)

    @Slot(dict)
    def _on_dataset(self, info: dict) -> None:
        self._update_buttons()
        self._refresh_advice()
        self.datasetChanged.emit(info)

    @Slot(str)
    def _on_availability(self, _state: str) -> None:
        self._update_buttons()

    def _show_run_note(self) -> None:
        self.settingsNote.setText(self.run_settings.note())
        self.settingsNote.setVisible(bool(self.settingsNote.text()))
