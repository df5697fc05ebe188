"""A line of advice linked to a setting: implausible-setting warnings (`settingsWarning`) and hints when a run's
results look wrong (`trainingHint`). Clicking the link focuses and highlights the field it is about."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QWidget

if TYPE_CHECKING:
    from workbench.training.hints import Hint

LINK_PREFIX = "field:"
FIELD_NAMES = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "weight decay",
               "warmup_epochs": "warm-up", "step_size": "step size", "augment": "augmentation"}


class AdviceLabel(QLabel):
    """Shows hints (one per line, each ending in a link to its field); `fieldActivated(name)` on a click."""

    fieldActivated = Signal(str)

    def __init__(self, object_name: str, icon: str, color: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                     | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self._icon, self._color = icon, color
        self.hints: list[Hint] = []
        self.linkActivated.connect(self._on_link)
        self.setVisible(False)

    def set_hints(self, hints: Sequence[Hint]) -> None:
        """Show these hints (none: hidden)."""
        self.hints = list(hints)
        rows = []
        for hint in self.hints:
            text = f'<span style="color:{self._color}">{self._icon}</span> {html.escape(hint.message)}'
            if hint.field:
                name = FIELD_NAMES.get(hint.field, hint.field.replace("_", " "))
                text += f' <a href="{LINK_PREFIX}{hint.field}">Go to {html.escape(name)}</a>'
            rows.append(text)
        self.setText("<br>".join(rows))
        self.setToolTip("Click the link to show the setting this is about." if rows else "")
        self.setVisible(bool(rows))

    def plain_text(self) -> str:
        """The messages without markup (tests, status)."""
        return "\n".join(h.message for h in self.hints)

    def activate(self, index: int = 0) -> None:
        """Follow the link of hint `index`, as a click does."""
        field = self.hints[index].field if index < len(self.hints) else None
        if field:
            self._on_link(LINK_PREFIX + field)

    @Slot(str)
    def _on_link(self, link: str) -> None:
        if link.startswith(LINK_PREFIX):
            self.fieldActivated.emit(link.removeprefix(LINK_PREFIX))
