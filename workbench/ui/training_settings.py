"""The training settings form, generated from the fields of `TrainConfig` and validated by it.

Each field gets a widget chosen from its annotation: int → spin box, float → line edit, bool → check box,
a closed set of strings → combo box, an optional number → line edit where empty means "none", an optional
bool → auto/on/off. `TrainConfig.validate()` decides what is valid; the field it names is highlighted.
Fields the user edits are remembered (`edited_fields`); `apply_defaults` fills only the others, so the
form follows the engine's recommended starting point for the chosen architecture and data set.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

# Fields shown on the first tab, in this order; every other TrainConfig field goes to "Advanced".
BASIC_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "schedule", "augment", "amp", "device",
                "max_batches", "seed")
INVALID_STYLE = "background-color: rgba(220, 50, 50, 90);"
HIGHLIGHT_STYLE = "background-color: rgba(255, 200, 0, 110);"   # a field a hint points at, for a moment
HIGHLIGHT_MS = 2500
_LABELS = {"lr": "Learning rate", "amp": "Mixed precision (AMP)", "max_batches": "Max batches / epoch"}


def available_devices() -> list[str]:
    """"auto", "cpu" and whatever torch reports (cuda:N, mps)."""
    import torch

    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def _object_name(field: str) -> str:
    return "epochsSpin" if field == "epochs" else f"{field}Edit"


class SettingsForm(QWidget):
    """A form over TrainConfig; `changed` fires on every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingSettings")
        self.widgets: dict[str, QWidget] = {}
        self._kinds: dict[str, str] = {}
        self._config_cls: Any = None
        self._error = "The training engine is still loading."
        self._bad_field: str | None = None
        self._highlighted: str | None = None
        self.edited_fields: set[str] = set()
        self.findLrButton = QPushButton("Find LR")
        self.findLrButton.setObjectName("findLrButton")
        self.findLrButton.setToolTip("Try learning rates on a few hundred batches and fill in the suggested one")
        self._highlight_timer = QTimer(self)
        self._highlight_timer.setSingleShot(True)
        self._highlight_timer.setInterval(HIGHLIGHT_MS)
        self._highlight_timer.timeout.connect(self._clear_highlight)
        self.tabs = QTabWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    # ----- building ------------------------------------------------------------------------
    def build(self, devices: list[str]) -> None:
        """Create one widget per TrainConfig field (imports the config module; no torch needed)."""
        from workbench.training import config as cfgmod

        self._config_cls = cfgmod.TrainConfig
        choices = {"optimizer": cfgmod.OPTIMIZERS, "schedule": cfgmod.SCHEDULES, "amp": cfgmod.AMP_MODES,
                   "channels_last": cfgmod.CHANNELS_LAST_MODES, "device": tuple(devices)}
        helps: dict[str, str] = getattr(cfgmod, "FIELD_HELP", {})
        forms = {}
        for tab in ("Basic", "Advanced"):
            page = QWidget()
            forms[tab] = QFormLayout(page)
            self.tabs.addTab(page, tab)
        fields = list(dataclasses.fields(self._config_cls))
        order = {name: i for i, name in enumerate(BASIC_FIELDS)}
        fields.sort(key=lambda f: order.get(f.name, len(order)))
        for f in fields:
            kind, widget = self._make_widget(f.name, str(f.type), f.default, choices.get(f.name))
            widget.setObjectName(_object_name(f.name))
            widget.setToolTip(helps.get(f.name, ""))
            self.widgets[f.name] = widget
            self._kinds[f.name] = kind
            label = _LABELS.get(f.name, f.name.replace("_", " ").capitalize())
            row: QWidget = widget
            if f.name == "lr":  # the learning-rate finder sits beside its field
                row = QWidget()
                box = QHBoxLayout(row)
                box.setContentsMargins(0, 0, 0, 0)
                box.addWidget(widget, 1)
                box.addWidget(self.findLrButton)
            forms["Basic" if f.name in order else "Advanced"].addRow(label, row)
        self.validate()

    def _make_widget(self, name: str, annotation: str, default: Any,
                     choices: tuple[str, ...] | None) -> tuple[str, QWidget]:
        optional = "None" in annotation
        base = annotation.replace("| None", "").replace("None |", "").strip()
        if choices:
            combo = QComboBox()
            combo.addItems([str(c) for c in choices])
            combo.setCurrentText(str(default))
            combo.currentTextChanged.connect(lambda *_, n=name: self._user_edit(n))
            return "choice", combo
        if base == "bool" and optional:
            combo = QComboBox()
            combo.addItems(["auto", "on", "off"])
            combo.currentTextChanged.connect(lambda *_, n=name: self._user_edit(n))
            return "tristate", combo
        if base == "bool":
            box = QCheckBox()
            box.setChecked(bool(default))
            box.toggled.connect(lambda *_, n=name: self._user_edit(n))
            return "bool", box
        if base == "int" and not optional:
            spin = QSpinBox()
            spin.setRange(0, 1_000_000_000)  # 0 is allowed so a bad value is shown, not silently clamped
            spin.setValue(int(default))
            spin.valueChanged.connect(lambda *_, n=name: self._user_edit(n))
            return "int", spin
        edit = QLineEdit("" if default is None else repr(default) if base == "float" else str(default))
        if optional:
            edit.setPlaceholderText("none")
        edit.textChanged.connect(lambda *_, n=name: self._user_edit(n))
        return ("opt_" if optional else "") + (base if base in ("int", "float") else "str"), edit

    def is_built(self) -> bool:
        return self._config_cls is not None

    # ----- values --------------------------------------------------------------------------
    def raw_values(self) -> dict[str, Any]:
        """Field values as typed; raises ValueError(field, message) for text that is not a number."""
        return {name: self.value_of(name) for name in self.widgets}

    def value_of(self, name: str) -> Any:
        """One field's value; ValueError(field, message) for text that is not a number."""
        widget, kind = self.widgets[name], self._kinds[name]
        if kind == "choice":
            return widget.currentText()  # type: ignore[attr-defined]
        if kind == "tristate":
            return {"auto": None, "on": True, "off": False}[widget.currentText()]  # type: ignore[attr-defined]
        if kind == "bool":
            return widget.isChecked()  # type: ignore[attr-defined]
        if kind == "int":
            return widget.value()  # type: ignore[attr-defined]
        text = widget.text().strip()  # type: ignore[attr-defined]
        if kind.startswith("opt_") and text.lower() in ("", "none"):
            return None
        number = kind.removeprefix("opt_")
        try:
            return int(text) if number == "int" else float(text) if number == "float" else text
        except ValueError:
            what = "a whole number" if number == "int" else "a number"
            raise ValueError(name, f"{name} must be {what}, got {text!r}.") from None

    def raw_values_safe(self) -> dict[str, Any]:
        """Field values for saving: text that does not parse is kept as typed."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            try:
                out[name] = self.value_of(name)
            except ValueError:
                out[name] = widget.text()  # type: ignore[attr-defined]
        return out

    def config(self) -> Any:
        """A validated TrainConfig from the form; raises InvalidOptionError (or ValueError for bad text)."""
        return self._config_cls.from_dict(self.raw_values())

    def _user_edit(self, name: str) -> None:
        self.edited_fields.add(name)
        self._edited()

    def reset_to(self, values: dict[str, Any]) -> None:
        """Forget the user's edits and show `values` (e.g. `recommended_config` for the selection)."""
        self.edited_fields.clear()
        self.set_values(values, edited=False)

    def apply_defaults(self, values: dict[str, Any]) -> None:
        """Set the fields the user has not edited (e.g. from `recommended_config`), leaving edits alone."""
        self.set_values({k: v for k, v in values.items() if k not in self.edited_fields}, edited=False)

    def set_values(self, values: dict[str, Any], edited: bool = True) -> None:
        """Fill the form from a (possibly partial) dict of TrainConfig fields; unknown keys are ignored.
        With `edited` the fields count as the user's choices (kept by `apply_defaults`)."""
        if edited:
            self.edited_fields.update(k for k in values if k in self.widgets)
        before = self.raw_values_safe()
        for name, value in values.items():
            widget = self.widgets.get(name)
            if widget is None:
                continue
            kind = self._kinds[name]
            widget.blockSignals(True)
            try:
                if kind == "choice":
                    widget.setCurrentText(str(value))  # type: ignore[attr-defined]
                elif kind == "tristate":
                    widget.setCurrentText("auto" if value is None else "on" if value else "off")  # type: ignore[attr-defined]
                elif kind == "bool":
                    widget.setChecked(bool(value))  # type: ignore[attr-defined]
                elif kind == "int":
                    widget.setValue(int(value))  # type: ignore[attr-defined]
                else:
                    widget.setText("" if value is None else str(value))  # type: ignore[attr-defined]
            except (TypeError, ValueError):
                pass  # a stale saved value: keep the widget's current one
            finally:
                widget.blockSignals(False)
        if self.raw_values_safe() != before:
            self._edited()
        else:
            self.validate()

    # ----- validation ----------------------------------------------------------------------
    def _edited(self, *_: Any) -> None:
        self.validate()
        self.changed.emit()

    def validate(self) -> str:
        """Validate the form; highlights the offending field. Returns "" when valid, else the reason."""
        from workbench.errors import WorkbenchError

        bad: str | None = None
        error = ""
        if self._config_cls is None:
            error = "The training engine is still loading."
        else:
            try:
                self.config()
            except ValueError as exc:
                if isinstance(exc, WorkbenchError):
                    error = str(exc)
                    first = error.split(" ", 1)[0].strip(".,:;'\"")
                    bad = first if first in self.widgets else None
                else:
                    bad, error = exc.args[0], exc.args[1]
        if bad != self._bad_field:
            if self._bad_field in self.widgets:
                self.widgets[self._bad_field].setStyleSheet("")
            if bad is not None:
                self.widgets[bad].setStyleSheet(INVALID_STYLE)
                self._show_field(bad)
            self._bad_field = bad
        self._error = error
        return error

    def _show_field(self, name: str) -> None:
        self.tabs.setCurrentIndex(0 if name in BASIC_FIELDS else 1)

    def focus_field(self, name: str) -> None:
        """Show field `name` (its tab), give it the keyboard focus and highlight it for a moment (a hint's link)."""
        widget = self.widgets.get(name)
        if widget is None:
            return
        self._clear_highlight()
        self._show_field(name)
        widget.setFocus()
        if name != self._bad_field:  # the invalid colour says more
            widget.setStyleSheet(HIGHLIGHT_STYLE)
            self._highlighted = name
            self._highlight_timer.start()

    @property
    def highlighted_field(self) -> str | None:
        """The field a hint's link highlighted (until the highlight fades)."""
        return self._highlighted

    def _clear_highlight(self) -> None:
        name, self._highlighted = self._highlighted, None
        if name is not None and name != self._bad_field:
            self.widgets[name].setStyleSheet("")

    @property
    def error(self) -> str:
        """"" when the settings are valid, else one sentence saying what is wrong."""
        return self._error

    @property
    def invalid_field(self) -> str | None:
        """The highlighted field, if any."""
        return self._bad_field

