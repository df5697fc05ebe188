"""Dataset picker: each registered data set with its availability, a data-root setting, Download, "Open folder…"
(for image folders) and the data set's declared options as typed fields.

What training will see (classes, channels, image size, split sizes, skipped files) comes from the registry's
`dataset_facts`: at once for the built-in sets, and for an image folder from a scan of its headers off the GUI
thread (the latest folder or option change wins).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from workbench.ui.dataset_options import DatasetOptionsForm, describe_facts, facts_task
from workbench.ui.download_worker import DownloadRunner
from workbench.ui.latest_task import LatestTask

if TYPE_CHECKING:
    from workbench.data import DatasetSpec
    from workbench.data.registry import DataFacts


READY = ("bundled", "on disk")


class DatasetPicker(QWidget):
    """`changed(dict)` fires with {"name", "channels", "height", "width", "num_classes", "train_size", "val_size",
    "skipped", "options"} whenever the data set, its folder or its options change (after a folder's scan)."""

    changed = Signal(dict)
    availabilityChanged = Signal(str)
    downloadFailed = Signal(str, str)   # message, details (empty message: cancelled)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._specs: dict[str, DatasetSpec] = {}
        self._folders: dict[str, Path] = {}     # dataset name -> chosen image folder
        self._pending: str | None = None        # dataset to select once the registry is loaded
        self._option_texts: dict[str, dict[str, str]] = {}   # dataset name -> option literal texts
        self._facts: DataFacts | None = None    # what training on the selection will see (None: not known yet)
        self._facts_error = ""
        self._val_fraction = 0.1
        self.data_root: Path | None = None      # None: the default data root
        self.combo = QComboBox()
        self.combo.setObjectName("datasetCombo")
        self.combo.addItem("loading…")
        self.combo.setEnabled(False)
        self.combo.currentIndexChanged.connect(self._on_selected)
        self.status = QLabel()
        self.status.setObjectName("datasetStatus")
        self.status.setWordWrap(True)
        self.factsLabel = QLabel()
        self.factsLabel.setObjectName("datasetFacts")
        self.factsLabel.setWordWrap(True)
        self.options = DatasetOptionsForm()
        self.options.setVisible(False)
        self.options.changed.connect(self._on_options_edited)
        self.scan = LatestTask("dataset-scan", self)
        self.scan.done.connect(self._on_facts)
        self.scan.failed.connect(self._on_facts_failed)
        self.scan.progressed.connect(self._on_scan_progress)
        self.downloadButton = QPushButton("Download")
        self.downloadButton.setObjectName("downloadButton")
        self.downloadButton.clicked.connect(self.download)
        self.folderButton = QPushButton("Open folder…")
        self.folderButton.setObjectName("openFolderButton")
        self.folderButton.clicked.connect(self.choose_folder)
        self.rootEdit = QLineEdit()
        self.rootEdit.setObjectName("dataRootEdit")
        self.rootEdit.setPlaceholderText("default data folder")
        self.rootEdit.editingFinished.connect(self._on_root_edited)
        root_button = QPushButton("…")
        root_button.setObjectName("dataRootButton")
        root_button.setToolTip("Choose the folder where data sets are kept and downloaded")
        root_button.clicked.connect(self.choose_root)
        self.downloads = DownloadRunner(self)
        self.downloads.finished.connect(self._on_download_finished)
        top = QHBoxLayout()
        top.addWidget(self.combo, 1)
        top.addWidget(self.downloadButton)
        top.addWidget(self.folderButton)
        root_row = QHBoxLayout()
        root_row.addWidget(QLabel("Data root"))
        root_row.addWidget(self.rootEdit, 1)
        root_row.addWidget(root_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.factsLabel)
        layout.addWidget(self.options)
        layout.addLayout(root_row)
        self._update_buttons("")

    # ----- registry ------------------------------------------------------------------------
    def load(self) -> None:
        """Fill the combo from the data registry (imports the data engine)."""
        import workbench.data as data

        self._specs = {name: data.get_dataset(name) for name in data.list_datasets()}
        wanted = self._pending or self.current_name() or "digits"
        self.combo.blockSignals(True)
        self.combo.clear()
        for name in self._specs:
            self.combo.addItem(name, name)
        self.combo.setEnabled(True)
        index = self.combo.findData(wanted)
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)
        self._pending = None
        self._selection_changed()

    def is_loaded(self) -> bool:
        return bool(self._specs)

    def current_name(self) -> str | None:
        data = self.combo.currentData()
        return str(data) if data else None

    def select(self, name: str) -> None:
        """Select a data set by name (remembered until the registry is loaded)."""
        if not self._specs:
            self._pending = name
            return
        index = self.combo.findData(name)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def current(self) -> dict:
        """The dataset dict of the contract (None where not known yet, e.g. while a folder is read)."""
        name = self.current_name()
        spec = self._specs.get(name) if name else None
        empty: dict[str, Any] = {"name": name or "", "channels": None, "height": None, "width": None,
                                 "num_classes": None, "train_size": None, "val_size": None, "skipped": 0,
                                 "options": {}}
        if spec is None:
            return empty
        facts = self._facts
        if facts is None:
            folder = spec.kind == "folder"
            return {**empty, "name": spec.name, "channels": None if folder else spec.channels,
                    "height": spec.size[0] or None, "width": spec.size[1] or None,
                    "num_classes": len(spec.classes) or None, "options": self.options.values()}
        return {"name": spec.name, "channels": facts.channels, "height": facts.size[0], "width": facts.size[1],
                "num_classes": facts.num_classes or None, "train_size": facts.train_size,
                "val_size": facts.val_size, "skipped": facts.skipped, "options": self.options.values()}

    def dataset_options(self) -> dict[str, Any]:
        """The options that differ from their defaults (TrainJob.dataset_options)."""
        return self.options.values()

    @property
    def error(self) -> str:
        """"" when the data set's options (and folder) are usable, else why not, in one sentence."""
        return self.options.error or self._facts_error

    def is_scanning(self) -> bool:
        return self.scan.is_busy()

    def set_val_fraction(self, fraction: object) -> None:
        """The validation fraction of the settings (split sizes of digits and single-tree folders follow it)."""
        if isinstance(fraction, float) and 0 < fraction < 1 and fraction != self._val_fraction:
            self._val_fraction = fraction
            if self._specs:
                self._update_facts()

    def root_for(self, name: str | None = None) -> Path | None:
        """The root to hand the engine: the chosen folder for image folders, else the data root."""
        name = name or self.current_name()
        spec = self._specs.get(name or "")
        if spec is not None and spec.kind == "folder":
            return self._folders.get(spec.name)
        return self.data_root

    def availability(self) -> str:
        """Availability of the selected set ("" before the registry is loaded)."""
        name = self.current_name()
        if not name or name not in self._specs:
            return ""
        import workbench.data as data

        try:
            return str(data.availability(name, self.root_for(name)))
        except Exception as exc:  # a broken root must not break the picker
            return f"unavailable ({exc})"

    def is_ready(self) -> bool:
        return self.availability() in READY

    # ----- UI state ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-check availability of every entry and update the labels and buttons."""
        import workbench.data as data

        for index in range(self.combo.count()):
            name = self.combo.itemData(index)
            spec = self._specs.get(name)
            if spec is None:
                continue
            try:
                state = data.availability(name, self.root_for(name))
            except Exception:
                state = "unavailable"
            self.combo.setItemText(index, f"{spec.title} — {state}")
            self.combo.setItemData(index, spec.description, Qt.ItemDataRole.ToolTipRole)
        state = self.availability()
        self._update_buttons(state)
        self.availabilityChanged.emit(state)

    def _update_buttons(self, state: str) -> None:
        spec = self._specs.get(self.current_name() or "")
        busy = self.downloads.is_running()
        self.downloadButton.setVisible(state == "needs download")
        self.downloadButton.setEnabled(not busy)
        self.folderButton.setVisible(spec is not None and spec.kind == "folder")
        folder = self._folders.get(spec.name) if spec is not None else None
        text = {"bundled": "Ships with the app.", "on disk": "Found on disk.",
                "needs download": "Not on disk yet: click Download.",
                "needs folder": "Choose an image folder (one subfolder per class)."}.get(state, state)
        if folder is not None:
            text += f" Folder: {folder}"
        self.status.setText(text)

    @Slot(int)
    def _on_selected(self, _index: int) -> None:
        self._selection_changed()

    def _selection_changed(self) -> None:
        """A new data set: its option fields, availability and facts."""
        name = self.current_name() or ""
        spec = self._specs.get(name)
        self.options.set_options(spec.options if spec else (), self._option_texts.get(name))
        self.refresh()
        self._update_facts()

    # ----- facts -----------------------------------------------------------------------------
    def _update_facts(self) -> None:
        """Work out what training will see; an image folder is scanned off the GUI thread (then `changed`)."""
        name = self.current_name() or ""
        spec = self._specs.get(name)
        self._facts, self._facts_error = None, ""
        self.options.revalidate()
        if spec is None or self.options.error:
            self.scan.invalidate()
            self._show_facts()
            return
        task = facts_task(name, self.root_for(name), self.options.values(), self._val_fraction)
        if spec.kind == "folder":
            if self.availability() != "on disk":
                self.scan.invalidate()
                self._show_facts()
                return
            self.factsLabel.setText("Reading the folder…")
            self.scan.request(task)
            self.changed.emit(self.current())
            return
        self.scan.invalidate()
        from workbench.errors import WorkbenchError
        from workbench.ui.tasks import RecordingSink

        try:
            self._facts = task(RecordingSink())
        except WorkbenchError as exc:
            self._on_facts_failed(0, str(exc), "")
            return
        self._show_facts()

    def _show_facts(self) -> None:
        facts = self._facts
        self.factsLabel.setText(self._facts_error or (describe_facts(facts) if facts is not None else ""))
        self.factsLabel.setVisible(bool(self.factsLabel.text()))
        self.changed.emit(self.current())

    @Slot(int, object)
    def _on_facts(self, _rid: int, facts: DataFacts) -> None:
        self._facts, self._facts_error = facts, ""
        self._show_facts()

    @Slot(int, str, str)
    def _on_facts_failed(self, _rid: int, message: str, _details: str) -> None:
        self._facts, self._facts_error = None, message
        named = [row.spec.name for row in self.options.fields if row.spec.name in message]
        self.options.set_error(message, named[0] if named else None)
        self._show_facts()

    @Slot(int, str, float)
    def _on_scan_progress(self, _rid: int, stage: str, fraction: float) -> None:
        self.factsLabel.setText(f"{stage}… {100 * fraction:.0f} %")

    @Slot()
    def _on_options_edited(self) -> None:
        name = self.current_name()
        if name:
            self._option_texts[name] = self.options.texts()
        self._update_facts()

    # ----- actions -------------------------------------------------------------------------
    def set_data_root(self, root: Path | str | None) -> None:
        self.data_root = Path(root).expanduser() if root else None
        self.rootEdit.setText(str(self.data_root) if self.data_root else "")
        if self._specs:
            self.refresh()

    def wait_stopped(self, timeout_ms: int) -> bool:
        """Stop a folder scan and a download; True when neither is left running."""
        scan = self.scan.shutdown(timeout_ms)
        return self.downloads.wait(timeout_ms) and scan

    def _on_root_edited(self) -> None:
        text = self.rootEdit.text().strip()
        if (Path(text).expanduser() if text else None) != self.data_root:
            self.set_data_root(text or None)

    def choose_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", str(self.data_root or ""))
        if folder:
            self.set_data_root(folder)

    def set_folder(self, folder: Path | str, name: str | None = None) -> None:
        """Use `folder` as the image folder of data set `name` (default: the selected one)."""
        name = name or self.current_name()
        if name:
            self._folders[name] = Path(folder)
            self.refresh()
            if name == self.current_name():
                self._update_facts()

    def choose_folder(self) -> None:
        """"Open folder…": pick an image folder (one subfolder per class)."""
        folder = QFileDialog.getExistingDirectory(self, "Image folder (one subfolder per class)")
        if folder:
            self.set_folder(folder)

    def download(self) -> None:
        """Download the selected set in a worker thread with a progress dialog."""
        name = self.current_name()
        if not name or self.downloads.is_running():
            return
        from workbench.paths import default_data_root

        self.downloads.start(name, self.data_root or default_data_root(), self.window())
        self._update_buttons(self.availability())

    @Slot(bool, str, str)
    def _on_download_finished(self, ok: bool, message: str, details: str) -> None:
        self.refresh()
        if not ok:
            self.downloadFailed.emit(message, details)

    # ----- settings ------------------------------------------------------------------------
    def save_state(self) -> dict:
        return {"dataset": self.current_name() or self._pending or "",
                "data_root": str(self.data_root) if self.data_root else "",
                "folders": {k: str(v) for k, v in self._folders.items()},
                "data_options": {k: dict(v) for k, v in self._option_texts.items()}}

    def restore_state(self, state: dict) -> None:
        for name, folder in dict(state.get("folders") or {}).items():
            self._folders[str(name)] = Path(folder)
        for name, texts in dict(state.get("data_options") or {}).items():
            if isinstance(texts, dict):
                self._option_texts[str(name)] = {str(k): str(v) for k, v in texts.items()}
        self.set_data_root(state.get("data_root") or None)
        if not self._specs:
            self._pending = str(state["dataset"]) if state.get("dataset") else self._pending
            return
        index = self.combo.findData(str(state.get("dataset") or ""))
        if index >= 0:
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(index)
            self.combo.blockSignals(False)
        self._selection_changed()   # the restored folder and options of the selection, even if it did not change
