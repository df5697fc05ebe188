"""The connections between the training panel, the live plots and the runs list (one place, used by the window
and by the tests that assemble those three without it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.ui.plots import LivePlots
    from workbench.ui.runs_panel import RunsPanel
    from workbench.ui.training_panel import TrainingPanel


def wire_training(panel: TrainingPanel, plots: LivePlots, runs: RunsPanel) -> None:
    """Route the training panel's run events to the live plots and the runs list, and the list's requests back
    (bound slots only: Qt disconnects them when either side is destroyed)."""
    panel.runStarted.connect(plots.begin_run)
    panel.runStarted.connect(runs.run_started)
    panel.stepReported.connect(plots.add_step)
    panel.epochReported.connect(plots.add_epoch)
    panel.runFinished.connect(plots.end_run)
    panel.runFinished.connect(runs.run_finished)
    runs.overlayChanged.connect(plots.set_overlays)
    runs.resumeRequested.connect(panel.resume_run)
    runs.historyLoaded.connect(plots.merge_history)     # a resumed run's curves are the whole run
    runs.followChanged.connect(plots.follow)            # a run trained by another process, live
    plots.visibilityChanged.connect(runs.set_curves_visible)
