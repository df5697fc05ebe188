"""File → Export model…: a run's checkpoint as ONNX, a torch.export program (.pt2) or safetensors weights, or its
metrics as TensorBoard logs, through `workbench.export.export_run` on a TaskRunner.

The dialog stays open while the export runs (its Export button disabled) and reports in one sentence: where the
file was written (`exported(ExportResult)`, the window puts the path in its status bar), or what failed and what to
do, e.g. the optional extra to install when it is missing (the engine's MissingExtraError sentence).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.dialogs import show_error
from workbench.ui.tasks import TaskRunner, TaskSink

if TYPE_CHECKING:
    from workbench.export import ExportResult
    from workbench.runs import RunRecord

FORMATS = {"onnx": "ONNX (.onnx: Netron, onnxruntime)", "pt2": "torch.export program (.pt2)",
           "safetensors": "safetensors weights (.safetensors)", "tensorboard": "TensorBoard logs (folder)"}
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors"}


def default_output(workspace: Path, run_id: str, fmt: str, checkpoint: str) -> Path:
    """Where an export goes unless the user says otherwise: `<workspace>/exports/<run>-<checkpoint>.<suffix>`, or
    `<workspace>/exports/tensorboard` (the run's logs go to a folder of its id inside)."""
    folder = workspace / "exports"
    if fmt == "tensorboard":
        return folder / "tensorboard"
    return folder / f"{run_id}-{checkpoint}{SUFFIXES[fmt]}"


def export_task(run_id: str, fmt: str, workspace: Path, checkpoint: str, out: Path, overwrite: bool
                ) -> Callable[[TaskSink], ExportResult]:
    """A task: `export_run` with the dialog's choices (the output's folder is created)."""

    def task(sink: TaskSink) -> ExportResult:
        from workbench.export import export_run

        sink.progress(f"Exporting {run_id} as {fmt}", -1.0)
        (out if fmt == "tensorboard" else out.parent).mkdir(parents=True, exist_ok=True)
        return export_run(run_id, format=fmt, workspace=workspace, checkpoint=checkpoint, out=out,
                          overwrite=overwrite)

    return task


class ExportModelDialog(QDialog):
    """Choose a run, a format, a checkpoint and an output path; `exported(ExportResult)` once written."""

    exported = Signal(object)

    def __init__(self, workspace: Path, runs: Sequence[RunRecord], run_id: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportModelDialog")
        self.setWindowTitle("Export model")
        self.setMinimumWidth(620)
        self.workspace = Path(workspace)
        self.result_value: ExportResult | None = None
        self._edited_output = False
        self.runCombo = QComboBox()
        self.runCombo.setObjectName("exportRun")
        for rec in runs:
            name = f" “{rec.name}”" if rec.name else ""
            self.runCombo.addItem(f"{rec.run_id}{name} — {rec.arch} on {rec.dataset} ({rec.status})", rec.run_id)
        if run_id is not None and (index := self.runCombo.findData(run_id)) >= 0:
            self.runCombo.setCurrentIndex(index)
        self.formatCombo = QComboBox()
        self.formatCombo.setObjectName("exportFormat")
        for key, text in FORMATS.items():
            self.formatCombo.addItem(text, key)
        self.checkpointCombo = QComboBox()
        self.checkpointCombo.setObjectName("exportCheckpoint")
        self.checkpointCombo.addItem("best (highest validation accuracy)", "best")
        self.checkpointCombo.addItem("last (where training ended)", "last")
        self.outputEdit = QLineEdit()
        self.outputEdit.setObjectName("exportOutput")
        self.outputEdit.textEdited.connect(self._on_output_edited)
        browse = QPushButton("Browse…")
        browse.setObjectName("exportBrowse")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.outputEdit, 1)
        out_row.addWidget(browse)
        self.overwriteCheck = QCheckBox("Replace an existing file")
        self.overwriteCheck.setObjectName("exportOverwrite")
        self.statusLabel = QLabel("")
        self.statusLabel.setObjectName("exportStatus")
        self.statusLabel.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Run:", self.runCombo)
        form.addRow("Format:", self.formatCombo)
        form.addRow("Checkpoint:", self.checkpointCombo)
        form.addRow("Output:", out_row)
        form.addRow("", self.overwriteCheck)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.exportButton = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.exportButton.setObjectName("exportButton")
        self.exportButton.clicked.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.statusLabel)
        layout.addWidget(self.buttons)
        self.runner = TaskRunner("export-model", self)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        for combo in (self.runCombo, self.formatCombo, self.checkpointCombo):
            combo.currentIndexChanged.connect(self._on_choice)
        self._on_choice()
        if not runs:
            self.statusLabel.setText("There are no runs in this workspace yet; train one first.")
            self.exportButton.setEnabled(False)

    # ----- choices -------------------------------------------------------------------------------------------
    def run_id(self) -> str | None:
        value = self.runCombo.currentData()
        return str(value) if value else None

    def format(self) -> str:
        return str(self.formatCombo.currentData())

    def checkpoint(self) -> str:
        return str(self.checkpointCombo.currentData())

    def output(self) -> Path:
        return Path(self.outputEdit.text().strip()).expanduser()

    def set_choice(self, fmt: str | None = None, checkpoint: str | None = None, output: Path | None = None) -> None:
        """Choose as the user would (tests and callers skip the combo boxes)."""
        if fmt is not None:
            self.formatCombo.setCurrentIndex(self.formatCombo.findData(fmt))
        if checkpoint is not None:
            self.checkpointCombo.setCurrentIndex(self.checkpointCombo.findData(checkpoint))
        if output is not None:
            self.outputEdit.setText(str(output))
            self._edited_output = True

    @Slot()
    def _on_choice(self) -> None:
        tensorboard = self.format() == "tensorboard"
        self.checkpointCombo.setEnabled(not tensorboard)
        run_id = self.run_id()
        if run_id and not self._edited_output:
            self.outputEdit.setText(str(default_output(self.workspace, run_id, self.format(), self.checkpoint())))

    @Slot(str)
    def _on_output_edited(self, _text: str) -> None:
        self._edited_output = True

    @Slot()
    def _browse(self) -> None:
        if self.format() == "tensorboard":
            path = QFileDialog.getExistingDirectory(self, "TensorBoard log folder", str(self.output().parent))
        else:
            suffix = SUFFIXES[self.format()]
            path, _ = QFileDialog.getSaveFileName(self, "Export model", str(self.output()), f"*{suffix}")
        if path:
            self.set_choice(output=Path(path))

    # ----- export --------------------------------------------------------------------------------------------
    @Slot()
    def start_export(self) -> bool:
        """Run the export in the background; False when it cannot start (no run, no output, one running)."""
        run_id = self.run_id()
        if run_id is None or self.runner.is_running():
            return False
        if not self.outputEdit.text().strip():
            self.statusLabel.setText("Choose where to write the export.")
            return False
        self.exportButton.setEnabled(False)
        self.statusLabel.setText(f"Exporting run {run_id} as {self.format()}…")
        self.runner.start(export_task(run_id, self.format(), self.workspace, self.checkpoint(), self.output(),
                                      self.overwriteCheck.isChecked()))
        return True

    def _on_done(self, result: ExportResult) -> None:
        self.result_value = result
        size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 1e5 else f"{result.bytes / 1e3:.1f} kB"
        self.statusLabel.setText(f"Saved {result.path} ({size}).")
        window = self.parentWidget()
        if isinstance(window, QMainWindow):
            window.statusBar().showMessage(f"Saved the {result.format} export of run {result.run_id} to "
                                           f"{result.path}", 15_000)
        self.exported.emit(result)

    def _on_failed(self, message: str, details: str) -> None:
        self.statusLabel.setText(message)
        show_error(self, message, details)

    def _on_finished(self) -> None:
        self.exportButton.setEnabled(self.run_id() is not None)

    def is_exporting(self) -> bool:
        return self.runner.is_running()

    def done(self, code: int) -> None:
        """Closing waits for an export in flight (it is short; files are written atomically)."""
        self.runner.wait(30_000)
        super().done(code)
