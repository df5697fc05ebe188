"""The confusion-matrix heat map: rows = true class, columns = predicted; click a cell to see its images.

Drawn with QPainter as ONE image (K×K pixels, coloured with the analysis ramp, scaled up without smoothing), plus
class names on the axes and the count (or row %) in each cell when cells are big enough to read. A 100-class
matrix is one `drawImage` call and a few hundred labels at most, not 10,000 items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from workbench.analysis.metrics import row_normalised
from workbench.analysis.render import colormap

MIN_TEXT_CELL = 16      # px: smaller cells show no numbers
MAX_LABEL_CHARS = 12    # class names are cut to this on the axes (full name in the tooltip)


def rgb_image(rgb: np.ndarray) -> QImage:
    """uint8 [H, W, 3] (or [H, W] / [H, W, 1] grey) → a QImage that owns its pixels."""
    a = np.asarray(rgb, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if a.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(a.data, w, h, a.strides[0], fmt).copy()


class ConfusionMatrixView(QWidget):
    """Heat map of a confusion matrix; `cellClicked(true_index, predicted_index)`."""

    cellClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._fractions = np.zeros((0, 0))
        self._classes: tuple[str, ...] = ()
        self._normalised = False
        self._image = QImage()
        self._selected: tuple[int, int] | None = None
        self.placeholder = "Select a run in the Runs tab (or finish one) to see its confusion matrix."

    # --- data ------------------------------------------------------------------------------------------------
    def set_matrix(self, counts: np.ndarray, classes: Sequence[str]) -> None:
        """Show `counts` (int [K, K]); keeps the selected cell when it still exists."""
        self._counts = np.asarray(counts, dtype=np.int64)
        self._fractions = row_normalised(self._counts)
        self._classes = tuple(str(c) for c in classes)
        k = self._counts.shape[0]
        if self._selected is not None and max(self._selected) >= k:
            self._selected = None
        self._recolour()

    def clear(self, placeholder: str = "") -> None:
        """No matrix; `placeholder` says why."""
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self._fractions = np.zeros((0, 0))
        self._selected = None
        self._image = QImage()
        if placeholder:
            self.placeholder = placeholder
        self.update()

    def set_normalised(self, on: bool) -> None:
        """Row-normalised percentages (True) or counts (False)."""
        self._normalised = bool(on)
        self._recolour()

    def is_normalised(self) -> bool:
        return self._normalised

    def counts(self) -> np.ndarray:
        """The matrix shown (counts, whatever the display mode)."""
        return self._counts.copy()

    def classes(self) -> tuple[str, ...]:
        return self._classes

    def select(self, true_index: int | None, predicted_index: int | None = None) -> None:
        """Outline one cell (None: none)."""
        self._selected = None if true_index is None or predicted_index is None else (true_index, predicted_index)
        self.update()

    def selected(self) -> tuple[int, int] | None:
        return self._selected

    def _recolour(self) -> None:
        k = self._counts.shape[0]
        if k == 0:
            self._image = QImage()
        else:
            values = self._fractions if self._normalised else self._counts / max(1, int(self._counts.max()))
            self._image = rgb_image(colormap(values))
        self.update()

    # --- geometry --------------------------------------------------------------------------------------------
    def _label_width(self, fm: QFontMetrics) -> int:
        names = [c[:MAX_LABEL_CHARS] for c in self._classes] or [""]
        return min(140, max(fm.horizontalAdvance(n) for n in names) + 8)

    def grid_rect(self) -> QRect:
        """Where the cells are drawn (square, left/top margins hold the class names)."""
        fm = QFontMetrics(self.font())
        left = fm.height() + 4 + self._label_width(fm)
        top = fm.height() * 2 + 6
        side = max(0, min(self.width() - left - 4, self.height() - top - 4))
        return QRect(left, top, side, side)

    def cell_at(self, pos: QPoint | QPointF) -> tuple[int, int] | None:
        """(true, predicted) under a widget position, or None."""
        k = self._counts.shape[0]
        grid = self.grid_rect()
        if k == 0 or grid.width() == 0 or not grid.contains(QPoint(int(pos.x()), int(pos.y()))):
            return None
        col = int((pos.x() - grid.left()) * k / grid.width())
        row = int((pos.y() - grid.top()) * k / grid.height())
        return (min(row, k - 1), min(col, k - 1))

    def cell_center(self, true_index: int, predicted_index: int) -> QPoint:
        """The widget position at the centre of a cell (for tests that click it)."""
        grid, k = self.grid_rect(), max(1, self._counts.shape[0])
        return QPoint(int(grid.left() + (predicted_index + 0.5) * grid.width() / k),
                      int(grid.top() + (true_index + 0.5) * grid.height() / k))

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    # --- events ----------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and cell is not None:
            self.select(*cell)
            self.cellClicked.emit(*cell)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if cell is None:
            QToolTip.hideText()
            return
        t, p = cell
        n, share = int(self._counts[t, p]), 100 * float(self._fractions[t, p])
        QToolTip.showText(event.globalPosition().toPoint(),
                          f"true {self._classes[t]}, predicted {self._classes[p]}: {n} image(s), "
                          f"{share:.1f} % of {self._classes[t]}", self)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        k = self._counts.shape[0]
        if k == 0 or self._image.isNull():
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.placeholder)
            return
        grid = self.grid_rect()
        painter.drawImage(QRectF(grid), self._image)   # nearest-neighbour: one image, K×K pixels scaled up
        fm = QFontMetrics(self.font())
        cell = grid.width() / k
        painter.setPen(text)
        # Axis titles.
        painter.drawText(QRect(grid.left(), 0, grid.width(), fm.height()), int(Qt.AlignmentFlag.AlignCenter),
                         "predicted class")
        painter.save()
        painter.translate(0, grid.top() + grid.height() / 2)
        painter.rotate(-90)
        painter.drawText(QRect(-grid.height() // 2, 0, grid.height(), fm.height()),
                         int(Qt.AlignmentFlag.AlignCenter), "true class")
        painter.restore()
        # Class names, every n-th when the cells are thinner than a line of text.
        step = max(1, int(np.ceil(fm.height() / max(cell, 1e-6))))
        label_w = self._label_width(fm)
        for i in range(0, k, step):
            name = self._classes[i][:MAX_LABEL_CHARS]
            y = int(grid.top() + (i + 0.5) * cell)
            painter.drawText(QRect(grid.left() - label_w - 2, y - fm.height() // 2, label_w, fm.height()),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), name)
        col_step = max(step, int(np.ceil((fm.horizontalAdvance("0000") + 2) / max(cell, 1e-6))))
        for j in range(0, k, col_step):
            name = self._classes[j][:MAX_LABEL_CHARS] if cell >= fm.horizontalAdvance("00000") else str(j)
            x = int(grid.left() + (j + 0.5) * cell)
            painter.drawText(QRect(x - 40, fm.height() + 2, 80, fm.height()), int(Qt.AlignmentFlag.AlignCenter),
                             fm.elidedText(name, Qt.TextElideMode.ElideRight, max(int(cell * col_step), 10)))
        if cell >= MIN_TEXT_CELL:
            self._paint_numbers(painter, grid, cell)
        if self._selected is not None:
            t, p = self._selected
            painter.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(grid.left() + p * cell, grid.top() + t * cell, cell, cell))

    def _paint_numbers(self, painter: QPainter, grid: QRect, cell: float) -> None:
        k = self._counts.shape[0]
        values = self._fractions if self._normalised else self._counts / max(1, int(self._counts.max()))
        font = painter.font()
        font.setPointSizeF(max(6.0, min(font.pointSizeF(), cell / 3)))
        painter.setFont(font)
        for t in range(k):
            for p in range(k):
                n = int(self._counts[t, p])
                if n == 0:
                    continue
                label = f"{100 * self._fractions[t, p]:.0f}" if self._normalised else str(n)
                bright = values[t, p] > 0.6   # the ramp's pale end: dark text reads better
                painter.setPen(QColor(20, 20, 20) if bright else QColor(235, 235, 235))
                painter.drawText(QRectF(grid.left() + p * cell, grid.top() + t * cell, cell, cell),
                                 int(Qt.AlignmentFlag.AlignCenter), label)
