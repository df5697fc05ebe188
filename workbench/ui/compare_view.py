"""The Compare view: tick architectures (each with its options), see their figures side by side in a table and
bar charts — the lecture's comparison slide, made live — and train them all as one controlled experiment.

Rows are computed off the GUI thread (`compare_rows.compare_task` on a `LatestTask`). "Train all" runs on its
own TaskRunner (`compare_experiment`); while it trains, the view reports `trainingChanged(True)` so the window can
keep the training panel from starting a second run, and it refuses to start while the panel trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.analysis_tasks import LatestTask
from workbench.ui.compare_charts import CompareCharts, CompareTable
from workbench.ui.compare_experiment import ExperimentRunner
from workbench.ui.compare_rows import CompareEntry, CompareOutcome, CompareResult, compare_task, entry_label
from workbench.ui.option_field import OptionField

if TYPE_CHECKING:
    from workbench.models import ArchSpec
    from workbench.ui.training_panel import TrainingPanel

NAME_ROLE = Qt.ItemDataRole.UserRole + 1
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
        self._specs: dict[str, ArchSpec] = {}
        self._ticked: list[str] = []
        self._texts: dict[str, dict[str, str]] = {}      # arch -> option -> literal text
        self._fields: list[OptionField] = []
        self._arch = ""                                  # whose options the form shows
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
        self.archList = QTreeWidget()
        self.archList.setObjectName("compareArchList")
        self.archList.setHeaderHidden(True)
        self.archList.itemChanged.connect(self._on_item_changed)
        self.archList.currentItemChanged.connect(self._on_current)
        self.optionsBox = QGroupBox("Options")
        self.form = QFormLayout(self.optionsBox)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
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
        left_layout.addWidget(QLabel("Tick architectures to compare:"))
        left_layout.addWidget(self.archList, 3)
        left_layout.addWidget(self.optionsBox)
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
        self.optionsBox.setVisible(False)
        self._update_buttons()

    # --- catalog, data set, training panel -----------------------------------------------------------------
    def set_catalog(self, specs: Sequence[ArchSpec], families: Sequence[str] | None = None,
                    ticked: Sequence[str] = DEFAULT_TICKED) -> None:
        """Fill the list (by family; torchvision collapsed) and tick `ticked` (those that exist)."""
        self._specs = {s.name: s for s in specs}
        order = list(families or dict.fromkeys(s.family for s in specs))
        with QSignalBlocker(self.archList):
            self.archList.clear()
            groups: dict[str, QTreeWidgetItem] = {}
            for family in order:
                groups[family] = QTreeWidgetItem(self.archList, [family])
            for spec in specs:
                parent = groups.get(spec.family) or groups.setdefault(
                    spec.family, QTreeWidgetItem(self.archList, [spec.family]))
                child = QTreeWidgetItem(parent, [spec.name])
                child.setData(0, NAME_ROLE, spec.name)
                child.setToolTip(0, spec.description)
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                child.setCheckState(0, Qt.CheckState.Unchecked)
            for family, item in groups.items():
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                item.setExpanded(family != "torchvision")
        self._ticked = []
        for name in ticked:
            if name in self._specs:
                self.tick(name, refresh=False)
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

    # --- ticking and options --------------------------------------------------------------------------------
    def _items(self) -> dict[str, QTreeWidgetItem]:
        out = {}
        for i in range(self.archList.topLevelItemCount()):
            group = self.archList.topLevelItem(i)
            for j in range(group.childCount() if group is not None else 0):
                child = group.child(j) if group is not None else None
                if child is not None:
                    out[str(child.data(0, NAME_ROLE))] = child
        return out

    def ticked(self) -> list[str]:
        """The ticked architectures, in the order they were ticked (the table's order)."""
        return list(self._ticked)

    def tick(self, arch: str, on: bool = True, *, refresh: bool = True) -> None:
        """Tick (or untick) an architecture, as a click on its box does."""
        item = self._items()[arch]
        with QSignalBlocker(self.archList):
            item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._set_ticked(arch, on)
        if refresh:
            self.refresh()

    def _set_ticked(self, arch: str, on: bool) -> None:
        if on and arch not in self._ticked:
            self._ticked.append(arch)
        elif not on and arch in self._ticked:
            self._ticked.remove(arch)
        self._update_buttons()

    @Slot(QTreeWidgetItem, int)
    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        name = item.data(0, NAME_ROLE)
        if name:
            self._set_ticked(str(name), item.checkState(0) == Qt.CheckState.Checked)
            self.refresh()

    def show_options(self, arch: str) -> None:
        """Show `arch`'s options form (its edits are kept per architecture)."""
        self.archList.setCurrentItem(self._items()[arch])

    def set_option(self, arch: str, name: str, text: str) -> None:
        """Set one option from literal text, as typed in the form; recomputes when `arch` is ticked."""
        self._texts.setdefault(arch, {})[name] = text
        if arch == self._arch:
            next(f for f in self._fields if f.spec.name == name).set_text(text)
        self.refresh()

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_current(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        name = current.data(0, NAME_ROLE) if current is not None else None
        if not name or name == self._arch:
            return
        self._arch = str(name)
        while self.form.rowCount():
            self.form.removeRow(0)
        self._fields = []
        saved = self._texts.get(self._arch, {})
        for option in self._specs[self._arch].options:
            f = OptionField(option)
            if option.name in saved:
                f.set_text(saved[option.name])
            f.connect(self._on_field_edited)
            self.form.addRow(QLabel(option.name), f.widget)
            self._fields.append(f)
        self.optionsBox.setTitle(f"Options of {self._arch}")
        self.optionsBox.setVisible(bool(self._fields))

    def _on_field_edited(self) -> None:
        self._texts[self._arch] = {f.spec.name: f.text() for f in self._fields}
        if self._arch in self._ticked:
            self._debounce.start()

    def entries(self) -> list[CompareEntry]:
        """What is compared: each ticked architecture with its typed options (ValueError for a bad literal)."""
        out = []
        for arch in self._ticked:
            options = {}
            for option in self._specs[arch].options:
                text = self._texts.get(arch, {}).get(option.name)
                if text is not None:
                    f = OptionField(option)
                    f.set_text(text)
                    options[option.name] = f.value()
            out.append(CompareEntry(arch, options))
        return out

    # --- rows -------------------------------------------------------------------------------------------------
    def _channels_classes(self) -> tuple[int | None, int | None]:
        ds = self._dataset
        return (int(ds["channels"]) if ds.get("channels") else None,
                int(ds["num_classes"]) if ds.get("num_classes") else None)

    @Slot()
    def refresh(self) -> int:
        """Recompute the rows off the GUI thread (latest request wins); returns the request id (0: nothing)."""
        self._debounce.stop()
        if not self._specs:
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
        labels = [entry_label(o.entry, self._specs[o.entry.arch].defaults()) for o in self._outcomes]
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
        if not self._ticked:
            return "Tick at least one architecture."
        bad = [o.entry.arch for o in self._outcomes if o.row is None]
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
            self.status.setText(f"Training {len(self._ticked)} architecture(s) on {name}…")
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
