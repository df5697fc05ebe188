"""The Compare view: tick architectures (each with its options, and variants of one architecture), see their
figures side by side in a table and bar charts — the lecture's comparison slide, made live — and train them all
as a controlled experiment.

Rows are computed off the GUI thread (`compare_rows.compare_task` on a `LatestTask`). "Train all" runs on its
own TaskRunner (`compare_experiment`); while it trains, the view reports `trainingChanged(True)` so the window can
keep the training panel from starting a second run, and it refuses to start while the panel trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from workbench.ui.compare_charts import CompareCharts, CompareTable
from workbench.ui.compare_experiment import ExperimentRunner
from workbench.ui.compare_picker import ComparePicker
from workbench.ui.compare_rows import CompareEntry, CompareOutcome, CompareResult, compare_task, entry_label
from workbench.ui.latest_task import LatestTask

if TYPE_CHECKING:
    from workbench.models import ArchSpec
    from workbench.ui.training_panel import TrainingPanel

DEFAULT_TICKED = ("vgg_cifar", "nin", "googlenet", "resnet18")


class CompareView(QWidget):
    """See the module docstring. `rowsShown()` fires when the table shows new figures."""

    rowsShown = Signal()
    trainingChanged = Signal(bool)     # the experiment started (True) / ended (False)
    runStarted = Signal(object)        # FitStart of each experiment run (as TrainingPanel's signals)
    stepReported = Signal(object)      # StepMetrics
    epochReported = Signal(object)     # EpochMetrics
    runFinished = Signal(object)       # FitResult
    errorOccurred = Signal(str, str)

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareView")
        self.workspace = Path(workspace)
        self._dataset: dict[str, Any] = {}
        self._speeds: dict[str, tuple[float | None, float | None]] = {}
        self._outcomes: tuple[CompareOutcome, ...] = ()
        self._panel: TrainingPanel | None = None
        self.task = LatestTask("compare", self)
        self.task.done.connect(self._on_rows)
        self.task.failed.connect(self._on_rows_failed)
        self.experiment = ExperimentRunner(self.workspace, self)
        for source, target in ((self.experiment.runStarted, self.runStarted),
                               (self.experiment.stepReported, self.stepReported),
                               (self.experiment.epochReported, self.epochReported),
                               (self.experiment.runFinished, self.runFinished),
                               (self.experiment.runFailed, self.errorOccurred)):
            source.connect(target)
        self.experiment.runStarted.connect(self._on_experiment_run)
        self.experiment.runFinished.connect(self._on_experiment_run)
        self.experiment.ended.connect(self._on_experiment_ended)
        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self.refresh)
        self._build()

    def _build(self) -> None:
        self.picker = ComparePicker()
        self.picker.changed.connect(self._on_picker_changed)
        self.measureCheck = QCheckBox("Measure speed (CPU)")
        self.measureCheck.setObjectName("measureCheck")
        self.measureCheck.setToolTip("Train and infer each architecture for about a second on random data to "
                                     "measure images/s (batch 64). Slow for large models.")
        self.measureCheck.toggled.connect(self.refresh)
        self.trainAllButton = QPushButton("Train all")
        self.trainAllButton.setObjectName("trainAllButton")
        self.trainAllButton.clicked.connect(self.train_all)
        self.stopAllButton = QPushButton("Stop")
        self.stopAllButton.setObjectName("stopAllButton")
        self.stopAllButton.clicked.connect(self.experiment.stop)
        self.status = QLabel("Tick architectures to compare them.")
        self.status.setObjectName("compareStatus")
        self.status.setWordWrap(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.picker, 1)
        left_layout.addWidget(self.measureCheck)
        buttons = QHBoxLayout()
        buttons.addWidget(self.trainAllButton, 1)
        buttons.addWidget(self.stopAllButton)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        self.table = CompareTable()
        self.charts = CompareCharts()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.table)
        right.addWidget(self.charts)
        right.setSizes([170, 510])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setSizes([230, 800])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self._update_buttons()

    # --- catalog, data set, training panel -----------------------------------------------------------------
    def set_catalog(self, specs: Sequence[ArchSpec], families: Sequence[str] | None = None,
                    ticked: Sequence[str] = DEFAULT_TICKED) -> None:
        """Fill the list (by family; torchvision collapsed) and tick `ticked` (those that exist)."""
        self.picker.set_catalog(specs, families, ticked)
        self.refresh()

    def set_workspace(self, workspace: Path) -> None:
        """Another workspace: its runs fill the accuracy column, its experiments the queue."""
        self.workspace = self.experiment.workspace = Path(workspace)
        self.refresh()

    def set_dataset(self, info: dict[str, Any]) -> None:
        """The training panel's data set: rows are computed at its channels and classes."""
        self._dataset = dict(info or {})
        self.refresh()

    def attach_training(self, panel: TrainingPanel) -> None:
        """Use `panel`'s data set and settings for Train all, and follow whether it trains."""
        self._panel = panel
        panel.runStarted.connect(self._on_panel_run)
        panel.runFinished.connect(self._on_panel_run)
        panel.datasetChanged.connect(self.set_dataset)
        self.set_dataset(panel.current_dataset() if panel.is_ready() else {})

    # --- what is compared (see ComparePicker) -------------------------------------------------------------
    def ticked(self) -> list[str]:
        """The ticked entries ("arch", or "arch#N" for a variant), in tick order (the table's order)."""
        return self.picker.ticked()

    def tick(self, key: str, on: bool = True) -> None:
        """Tick (or untick) an architecture or variant, as a click on its box does."""
        self.picker.tick(key, on)

    def add_variant(self, key: str) -> str:
        """A ticked copy of entry `key` to give other options; returns its key ("arch#N")."""
        return self.picker.add_variant(key)

    def show_options(self, key: str) -> None:
        self.picker.show_options(key)

    def set_option(self, key: str, name: str, text: str) -> None:
        """Set one option of an entry from literal text, as typed in its form."""
        self.picker.set_option(key, name, text)

    def entries(self) -> list[CompareEntry]:
        """Each ticked entry with its typed options (ValueError for a bad literal)."""
        return self.picker.entries()

    @Slot(bool)
    def _on_picker_changed(self, now: bool) -> None:
        self._update_buttons()
        if now:
            self.refresh()
        else:
            self._debounce.start()

    # --- rows -------------------------------------------------------------------------------------------------
    def _channels_classes(self) -> tuple[int | None, int | None]:
        ds = self._dataset
        return (int(ds["channels"]) if ds.get("channels") else None,
                int(ds["num_classes"]) if ds.get("num_classes") else None)

    @Slot()
    def refresh(self) -> int:
        """Recompute the rows off the GUI thread (latest request wins); returns the request id (0: nothing)."""
        self._debounce.stop()
        if not self.picker.specs():
            return 0
        try:
            entries = self.entries()
        except ValueError as exc:
            self.status.setText(f"⚠ {exc}")
            return 0
        channels, classes = self._channels_classes()
        measure = self.measureCheck.isChecked() and not self.is_training() and not self._panel_training()
        flags = [measure and e.key(channels, classes) not in self._speeds for e in entries]
        self.status.setText("Measuring speed…" if any(flags) else "Computing…")
        return self.task.request(compare_task(entries, channels=channels, classes=classes,
                                              workspace=self.workspace, measure=flags))

    @Slot(int, object)
    def _on_rows(self, _rid: int, result: CompareResult) -> None:
        channels, classes = self._channels_classes()
        outcomes = []
        for outcome in result.outcomes:
            row, key = outcome.row, outcome.entry.key(channels, classes)
            if row is not None and row.train_images_per_second is not None:
                self._speeds[key] = (row.train_images_per_second, row.infer_images_per_second)
            elif row is not None and self.measureCheck.isChecked() and key in self._speeds:
                train, infer = self._speeds[key]
                row = dataclasses.replace(row, train_images_per_second=train, infer_images_per_second=infer)
            outcomes.append(dataclasses.replace(outcome, row=row))
        self._outcomes = tuple(outcomes)
        labels = [entry_label(o.entry, self.picker.specs()[o.entry.arch].defaults()) for o in self._outcomes]
        self.table.set_outcomes(self._outcomes, labels)
        self.charts.set_rows([o.row for o in self._outcomes], labels)
        self._update_buttons()
        where = (f"at {self._dataset.get('name')}'s channels and classes" if self._dataset.get("name")
                 else "at each architecture's natural input")
        if not self.is_training():
            self.status.setText(f"{len(self._outcomes)} architecture(s) compared {where}.")
        self.rowsShown.emit()

    @Slot(int, str, str)
    def _on_rows_failed(self, _rid: int, message: str, details: str) -> None:
        self.status.setText(f"⚠ {message}")
        if details:
            self.errorOccurred.emit(message, details)

    def outcomes(self) -> tuple[CompareOutcome, ...]:
        """The rows shown (with failures), in tick order."""
        return self._outcomes

    # --- Train all ----------------------------------------------------------------------------------------
    def _panel_training(self) -> bool:
        return self._panel is not None and self._panel.is_training()

    def is_training(self) -> bool:
        """True while Train all's experiment runs."""
        return self.experiment.is_running()

    def train_block_reason(self) -> str:
        """"" when Train all can start, else why not (also the button's tooltip)."""
        panel = self._panel
        if self.is_training():
            return "The experiment is training."
        if not self.ticked():
            return "Tick at least one architecture."
        bad = sorted({o.entry.arch for o in self._outcomes if o.row is None})
        if bad:
            return f"The options of {', '.join(bad)} do not build a model; fix or untick them."
        if panel is None or not panel.is_ready():
            return "The training engine is still loading."
        if panel.is_training():
            return "A training run is in progress; Train all can start when it ends."
        state = panel.picker.availability()
        if state not in ("bundled", "on disk"):
            return "The data set is not available yet (see the training panel)."
        return panel.settings.error

    def _update_buttons(self) -> None:
        reason = self.train_block_reason()
        self.trainAllButton.setEnabled(not reason)
        self.trainAllButton.setToolTip(reason or "Train every ticked architecture one after another with the same "
                                                 "data, seed and settings (the training panel's).")
        self.stopAllButton.setEnabled(self.is_training())

    @Slot(object)
    def _on_panel_run(self, _event: object) -> None:
        self._update_buttons()
        if not self._panel_training():
            self.refresh()   # a finished run may change the accuracy column

    def train_all(self) -> bool:
        """Queue the ticked architectures as one experiment on the panel's data set and settings."""
        reason = self.train_block_reason()
        panel = self._panel
        if reason or panel is None:
            self.status.setText(f"Cannot train: {reason}")
            return False
        name = panel.picker.current_name() or ""
        started = self.experiment.start(self.entries(), dataset=name, data_root=panel.picker.root_for(name),
                                        config=panel.settings.config(), edited=sorted(panel.settings.edited_fields))
        if started:
            self.status.setText(f"Training {len(self.ticked())} network(s) on {name}…")
            self.trainingChanged.emit(True)
        self._update_buttons()
        return started

    def stop_training(self) -> None:
        """Stop the experiment's current run (the rest stay queued; Train all again continues)."""
        self.experiment.stop()

    @Slot(object)
    def _on_experiment_run(self, event: object) -> None:
        from workbench.training.events import FitStart

        if isinstance(event, FitStart):
            self.status.setText(f"Training {event.arch} on {event.dataset}…")
        else:
            self.refresh()   # the accuracy column fills as the runs finish

    @Slot(str, str)
    def _on_experiment_ended(self, message: str, details: str) -> None:
        self.status.setText(message)
        if details:
            self.errorOccurred.emit(message, details)
        self._update_buttons()
        self.trainingChanged.emit(False)
        self.refresh()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the experiment and the row computation; True when no thread is left."""
        ok = self.experiment.wait(timeout_ms)
        return self.task.shutdown(timeout_ms) and ok
