"""Charts that follow the application palette (light or dark): one base widget and one axis-colouring helper."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget


class PaletteChart(QWidget):
    """A widget whose `apply_palette` re-colours its plots; called again whenever the palette changes."""

    def apply_palette(self) -> None:
        """Re-colour from `self.palette()`; subclasses override."""

    def colours(self) -> tuple[QColor, QColor]:
        """(background, text) of the current palette."""
        pal = self.palette()
        return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)


def colour_plot_item(item: Any, text: QColor, **title: Any) -> None:
    """Title and the left/bottom axes of a pyqtgraph PlotItem in `text`; `title` passes e.g. size="9pt"."""
    item.titleLabel.setText(item.titleLabel.text, color=text, **title)
    colour_axes(item, text)


def colour_axes(item: Any, text: QColor | str) -> None:
    """The left and bottom axes (lines and tick labels) of a pyqtgraph PlotItem in `text`."""
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(text)
        axis.setTextPen(text)
