"""The image inspector: one image as the run's model sees it — top-5 bars, the Grad-CAM overlay for the chosen
layer, that layer's feature maps and the first convolution's filters. Pictures arrive as uint8 arrays (rendered
in the worker) and become QImages here, in the GUI thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.analysis_confusion import rgb_image

if TYPE_CHECKING:
    import numpy as np

    from workbench.ui.analysis_session import Inspection

TOP = 5
VIEW_SIDE = 96       # px: the image and the overlay are shown this big
PLACEHOLDER = ("Click an image in the gallery, or open your own image (File → Predict image…, or drop image "
               "files on the window).")


def _picture_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def _pixmap(array: np.ndarray, side: int | None = None) -> QPixmap:
    """uint8 picture → QPixmap, scaled up (nearest) so its shorter side is about `side` pixels."""
    pixmap = QPixmap.fromImage(rgb_image(array))
    if side is not None and min(pixmap.width(), pixmap.height()) < side:
        pixmap = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.FastTransformation)
    return pixmap


class ImageInspector(QScrollArea):
    """Shows an `Inspection`; `set_pending` / `set_error` while there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageInspector")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._inspection: Inspection | None = None
        body = QWidget()
        self.title = QLabel(PLACEHOLDER)
        self.title.setObjectName("inspectorTitle")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel()
        self.note.setObjectName("inspectorNote")
        self.note.setWordWrap(True)
        self.note.setVisible(False)

        self.view = _picture_label("inspectorImage")
        self.overlay = _picture_label("gradcamOverlay")
        pictures = QHBoxLayout()
        pictures.addWidget(self._boxed("Model input", self.view))
        self.overlay_box = self._boxed("Grad-CAM", self.overlay)
        pictures.addWidget(self.overlay_box)
        pictures.addStretch(1)

        self.top_box = QGroupBox("Top-5 prediction")
        grid = QGridLayout(self.top_box)
        self.top_names: list[QLabel] = []
        self.top_bars: list[QProgressBar] = []
        for i in range(TOP):
            name, bar = QLabel(), QProgressBar()
            bar.setObjectName(f"topBar{i}")
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            grid.addWidget(name, i, 0)
            grid.addWidget(bar, i, 1)
            self.top_names.append(name)
            self.top_bars.append(bar)
        grid.setColumnStretch(1, 1)

        self.features = _picture_label("featureMaps")
        self.features_box = self._boxed("Feature maps", self.features)
        self.filters = _picture_label("convFilters")
        self.filters_box = self._boxed("Filters", self.filters)

        layout = QVBoxLayout(body)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addLayout(pictures)
        layout.addWidget(self.top_box)
        layout.addWidget(self.features_box)
        layout.addWidget(self.filters_box)
        layout.addStretch(1)
        self.setWidget(body)
        self._show_parts(False)

    @staticmethod
    def _boxed(title: str, content: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(content)
        return box

    def _show_parts(self, on: bool) -> None:
        for part in (self.view.parentWidget(), self.overlay_box, self.top_box, self.features_box, self.filters_box):
            if part is not None:
                part.setVisible(on)

    # --- API -------------------------------------------------------------------------------------------------
    def inspection(self) -> Inspection | None:
        """What is shown (None while pending, after an error or before the first image)."""
        return self._inspection

    def clear(self) -> None:
        self._inspection = None
        self.title.setText(PLACEHOLDER)
        self.note.setVisible(False)
        self._show_parts(False)

    def set_pending(self, caption: str) -> None:
        """An image is being explained: say so, keep the old pictures until the new ones arrive."""
        self.title.setText(f"Explaining {caption}…")

    def set_error(self, message: str) -> None:
        self._inspection = None
        self.title.setText(message)
        self.note.setVisible(False)
        self._show_parts(False)

    def set_inspection(self, ins: Inspection) -> None:
        """Show an inspection's pictures and bars."""
        self._inspection = ins
        truth = f" — true class <b>{ins.true_class}</b>" if ins.true_class is not None else ""
        name, prob = ins.top[0] if ins.top else ("?", 0.0)
        self.title.setText(f"<b>{ins.caption}</b>{truth}<br>predicted <b>{name}</b> ({100 * prob:.1f} %)")
        self.note.setText(ins.note)
        self.note.setVisible(bool(ins.note))
        self.view.setPixmap(_pixmap(ins.view, VIEW_SIDE))
        self.overlay.setPixmap(_pixmap(ins.overlay, VIEW_SIDE))
        self.overlay_box.setTitle(f"Grad-CAM, {ins.layer}")
        self.overlay_box.setToolTip(f"Where layer {ins.layer} found evidence for class “{ins.class_name}” "
                                    "(bright: much).")
        for i in range(TOP):
            shown = i < len(ins.top)
            self.top_names[i].setVisible(shown)
            self.top_bars[i].setVisible(shown)
            if shown:
                cls, p = ins.top[i]
                self.top_names[i].setText(str(cls))
                self.top_bars[i].setValue(round(1000 * p))
                self.top_bars[i].setFormat(f"{100 * p:.1f} %")
        self.features.setPixmap(_pixmap(ins.features))
        self.features_box.setTitle(f"Feature maps of {ins.layer} ({min(64, ins.feature_count)} of "
                                   f"{ins.feature_count})")
        self._show_parts(True)
        if ins.filters is not None:
            self.filters.setPixmap(_pixmap(ins.filters))
            self.filters_box.setTitle(f"Filters of the first convolution, {ins.filters_layer}")
        else:
            self.filters_box.setVisible(False)

    def top(self) -> list[tuple[str, float]]:
        """The top-5 bars as (class, probability), most probable first (empty when nothing is shown)."""
        return [] if self._inspection is None else [(str(c), float(p)) for c, p in self._inspection.top]
