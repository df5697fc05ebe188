"""One row of the architecture options form: the editor for an OptionSpec and how to read its value; `OptionForms`
keeps the rows of every architecture shown so far."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget


class OptionSpec(Protocol):
    """What a form row needs of an option: an architecture's OptionSpec or a data set's DataOption."""

    @property
    def name(self) -> str: ...
    @property
    def default(self) -> Any: ...
    @property
    def help(self) -> str: ...
    @property
    def choices(self) -> tuple[Any, ...] | None: ...
    @property
    def allowed(self) -> str: ...


INVALID_STYLE = "border: 2px solid #d9534f; border-radius: 3px;"  # readable on light and dark palettes


class OptionField:
    """One form row: the editor widget plus how to read its value."""

    def __init__(self, spec: OptionSpec, none_label: str = "None") -> None:
        """`none_label`: how a choice of None reads (e.g. "auto" where None means decided from the data)."""
        self.spec = spec
        default = spec.default
        self.widget: QWidget
        if spec.choices is not None:
            box = QComboBox()
            for choice in spec.choices:
                box.addItem(none_label if choice is None else choice if isinstance(choice, str) else repr(choice),
                            choice)
            box.setCurrentIndex(max(0, list(spec.choices).index(default)) if default in spec.choices else 0)
            self.widget = box
        elif isinstance(default, bool):
            self.widget = QCheckBox()
            self.widget.setChecked(default)
        elif isinstance(default, int):
            spin = QSpinBox()
            spin.setRange(min(0, default), 1_000_000)
            spin.setValue(default)
            spin.setKeyboardTracking(False)
            self.widget = spin
        elif isinstance(default, float):
            dspin = QDoubleSpinBox()
            dspin.setDecimals(4)
            dspin.setRange(min(0.0, default), 1e6)
            dspin.setSingleStep(0.05)
            dspin.setValue(default)
            dspin.setKeyboardTracking(False)
            self.widget = dspin
        else:  # str, tuples, lists, None: a Python literal in a text field
            edit = QLineEdit(default if isinstance(default, str) else repr(default))
            edit.setClearButtonEnabled(False)
            self.widget = edit
        self.widget.setObjectName(f"option_{spec.name}")
        tip = spec.help + (f"\nAllowed: {spec.allowed}" if getattr(spec, "allowed", "") else "")
        self.help = tip
        self.widget.setToolTip(tip)

    def connect(self, slot: Callable[[], None]) -> None:
        w = self.widget
        if isinstance(w, QComboBox):
            w.currentIndexChanged.connect(slot)
        elif isinstance(w, QCheckBox):
            w.toggled.connect(slot)
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.valueChanged.connect(slot)
        elif isinstance(w, QLineEdit):
            w.textChanged.connect(slot)

    def value(self) -> Any:
        """The typed value; ValueError with a short reason when the text is not a literal."""
        w = self.widget
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        text = w.text().strip() if isinstance(w, QLineEdit) else ""
        if isinstance(self.spec.default, str):
            return text
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(
                f"{self.spec.name}: {text!r} is not a Python literal such as {self.spec.default!r}.") from exc

    def text(self) -> str:
        """The value as literal text (what QSettings stores)."""
        w = self.widget
        if isinstance(w, QLineEdit):
            return w.text()
        return repr(self.value())

    def set_text(self, text: str) -> None:
        """Restore from literal text; silently keeps the default when it does not fit."""
        w = self.widget
        if isinstance(w, QLineEdit):
            w.setText(text)
            return
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return
        if isinstance(w, QComboBox):
            index = w.findData(value)
            if index >= 0:
                w.setCurrentIndex(index)
        elif isinstance(w, QCheckBox) and isinstance(value, bool):
            w.setChecked(value)
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)) and isinstance(value, (int, float)):
            w.setValue(value)  # type: ignore[arg-type]

    def set_invalid(self, reason: str) -> None:
        self.widget.setStyleSheet(INVALID_STYLE if reason else "")
        self.widget.setProperty("invalid", bool(reason))
        self.widget.setToolTip(f"{reason}\n\n{self.help}" if reason else self.help)


class OptionForms:
    """The option rows of every architecture shown so far, in one form layout: built on an architecture's first
    selection, then kept and only hidden (switching back costs no rebuild, which took ~5-10 ms of a click, and
    keeps what was typed). `fields` are the shown architecture's; texts restored from the settings fill a form
    when it is built."""

    def __init__(self, form: QFormLayout, on_edit: Callable[[], None]) -> None:
        self.form = form
        self._on_edit = on_edit
        self.fields: list[OptionField] = []
        self._shown = ""
        self._built: dict[str, list[OptionField]] = {}
        self._saved: dict[str, dict[str, str]] = {}

    def show(self, name: str, options: Sequence[OptionSpec]) -> None:
        """Show architecture `name`'s rows (built now when it has none yet)."""
        for f in self.fields:
            self.form.setRowVisible(f.widget, False)
        fields = self._built.get(name)
        if fields is None:
            fields = self._built[name] = []
            saved = self._saved.get(name, {})
            for option in options:
                f = OptionField(option)
                if option.name in saved:
                    f.set_text(saved[option.name])
                f.connect(self._on_edit)
                label = QLabel(option.name)
                label.setToolTip(f.help)
                self.form.addRow(label, f.widget)
                fields.append(f)
        for f in fields:
            self.form.setRowVisible(f.widget, True)
        self.fields, self._shown = fields, name

    def restore(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        """Texts kept in the settings (architecture -> option -> literal); their forms are built again with them."""
        self._saved.update({name: dict(values) for name, values in texts.items()})
        self._drop(list(texts))

    def clear(self) -> None:
        """Forget every form (a new catalog); what was typed is kept for when they are built again."""
        self._saved = self.texts()
        self._drop(list(self._built))

    def _drop(self, names: Sequence[str]) -> None:
        for name in names:
            for f in self._built.pop(name, []):
                self.form.removeRow(f.widget)
            if name == self._shown:
                self.fields, self._shown = [], ""

    def texts(self) -> dict[str, dict[str, str]]:
        """What is typed in every form, restored ones not built yet included: architecture -> option -> text."""
        built = {name: {f.spec.name: f.text() for f in fields} for name, fields in self._built.items()}
        return {**self._saved, **built}
