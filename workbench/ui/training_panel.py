"""The training panel: data set, settings, Train / Pause / Stop, progress; owns the plots and runs list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from workbench.ui import gc_guard
from workbench.ui.dataset_picker import DatasetPicker
from workbench.ui.plots import LivePlots
from workbench.ui.run_progress import RunProgress
from workbench.ui.runs_panel import RunsPanel
from workbench.ui.training_settings import SettingsForm, available_devices
from workbench.ui.training_worker import TrainingRunner

FAILED = ("failed", "diverged", "error")
READY = "Ready."


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class TrainingPanel(QWidget):
    """See docs/ARCHITECTURE.md (workbench.ui). The engine is imported lazily by `ensure_engine()`."""

    datasetChanged = Signal(dict)
    runStarted = Signal(str)
    runFinished = Signal(dict)
    statusText = Signal(str)
    deviceChanged = Signal(str)        # the device the run trains on (fit start)
    throughputChanged = Signal(float)  # images/s of the run in flight

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.workspace = Path(workspace)
        self._arch: dict[str, Any] = {"arch": None, "options": {}, "input_shape": None, "num_classes": None,
                                      "valid": False, "reason": "Select an architecture first."}
        self._pending_settings: dict[str, Any] | None = None
        self._run_id: str | None = None
        self._device = ""
        self._result: dict | None = None
        self._failure_shown = False
        self._showing_block_reason = False
        self.plots = LivePlots()
        self.runs_panel = RunsPanel(self.workspace)
        self.picker = DatasetPicker()
        self.settings = SettingsForm()
        self.runner = TrainingRunner(self)

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
        self._idle_progress()

        self.trainButton.clicked.connect(self.start_training)
        self.stopButton.clicked.connect(self.request_stop)
        self.pauseButton.toggled.connect(self._on_pause)
        self.picker.changed.connect(self._on_dataset)
        self.picker.availabilityChanged.connect(lambda _s: self._update_buttons())
        self.picker.downloadFailed.connect(self._on_download_failed)
        self.settings.changed.connect(self._on_settings_changed)
        self.runner.fitStarted.connect(self._on_fit_start)
        self.runner.stepMetrics.connect(self._on_step)
        self.runner.epochMetrics.connect(self._on_epoch)
        self.runner.fitFinished.connect(self._on_fit_finished)
        self.runner.fitFailed.connect(self._on_fit_failed)
        self.runner.progressed.connect(self._on_progress)
        self.runner.stopped.connect(self._on_thread_ended)
        self.runs_panel.overlayChanged.connect(self.plots.set_overlays)
        self.runs_panel.resumeRequested.connect(self.resume_run)
        self.runs_panel.errorOccurred.connect(self._show_error)
        self._update_buttons()
        # Torch and the data registry are imported after the window is up (see ensure_engine).
        QTimer.singleShot(0, self.ensure_engine)

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
        self.runs_panel.refresh()
        self._apply_recommended()
        self._idle_progress()
        self._update_buttons()
        gc_guard.settle()

    def is_ready(self) -> bool:
        return self.settings.is_built() and self.picker.is_loaded()

    # ----- contract API --------------------------------------------------------------------
    def set_architecture(self, arch: str, options: dict, input_shape: tuple[int, int, int] | None,
                         num_classes: int | None, valid: bool, reason: str) -> None:
        """What to train; when `valid` is False, Train is disabled with `reason` as its tooltip."""
        self._arch = {"arch": arch, "options": dict(options or {}),
                      "input_shape": tuple(input_shape) if input_shape else None,
                      "num_classes": num_classes, "valid": bool(valid), "reason": reason}
        self._apply_recommended()
        self._update_buttons()

    def _apply_recommended(self) -> None:
        """Give the settings the engine's starting point for this architecture + data set, except for the
        fields the user has edited (`recommended_config`)."""
        arch, dataset = self._arch["arch"], self.picker.current_name() if self.picker.is_loaded() else None
        if not arch or not dataset or not self.settings.is_built() or self.is_training():
            return
        import dataclasses

        from workbench.errors import WorkbenchError
        from workbench.training.config import recommended_config

        try:
            cfg = recommended_config(arch, dataset)
        except WorkbenchError:
            return
        self.settings.apply_defaults(dataclasses.asdict(cfg))

    def current_dataset(self) -> dict:
        return self.picker.current()

    def last_run_id(self) -> str | None:
        """The run trained last in this session, else the newest run in the store."""
        if self._run_id:
            return self._run_id
        records = sorted(self.runs_panel.records, key=lambda r: r.created_at, reverse=True)
        return records[0].run_id if records else None

    def is_training(self) -> bool:
        return self.runner.is_running()

    def train_block_reason(self) -> str:
        """"" when Train can start, else why not (also Train's tooltip)."""
        if self.is_training():
            return "A training run is in progress."
        if not self.is_ready():
            return "The training engine is still loading."
        if not self._arch["arch"]:
            return "Select an architecture first."
        if not self._arch["valid"]:
            return self._arch["reason"] or "The architecture's options are not valid."
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
        if reason:
            self._set_status(reason)
            return
        from workbench.training.config import TrainJob

        name = self.picker.current_name() or ""
        shape, classes = self._arch["input_shape"], self._arch["num_classes"]
        job = TrainJob(arch=self._arch["arch"], dataset=name, arch_options=self._arch["options"],
                       config=self.settings.config(), data_root=self.picker.root_for(name),
                       workspace=self.workspace, input_override=shape, num_classes_override=classes)
        self._launch(job)

    def resume_run(self, run_id: str) -> None:
        """Continue an interrupted or stopped run from its last checkpoint."""
        self.ensure_engine()
        if self.is_training():
            self._set_status("A training run is in progress.")
            return
        from workbench.training.config import TrainConfig, TrainJob

        try:
            rec = self.runs_panel.store.get_run(run_id)
            config = TrainConfig.from_dict(dict(rec.config))
        except Exception as exc:
            self._show_error(f"Cannot resume run {run_id}: {exc}", "")
            return
        job = TrainJob(arch=rec.arch, dataset=rec.dataset, arch_options=dict(rec.arch_options), config=config,
                       data_root=self.picker.root_for(rec.dataset), workspace=self.workspace,
                       resume_run_id=run_id)
        self._launch(job)

    def _launch(self, job: Any) -> None:
        self._result, self._failure_shown, self._run_id = None, False, None
        self.plots.reset()
        self.progress.start(job.config.epochs)
        self.pauseButton.setChecked(False)
        self._set_status("Preparing data and model…")
        self.runner.start(job)
        self._update_buttons()

    def request_stop(self) -> None:
        """Ask the run to stop cooperatively (Esc); it checkpoints first."""
        if self.is_training():
            self.runner.stop()
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

    # ----- slots ---------------------------------------------------------------------------
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
        control = self.runner.control
        if control is None or not self.is_training():
            return
        control.pause() if paused else control.resume()
        self.pauseButton.setText("Resume" if paused else "Pause")
        self._set_status("Paused." if paused else "Resumed.")

    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        self._set_status(f"{stage} {100 * fraction:.0f} %" if 0 <= fraction < 1 else stage)

    @Slot(dict)
    def _on_fit_start(self, info: dict) -> None:
        self._run_id = str(info.get("run_id", ""))
        self._device = str(info.get("device", ""))
        self.progress.start(int(info.get("epochs", 1)), int(info.get("start_epoch", 0)),
                            int(info.get("batches_per_epoch", 1)))
        self.plots.start_run(int(info.get("epochs", 1)))
        self.deviceChanged.emit(self._device)
        self.runs_panel.active_run_id = self._run_id
        self.runs_panel.refresh()
        self._set_status(f"Training {info.get('arch')} on {info.get('dataset')} ({self._device}, "
                         f"{info.get('train_size')} train / {info.get('val_size')} val images).")
        self.runStarted.emit(self._run_id)

    @Slot(dict)
    def _on_step(self, m: dict) -> None:
        self.plots.add_step(m)
        self.progress.step(int(m.get("batch", 0)), int(m.get("batches", 1)), m.get("eta_seconds"))
        ips = _number(m.get("images_per_second"))
        if ips is not None:
            self.throughputChanged.emit(ips)

    @Slot(dict)
    def _on_epoch(self, m: dict) -> None:
        self.plots.add_epoch(m)
        self.progress.epoch_done(int(m.get("epoch", 0)))
        self._set_status(f"Epoch {m.get('epoch')}/{m.get('epochs')}: val accuracy "
                         f"{100 * float(m.get('val_accuracy') or 0):.2f} %, "
                         f"{float(m.get('images_per_second') or 0):,.0f} img/s")

    @Slot(dict)
    def _on_fit_finished(self, result: dict) -> None:
        self._result = result
        status, message = str(result.get("status", "")), str(result.get("message") or "")
        if status in FAILED and not self._failure_shown and not result.get("reported_failure"):
            self._failure_shown = True
            self._show_error(message or f"Training {status}.", "")
        if status == "completed":
            best = _number(result.get("best_val_accuracy"))
            text = f"Run completed: {result.get('epochs_completed', 0)} epoch(s)"
            text += f", best val accuracy {100 * best:.2f} %." if best is not None else "."
        else:
            text = message or f"Run {status}."  # the engine's message already says how it ended
        self._set_status(text)

    @Slot(str, str)
    def _on_fit_failed(self, message: str, details: str) -> None:
        if self._result is None and self._run_id is None:
            self._result = {"run_id": "", "status": "error", "message": message}
        self._failure_shown = True
        self._show_error(message, details)
        self._set_status(message)

    @Slot()
    def _on_thread_ended(self) -> None:
        result = self._result or {"run_id": self._run_id or "", "status": "error", "message": "no result"}
        result = {k: v for k, v in result.items() if k != "reported_failure"}
        self.runs_panel.active_run_id = None
        self.pauseButton.setChecked(False)
        self.pauseButton.setText("Pause")
        self.progress.ended()
        self.plots.end_run()
        self.runs_panel.refresh()
        self.picker.refresh()
        self._update_buttons()
        self.runFinished.emit(result)

    @Slot(str, str)
    def _on_download_failed(self, message: str, details: str) -> None:
        if message:
            self._show_error(message, details)

    def _show_error(self, message: str, details: str) -> None:
        from workbench.ui.dialogs import show_error

        show_error(self.window(), message, details)

    def _set_status(self, text: str) -> None:
        self.statusLabel.setText(text)
        self.statusText.emit(text)
