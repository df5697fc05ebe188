"""Dataset picker: each registered data set with its availability, a data-root setting, Download and
"Open folder…" (for image folders)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from workbench.ui.download_worker import DownloadRunner

if TYPE_CHECKING:
    from workbench.data import DatasetSpec


READY = ("bundled", "on disk")


class DatasetPicker(QWidget):
    """`changed(dict)` fires with {"name", "channels", "height", "width", "num_classes"}."""

    changed = Signal(dict)
    availabilityChanged = Signal(str)
    downloadFailed = Signal(str, str)   # message, details (empty message: cancelled)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._specs: dict[str, DatasetSpec] = {}
        self._folders: dict[str, Path] = {}     # dataset name -> chosen image folder
        self._pending: str | None = None        # dataset to select once the registry is loaded
        self.data_root: Path | None = None      # None: the default data root
        self.combo = QComboBox()
        self.combo.setObjectName("datasetCombo")
        self.combo.addItem("loading…")
        self.combo.setEnabled(False)
        self.combo.currentIndexChanged.connect(self._on_selected)
        self.status = QLabel()
        self.status.setObjectName("datasetStatus")
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
        self.refresh()
        self.changed.emit(self.current())

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
        """The dataset dict of the contract (num_classes None when unknown)."""
        name = self.current_name()
        spec = self._specs.get(name) if name else None
        if spec is None:
            return {"name": name or "", "channels": None, "height": None, "width": None, "num_classes": None}
        return {"name": spec.name, "channels": spec.channels, "height": spec.size[0], "width": spec.size[1],
                "num_classes": len(spec.classes) or None}

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
        self.refresh()
        self.changed.emit(self.current())

    # ----- actions -------------------------------------------------------------------------
    def set_data_root(self, root: Path | str | None) -> None:
        self.data_root = Path(root).expanduser() if root else None
        self.rootEdit.setText(str(self.data_root) if self.data_root else "")
        if self._specs:
            self.refresh()

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
            self.changed.emit(self.current())

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
                "folders": {k: str(v) for k, v in self._folders.items()}}

    def restore_state(self, state: dict) -> None:
        for name, folder in dict(state.get("folders") or {}).items():
            self._folders[str(name)] = Path(folder)
        self.set_data_root(state.get("data_root") or None)
        if state.get("dataset"):
            self.select(str(state["dataset"]))
