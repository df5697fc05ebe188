"""The Analysis tab's per-class accuracy chart and the gallery of one confusion-matrix cell's images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from workbench.ui.analysis_confusion import rgb_image
from workbench.ui.analysis_session import SORT_MODES
from workbench.ui.chart_style import PaletteChart, YGrid, colour_plot_item

if TYPE_CHECKING:
    from workbench.ui.analysis_session import Thumbnails

BAR_COLOUR = "#4c9be8"
INDEX_ROLE = Qt.ItemDataRole.UserRole + 1
THUMB = 64          # px, thumbnail side in the gallery


def sort_combo() -> QComboBox:
    """The gallery's order: by loss, by learned last, by forgotten most (SORT_MODES)."""
    combo = QComboBox()
    combo.setObjectName("gallerySort")
    for mode in SORT_MODES:
        combo.addItem(f"by {mode}", mode)
    combo.setToolTip("loss: highest first; learned last: first correct at the latest epoch first (never learned "
                     "before all); forgotten most: most right→wrong flips first")
    return combo


def enable_history_sorts(combo: QComboBox, on: bool) -> None:
    """Enable the orders that need the per-sample history ("learned last", "forgotten most"); off: by loss."""
    model = combo.model()
    for i in range(1, combo.count()):
        item = model.item(i) if isinstance(model, QStandardItemModel) else None
        if item is not None:
            item.setEnabled(on)
    if not on and combo.currentIndex() > 0:
        combo.setCurrentIndex(0)


class PerClassChart(PaletteChart):
    """Bar chart of per-class accuracy (recall) in percent, one bar per class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        self.setObjectName("perClassChart")
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.getPlotItem().hideButtons()
        self.grid = YGrid(self.plot.getPlotItem())
        self.plot.setTitle("Per-class accuracy (recall)")
        self.plot.setLabel("left", "correct (%)")
        self.plot.setYRange(0, 100, padding=0.02)
        self._values: list[float] = []
        self._bars: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.setMinimumHeight(160)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Background and axes from the current palette (light or dark)."""
        background, text = self.colours()
        self.plot.setBackground(background)
        colour_plot_item(self.plot.getPlotItem(), text)
        self.grid.set_colour(text)

    def set_recall(self, recall: Sequence[float] | np.ndarray, classes: Sequence[str]) -> None:
        """One bar per class: recall (0..1, NaN for a class absent from the split) shown in percent."""
        import pyqtgraph as pg

        self._values = [100.0 * float(v) for v in recall]
        heights = [0.0 if math.isnan(v) else v for v in self._values]
        if self._bars is not None:
            self.plot.removeItem(self._bars)
        x = list(range(len(heights)))
        self._bars = pg.BarGraphItem(x=x, height=heights, width=0.8, brush=BAR_COLOUR, pen=None)
        self.plot.addItem(self._bars)
        step = max(1, math.ceil(len(classes) / 25))
        ticks = [(i, str(classes[i])[:10]) for i in range(0, len(classes), step)]
        self.plot.getAxis("bottom").setTicks([ticks, []])
        if heights:
            self.plot.setXRange(-0.6, len(heights) - 0.4, padding=0)
        mean = float(np.nanmean(self._values)) if any(not math.isnan(v) for v in self._values) else math.nan
        self.plot.setTitle(f"Per-class accuracy (recall); mean {mean:.1f} %" if not math.isnan(mean)
                           else "Per-class accuracy (recall)")
        self.apply_palette()

    def clear(self) -> None:
        if self._bars is not None:
            self.plot.removeItem(self._bars)
            self._bars = None
        self._values = []

    def values(self) -> list[float]:
        """The bars' values in percent (NaN for a class absent from the split), class order."""
        return list(self._values)


class SampleGallery(QListWidget):
    """Thumbnails of samples (one cell of the matrix), captioned true / predicted / probability.

    Items appear at once with a blank icon (the row count is known); `set_thumbnails` fills in the pictures
    when the worker has cut them. `sampleChosen(index)` gives the split index of the item the user picked.
    """

    sampleChosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sampleGallery")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 44, THUMB + 44))
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self._blank = QPixmap(THUMB, THUMB)
        self._blank.fill(QColor(128, 128, 128))
        self._filled: set[int] = set()   # split indices whose picture is shown
        self.currentItemChanged.connect(self._on_current)

    def set_samples(self, indices: Sequence[int], captions: Sequence[str], tooltips: Sequence[str]) -> None:
        """Replace the items: one per sample index, in the order given."""
        self.blockSignals(True)
        self.clear()
        self._filled = set()
        icon = QIcon(self._blank)
        for index, caption, tip in zip(indices, captions, tooltips):
            item = QListWidgetItem(icon, caption)
            item.setData(INDEX_ROLE, int(index))
            item.setToolTip(tip)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.addItem(item)
        self.blockSignals(False)

    def indices(self) -> list[int]:
        """Split indices of the items, top to bottom."""
        return [int(self.item(r).data(INDEX_ROLE)) for r in range(self.count())]

    def set_thumbnails(self, thumbs: Thumbnails) -> int:
        """Put pictures on the items whose sample is in `thumbs`; returns how many were set."""
        position = {int(i): k for k, i in enumerate(thumbs.indices)}
        done = 0
        for r in range(self.count()):
            item = self.item(r)
            k = position.get(int(item.data(INDEX_ROLE)))
            if k is None:
                continue
            image = rgb_image(thumbs.images[k])
            pixmap = QPixmap.fromImage(image).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.FastTransformation)
            item.setIcon(QIcon(pixmap))
            self._filled.add(int(item.data(INDEX_ROLE)))
            done += 1
        return done

    def has_thumbnails(self) -> bool:
        """True when every item shows its picture (not the blank one)."""
        return all(int(self.item(r).data(INDEX_ROLE)) in self._filled for r in range(self.count()))

    def select_sample(self, index: int) -> bool:
        """Make the item of split index `index` current (emits sampleChosen); False when absent."""
        for r in range(self.count()):
            if int(self.item(r).data(INDEX_ROLE)) == index:
                self.setCurrentRow(r)
                return True
        return False

    def _on_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.sampleChosen.emit(int(current.data(INDEX_ROLE)))
