"""The data set's options as typed fields (the rows the architecture form uses), built from the registry's
declaration (`DatasetSpec.options`): EMNIST's split, an image folder's size and channels, fake's sizes and shape;
and the task that reads what training on a data set with those options will see (`dataset_facts`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from workbench.ui.option_field import OptionField
from workbench.ui.tasks import Task, TaskSink

if TYPE_CHECKING:
    from workbench.data.registry import DataFacts, DataOption


def facts_task(name: str, root: Path | None, options: dict[str, Any], val_fraction: float) -> Task:
    """A task reading what training on `name` will see (DataFacts); for an image folder, a header scan that
    reports its progress and stops when cancelled."""

    def task(sink: TaskSink) -> DataFacts:
        from workbench.data.registry import dataset_facts

        def progress(done: int, total: int) -> None:
            sink.progress("Reading the folder", done / total if total else 0.0)

        return dataset_facts(name, root=root, options=options, val_fraction=val_fraction, progress=progress,
                             cancel=sink.cancelled)

    return task


def describe_facts(facts: DataFacts) -> str:
    """"2 classes · 10 train / 2 val images · 12×16 gray · skipped 1 unreadable file"."""
    h, w = facts.size
    parts = [f"{facts.num_classes} classes"]
    if facts.train_size is not None:
        parts.append(f"{facts.train_size:,} train / {facts.val_size or 0:,} val images")
    if h and w:
        parts.append(f"{h}×{w} {'gray' if facts.channels == 1 else 'colour'}")
    if facts.skipped:
        parts.append(f"skipped {facts.skipped:,} unreadable file{'s' if facts.skipped != 1 else ''}")
    return " · ".join(parts)


class DatasetOptionsForm(QWidget):
    """`changed` fires on every edit; `values()` holds the options that differ from their defaults."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("datasetOptions")
        self.fields: list[OptionField] = []
        self._form = QFormLayout(self)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._error = ""

    def set_options(self, options: tuple[DataOption, ...], texts: dict[str, str] | None = None) -> None:
        """Rebuild the rows for a data set's declared options, restoring literal `texts` saved earlier."""
        while self._form.rowCount():
            self._form.removeRow(0)
        self.fields = []
        for spec in options:
            row = OptionField(spec, none_label="auto")   # a data set's None is "decided from the data"
            if texts and spec.name in texts:
                row.set_text(texts[spec.name])
            row.connect(self._on_edit)
            self.fields.append(row)
            label = QLabel(spec.name.replace("_", " ").capitalize())
            label.setToolTip(row.help)
            self._form.addRow(label, row.widget)
        self.setVisible(bool(options))
        self.revalidate()

    def field(self, name: str) -> QWidget:
        """The editor of option `name` (KeyError when the data set has none)."""
        for row in self.fields:
            if row.spec.name == name:
                return row.widget
        raise KeyError(name)

    def values(self) -> dict[str, Any]:
        """Options whose value differs from the default (what `TrainJob.dataset_options` gets); {} while a field
        does not parse (see `error`)."""
        out: dict[str, Any] = {}
        for row in self.fields:
            try:
                value = row.value()
            except ValueError:
                return {}
            if value != row.spec.default:
                out[row.spec.name] = value
        return out

    def texts(self) -> dict[str, str]:
        """Every field as literal text (for QSettings)."""
        return {row.spec.name: row.text() for row in self.fields}

    @property
    def error(self) -> str:
        """"" when every field parses, else one sentence naming the field."""
        return self._error

    def set_error(self, message: str, name: str | None = None) -> None:
        """Show a reason the options are not valid (e.g. the engine's InvalidOptionError) on field `name`."""
        for row in self.fields:
            row.set_invalid(message if row.spec.name == name else "")
        self._error = message

    def revalidate(self) -> None:
        """Mark the fields that do not parse (clearing reasons set by `set_error`)."""
        self._error = ""
        for row in self.fields:
            try:
                row.value()
                row.set_invalid("")
            except ValueError as exc:
                row.set_invalid(str(exc))
                self._error = self._error or f"Data-set option {exc}"

    def _on_edit(self, *_args: object) -> None:
        self.revalidate()
        self.changed.emit()
