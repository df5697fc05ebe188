"""How the main window follows the architecture panel: the summary worker computes the selection's summary, the
layer views show it (greyed while a new one computes), the status line says what happened, and the training panel
learns of the selection, and then of its summary. Kept here so main_window.py builds and this module routes."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from workbench.ui.summary_view import human

if TYPE_CHECKING:
    from workbench.models.summary import LayerRow, ModelSummary
    from workbench.ui.architecture_panel import ArchSelection
    from workbench.ui.main_window import MainWindow


class SummaryRouter(QObject):
    """Connects the window's architecture panel, summary worker, layer views and (once built) training panel."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.restoring = False   # while the window restores its state, selections are not acted on
        window.arch_panel.selectionChanged.connect(self.on_selection)
        window.worker.finished.connect(self.on_summary)
        window.worker.failed.connect(self.on_summary_failed)
        window.summary_view.layerSelected.connect(self.on_layer_selected)

    def on_selection(self, sel: ArchSelection | None) -> None:
        """A selection from the architecture panel: request its summary and mark what is shown as out of date."""
        w = self.window
        if sel is None or self.restoring:
            return
        if w.training_panel is not None:
            w.training_panel.set_architecture(sel)
        if not sel.valid:
            w.worker.invalidate()
            w.summary_view.set_error(f"The options of {sel.arch} are not valid: {sel.reason}")
            w.summary_state.setText(f"{sel.arch}: invalid options.")
            return
        w.worker.request(sel.arch, input_shape=sel.input_shape, num_classes=sel.num_classes, options=sel.options)
        if w.worker.is_busy():   # not answered from the cache before request() returned
            w.summary_view.set_pending(sel.arch)
            w.summary_state.setText(f"Summarizing {sel.arch}…")

    def on_summary(self, _rid: int, summary: ModelSummary) -> None:
        """The selection's summary: into the layer tree, charts and parameter table."""
        w = self.window
        w.summary_view.set_summary(summary)
        w.param_table.set_parameters(summary.parameters)
        t = summary.totals
        w.summary_state.setText(f"{summary.arch}: {t.total_params:,} parameters, {human(t.mult_adds)} Mult-Adds.")
        if w.training_panel is not None:
            w.training_panel.set_summary(summary)   # its estimate
        w.summaryShown.emit(summary)

    def on_summary_failed(self, _rid: int, message: str, details: str, user_error: bool) -> None:
        """The summary failed: say why where the table was; a user error also keeps Train disabled."""
        w = self.window
        w.summary_view.set_error(message, details)
        w.summary_state.setText("Summary failed: " + message)
        sel = w.arch_panel.selection()   # the one whose summary failed (a click still waiting is not sent yet)
        if user_error and sel is not None and w.training_panel is not None:
            # e.g. the input is too small for this architecture: the model could not be trained either.
            w.training_panel.set_architecture(dataclasses.replace(sel, valid=False, reason=message))

    def on_layer_selected(self, row: LayerRow) -> None:
        """A layer clicked in the tree or a chart: its figures in the status line."""
        self.window.summary_state.setText(f"{row.name or row.type}: {row.type}, {row.params:,} parameters, "
                                          f"{row.mult_adds:,} Mult-Adds")
