"""The Compare view's picker: architectures by family with a box to tick each, variants of one architecture
(the same network with other options, e.g. ResNet's plain twin), and the options form of the current entry,
built from the architecture's OptionSpecs like the architecture panel's.

Entries are named by a key: the architecture's name for its own row, `arch#N` for its N-th variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.compare_rows import CompareEntry
from workbench.ui.option_field import OptionField

if TYPE_CHECKING:
    from workbench.models import ArchSpec

KEY_ROLE = Qt.ItemDataRole.UserRole + 1     # the entry's key


def arch_of(key: str) -> str:
    """The architecture of an entry key ("resnet20#2" → "resnet20")."""
    return key.split("#", 1)[0]


class ComparePicker(QWidget):
    """`changed(bool)`: the ticked entries or their options changed (True: at once, False: an edit in the
    form, worth a short debounce)."""

    changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._specs: dict[str, ArchSpec] = {}
        self._ticked: list[str] = []                 # entry keys in tick order
        self._texts: dict[str, dict[str, str]] = {}  # entry key -> option -> literal text
        self._fields: list[OptionField] = []
        self._current = ""                           # the entry whose options the form shows
        self.archList = QTreeWidget()
        self.archList.setObjectName("compareArchList")
        self.archList.setHeaderHidden(True)
        self.archList.itemChanged.connect(self._on_item_changed)
        self.archList.currentItemChanged.connect(self._on_current)
        self.optionsBox = QGroupBox("Options")
        self.form = QFormLayout(self.optionsBox)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.addVariantButton = QPushButton("Add variant")
        self.addVariantButton.setObjectName("addVariantButton")
        self.addVariantButton.setToolTip("Compare the same architecture with other options (e.g. residual=False "
                                         "for ResNet's plain twin): adds a ticked copy to edit.")
        self.addVariantButton.setEnabled(False)
        self.addVariantButton.clicked.connect(self._add_current_variant)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Tick architectures to compare:"))
        layout.addWidget(self.archList, 3)
        layout.addWidget(self.optionsBox)
        layout.addWidget(self.addVariantButton)
        self.optionsBox.setVisible(False)

    # --- catalog ----------------------------------------------------------------------------------------------
    def set_catalog(self, specs: Sequence[ArchSpec], families: Sequence[str] | None = None,
                    ticked: Sequence[str] = ()) -> None:
        """Fill the list (by family; torchvision collapsed) and tick `ticked` (those that exist)."""
        self._specs = {s.name: s for s in specs}
        self._texts, self._ticked, self._current = {}, [], ""
        order = list(families or dict.fromkeys(s.family for s in specs))
        with QSignalBlocker(self.archList):
            self.archList.clear()
            groups: dict[str, QTreeWidgetItem] = {}
            for family in order:
                groups[family] = QTreeWidgetItem(self.archList, [family])
            for spec in specs:
                parent = groups.get(spec.family) or groups.setdefault(
                    spec.family, QTreeWidgetItem(self.archList, [spec.family]))
                self._entry_item(parent, spec.name, spec.name).setToolTip(0, spec.description)
            for family, item in groups.items():
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                item.setExpanded(family != "torchvision")
        for key in ticked:
            if key in self._specs:
                self.tick(key, emit=False)

    def specs(self) -> dict[str, ArchSpec]:
        return self._specs

    @staticmethod
    def _entry_item(parent: QTreeWidgetItem, key: str, text: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [text])
        item.setData(0, KEY_ROLE, key)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Unchecked)
        return item

    def items(self) -> dict[str, QTreeWidgetItem]:
        """Every entry's item (architectures and their variants) by key."""
        out: dict[str, QTreeWidgetItem] = {}
        stack = [self.archList.topLevelItem(i) for i in range(self.archList.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item is None:
                continue
            key = item.data(0, KEY_ROLE)
            if key:
                out[str(key)] = item
            stack.extend(item.child(j) for j in range(item.childCount()))
        return out

    # --- ticking ----------------------------------------------------------------------------------------------
    def ticked(self) -> list[str]:
        """The ticked entry keys, in the order they were ticked (the table's order)."""
        return list(self._ticked)

    def tick(self, key: str, on: bool = True, *, emit: bool = True) -> None:
        """Tick (or untick) an entry, as a click on its box does."""
        item = self.items()[key]
        with QSignalBlocker(self.archList):
            item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._set_ticked(key, on)
        if emit:
            self.changed.emit(True)

    def _set_ticked(self, key: str, on: bool) -> None:
        if on and key not in self._ticked:
            self._ticked.append(key)
        elif not on and key in self._ticked:
            self._ticked.remove(key)

    @Slot(QTreeWidgetItem, int)
    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        key = item.data(0, KEY_ROLE)
        if key:
            self._set_ticked(str(key), item.checkState(0) == Qt.CheckState.Checked)
            self.changed.emit(True)

    def add_variant(self, key: str) -> str:
        """A ticked copy of entry `key` (same architecture, its options so far) to edit; returns the new key."""
        arch = arch_of(key)
        base = self.items()[arch]
        n = 2
        while f"{arch}#{n}" in self.items():
            n += 1
        new = f"{arch}#{n}"
        self._texts[new] = dict(self._texts.get(key, {}))
        with QSignalBlocker(self.archList):
            self._entry_item(base, new, f"variant {n}")
            base.setExpanded(True)
        self.tick(new, emit=False)
        self.show_options(new)
        self.changed.emit(True)
        return new

    @Slot()
    def _add_current_variant(self) -> None:
        if self._current:
            self.add_variant(self._current)

    # --- options ----------------------------------------------------------------------------------------------
    def show_options(self, key: str) -> None:
        """Show entry `key`'s options form (edits are kept per entry)."""
        self.archList.setCurrentItem(self.items()[key])

    def set_option(self, key: str, name: str, text: str) -> None:
        """Set one option from literal text, as typed in the form."""
        self._texts.setdefault(key, {})[name] = text
        if key == self._current:
            next(f for f in self._fields if f.spec.name == name).set_text(text)
        if key in self._ticked:
            self.changed.emit(True)

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_current(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        key = current.data(0, KEY_ROLE) if current is not None else None
        self.addVariantButton.setEnabled(bool(key))
        if not key or key == self._current:
            return
        self._current = str(key)
        while self.form.rowCount():
            self.form.removeRow(0)
        self._fields = []
        saved = self._texts.get(self._current, {})
        for option in self._specs[arch_of(self._current)].options:
            f = OptionField(option)
            if option.name in saved:
                f.set_text(saved[option.name])
            f.connect(self._on_field_edited)
            self.form.addRow(QLabel(option.name), f.widget)
            self._fields.append(f)
        title = self._current.replace("#", ", variant ")
        self.optionsBox.setTitle(f"Options of {title}")
        self.optionsBox.setVisible(bool(self._fields))

    def _on_field_edited(self) -> None:
        self._texts[self._current] = {f.spec.name: f.text() for f in self._fields}
        if self._current in self._ticked:
            self.changed.emit(False)

    def entries(self) -> list[CompareEntry]:
        """What is compared: each ticked entry with its typed options (ValueError for a bad literal)."""
        out = []
        for key in self._ticked:
            arch = arch_of(key)
            options = {}
            for option in self._specs[arch].options:
                text = self._texts.get(key, {}).get(option.name)
                if text is not None:
                    f = OptionField(option)
                    f.set_text(text)
                    options[option.name] = f.value()
            out.append(CompareEntry(arch, options))
        return out
