"""The architecture picker: a list grouped by family with a search box, the options form of the selected
architecture (generated from its OptionSpecs, validated by the registry), and the input/class overrides.

The registry is passed in after the engine has loaded (it imports torch), so this module stays light.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.option_field import OptionForms

if TYPE_CHECKING:
    from workbench.models import ArchSpec


NAME_ROLE = Qt.ItemDataRole.UserRole + 1
EDIT_DELAY_MS = 150     # option edits come in bursts (typing): the selection follows the last one


@dataclass(frozen=True)
class ArchSelection:
    """The current choice, sent to the summary and to the training panel."""

    arch: str
    options: dict[str, Any]                       # resolved when valid, as typed otherwise
    input_override: tuple[int, int, int] | None   # None: follow the data set
    classes_override: int | None                  # None: follow the data set
    input_shape: tuple[int, int, int]             # what the summary is computed at
    num_classes: int
    valid: bool = True
    reason: str = ""
    invalid_field: str = ""
    raw_options: dict[str, str] = field(default_factory=dict)  # literal text per option, for QSettings


class ArchitecturePanel(QWidget):
    """List of architectures by family, search box, options form and input/class overrides."""

    selectionChanged = Signal(object)  # ArchSelection

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._specs: dict[str, ArchSpec] = {}
        self._resolve: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
        self._item_of: dict[str, QTreeWidgetItem] = {}
        self._arch = ""
        self._dataset: dict[str, Any] = {}
        self._last: ArchSelection | None = None
        # The selection is sent when this fires: 150 ms after an edit (typing comes in bursts), a turn after a
        # click in the list (the list and form first, the summary request next: two short turns, not one long).
        self._pending = QTimer(self, singleShot=True)
        self._pending.timeout.connect(self._emit)

        self.search = QLineEdit(placeholderText="Search architectures (Ctrl+F)")
        self.search.setObjectName("architectureSearch")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)
        self.search.returnPressed.connect(self._select_first_visible)

        self.tree = QTreeWidget()
        self.tree.setObjectName("architectureList")
        self.tree.setHeaderHidden(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(True)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.placeholder = QTreeWidgetItem(self.tree, ["Loading the model zoo…"])
        self.placeholder.setFlags(Qt.ItemFlag.NoItemFlags)

        self.description = QLabel(wordWrap=True)
        self.description.setObjectName("architectureDescription")
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.options_box = QGroupBox("Options")
        self.form = QFormLayout(self.options_box)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.options = OptionForms(self.form, self._edited)
        self.form_message = QLabel(wordWrap=True)
        self.form_message.setObjectName("optionsMessage")

        self.override = QCheckBox("Override input and classes")
        self.override.setToolTip("By default the input channels and class count follow the chosen data set.")
        self.override.setObjectName("inputOverride")
        self.shape_spins = [self._spin(1, 64), self._spin(1, 4096), self._spin(1, 4096)]
        self.classes_spin = self._spin(1, 100_000)
        self.classes_spin.setObjectName("classesSpin")
        self.follow_label = QLabel(wordWrap=True)
        self.override.toggled.connect(self._on_override_toggled)
        input_box = QGroupBox("Input")
        shape_row = QHBoxLayout()
        for i, spin in enumerate(self.shape_spins):
            spin.setObjectName(("inputChannels", "inputHeight", "inputWidth")[i])
            shape_row.addWidget(spin, 1)
            if i < 2:
                shape_row.addWidget(QLabel("×"))
        input_form = QFormLayout(input_box)
        input_form.addRow(self.override)
        input_form.addRow("C × H × W", shape_row)
        input_form.addRow("Classes", self.classes_spin)
        input_form.addRow(self.follow_label)
        self._on_override_toggled(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 3)
        layout.addWidget(self.description)
        layout.addWidget(self.options_box)
        layout.addWidget(self.form_message)
        layout.addWidget(input_box)

    def _spin(self, low: int, high: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(self._changed_now)
        return spin

    # --- catalog -------------------------------------------------------------------------------------
    def set_catalog(self, specs: Sequence[ArchSpec], resolve: Callable[[str, dict[str, Any]], dict[str, Any]],
                    families: Sequence[str] | None = None) -> None:
        """Fill the list from ArchSpecs (in registry order) and remember the validator (resolve_options)."""
        self.options.clear()
        self._specs = {s.name: s for s in specs}
        self._resolve = resolve
        order = list(families or dict.fromkeys(s.family for s in specs))
        bold = QFont(self.font())
        bold.setBold(True)
        with QSignalBlocker(self.tree):
            self.tree.clear()
            self._item_of = {}
            groups: dict[str, QTreeWidgetItem] = {}
            for family in order:
                item = QTreeWidgetItem(self.tree, [family])
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                item.setFont(0, bold)
                groups[family] = item
            for spec in specs:
                parent = groups.get(spec.family) or groups.setdefault(
                    spec.family, QTreeWidgetItem(self.tree, [spec.family]))
                child = QTreeWidgetItem(parent, [spec.name])
                child.setData(0, NAME_ROLE, spec.name)
                child.setToolTip(0, spec.description)
                self._item_of[spec.name] = child
            for family, item in groups.items():
                item.setText(0, f"{family}  ({item.childCount()})")
                item.setExpanded(family != "torchvision" or item.childCount() <= 12)
        self._apply_filter(self.search.text())

    def names(self) -> list[str]:
        """Architecture names in list order."""
        return list(self._specs)

    def visible_names(self) -> list[str]:
        """Names not hidden by the search box."""
        return [n for n, item in self._item_of.items() if not item.isHidden()]

    def _groups(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    @staticmethod
    def _children(group: QTreeWidgetItem) -> list[QTreeWidgetItem]:
        items = (group.child(j) for j in range(group.childCount()))
        return [item for item in items if item is not None]

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for group in self._groups():
            shown = 0
            for child in self._children(group):
                name = str(child.data(0, NAME_ROLE) or "")
                spec = self._specs.get(name)
                hay = f"{name} {spec.family} {spec.description}".lower() if spec else name.lower()
                hide = bool(needle) and needle not in hay
                child.setHidden(hide)
                shown += not hide
            group.setHidden(group.childCount() > 0 and shown == 0)
            if needle and shown:
                group.setExpanded(True)

    def _select_first_visible(self) -> None:
        visible = self.visible_names()
        if visible:
            self.select(visible[0])

    def focus_search(self) -> None:
        """Ctrl+F: focus the search box and select its text."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    # --- selection and form ----------------------------------------------------------------------------
    def current_arch(self) -> str:
        return self._arch

    def select(self, name: str) -> bool:
        """Select an architecture by name; False when it is not in the list. Selecting the current architecture
        again sends its selection again (the summary comes from the cache)."""
        item = self._item_of.get(name)
        if item is None:
            return False
        if name == self._arch:
            self._changed_now()
            return True
        if item.isHidden():
            self.search.clear()
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        name = current.data(0, NAME_ROLE) if current is not None else None
        if not name or name == self._arch:
            return
        self._arch = name
        self._build_form(self._specs[name])
        self._pending.start(0)

    def _build_form(self, spec: ArchSpec) -> None:
        self.options.show(spec.name, spec.options)
        natural = "×".join(map(str, spec.natural_input))
        # Zero-width spaces after commas let long tuples in descriptions wrap.
        text = spec.description.replace(",", ",\u200b")
        self.description.setText(f"<b>{spec.name}</b> — {text}<br>"
                                 f"<small>Designed for {natural} inputs, {spec.default_classes} classes.</small>")
        self.options_box.setVisible(bool(self.options.fields))
        self.form_message.clear()

    def set_option_text(self, name: str, text: str) -> None:
        """Set one option from literal text (as a user would type it); validated like an edit."""
        for f in self.options.fields:
            if f.spec.name == name:
                f.set_text(text)
                return
        raise KeyError(name)

    def field_widget(self, name: str) -> QWidget:
        """The editor of option `name` (for tests and focus)."""
        return next(f.widget for f in self.options.fields if f.spec.name == name)

    # --- data set and overrides -------------------------------------------------------------------------
    def set_dataset(self, info: dict[str, Any]) -> None:
        """TrainingPanel.datasetChanged: the input and classes follow it unless overridden."""
        self._dataset = dict(info or {})
        self._changed_now()

    def _on_override_toggled(self, on: bool) -> None:
        for spin in (*self.shape_spins, self.classes_spin):
            spin.setEnabled(on)
        self._changed_now()

    def _followed(self, spec: ArchSpec, options: dict[str, Any]) -> tuple[tuple[int, int, int], int, str]:
        natural = spec.natural_input_for(options) if hasattr(spec, "natural_input_for") else spec.natural_input
        ds = self._dataset
        if not ds:
            return natural, spec.default_classes, "Following the architecture's natural input."
        channels = int(ds.get("channels") or natural[0])
        classes = int(ds.get("num_classes") or spec.default_classes)
        # Images are resized to the size the model needs, so only the channels and classes follow the data.
        note = (f"Follows data set {ds.get('name', '?')}: {channels} channel(s), {classes} classes; "
                f"images resized to {natural[1]}×{natural[2]}.")
        return (channels, natural[1], natural[2]), classes, note

    def _edited(self) -> None:
        self._pending.start(EDIT_DELAY_MS)

    def _changed_now(self) -> None:
        self._pending.stop()
        self._emit()

    def _emit(self) -> None:
        spec = self._specs.get(self._arch)
        if spec is None:
            return
        for f in self.options.fields:
            f.set_invalid("")
        raw = {f.spec.name: f.text() for f in self.options.fields}
        options: dict[str, Any] = {}
        reason, bad = "", ""
        for f in self.options.fields:
            try:
                options[f.spec.name] = f.value()
            except ValueError as exc:
                reason, bad = str(exc), f.spec.name
                break
        if not reason and self._resolve is not None:
            try:
                options = self._resolve(self._arch, options)
            except Exception as exc:  # InvalidOptionError: find which field it names
                reason = str(exc)
                bad = self._field_named_in(reason)
        safe_options = options if not reason else spec.defaults()
        shape, classes, note = self._followed(spec, safe_options)
        input_override: tuple[int, int, int] | None = None
        classes_override: int | None = None
        spins = (*self.shape_spins, self.classes_spin)
        with QSignalBlocker(self.shape_spins[0]), QSignalBlocker(self.shape_spins[1]), \
                QSignalBlocker(self.shape_spins[2]), QSignalBlocker(self.classes_spin):
            if self.override.isChecked():
                input_override = tuple(s.value() for s in self.shape_spins)  # type: ignore[assignment]
                classes_override = self.classes_spin.value()
                shape, classes = input_override, classes_override  # type: ignore[assignment]
                note = "Overridden: the summary and training use this input shape and class count."
            else:
                for spin, value in zip(spins, (*shape, classes)):
                    spin.setValue(value)
        self.follow_label.setText(note)
        if bad:
            for f in self.options.fields:
                if f.spec.name == bad:
                    f.set_invalid(reason)
        self.form_message.setText(f"⚠ {reason}" if reason else "")
        c, h, w = shape
        selection = ArchSelection(self._arch, options, input_override, classes_override, (c, h, w), classes,
                                  not reason, reason, bad, raw)
        self._last = selection
        self.selectionChanged.emit(selection)

    def _field_named_in(self, message: str) -> str:
        quoted = re.findall(r"option '([^']+)'", message)
        names = [f.spec.name for f in self.options.fields]
        for name in quoted:
            if name in names:
                return name
        for name in sorted(names, key=len, reverse=True):
            if name in message:
                return name
        return ""

    def selection(self) -> ArchSelection | None:
        """The selection last sent (None before the first; a click or edit still waiting is not in it)."""
        return self._last

    def send_now(self) -> ArchSelection | None:
        """Send the current selection now (also one still waiting) and return it."""
        if self._arch:
            self._changed_now()
        return self._last

    # --- persistence --------------------------------------------------------------------------------------
    def save_state(self) -> dict[str, Any]:
        """Last architecture, the option texts of every edited architecture and the overrides."""
        texts = self.options.texts()
        return {
            "arch": self._arch,
            "options": texts,
            "override": self.override.isChecked(),
            "input": [s.value() for s in self.shape_spins],
            "classes": self.classes_spin.value(),
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Inverse of save_state (call after set_catalog); unknown names are ignored."""
        texts = state.get("options") or {}
        if isinstance(texts, dict):
            self.options.restore({str(k): dict(v) for k, v in texts.items() if isinstance(v, dict)})
        with QSignalBlocker(self.override):
            self.override.setChecked(bool(state.get("override", False)))
        for spin, value in zip(self.shape_spins, state.get("input") or []):
            with QSignalBlocker(spin):
                spin.setValue(int(value))
        with QSignalBlocker(self.classes_spin):
            self.classes_spin.setValue(int(state.get("classes") or 10))
        for spin in (*self.shape_spins, self.classes_spin):
            spin.setEnabled(self.override.isChecked())
        arch = str(state.get("arch") or "")
        if arch and arch in self._specs:
            if arch == self._arch:
                self._build_form(self._specs[arch])
                self._changed_now()
            else:
                self.select(arch)
