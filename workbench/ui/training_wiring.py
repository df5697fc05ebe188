"""The connections between the training panel, the live plots and the runs list (one place, used by the window
and by the tests that assemble those three without it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from workbench.ui.plots import LivePlots
    from workbench.ui.runs_panel import RunsPanel
    from workbench.ui.training_panel import TrainingPanel


class RunEventSource(Protocol):
    """What trains runs in the app (the training panel, the Compare view's Train all): their typed run events."""

    runStarted: SignalInstance    # FitStart
    stepReported: SignalInstance  # StepMetrics
    epochReported: SignalInstance  # EpochMetrics
    runFinished: SignalInstance   # FitResult


def wire_run_events(source: RunEventSource, plots: LivePlots, runs: RunsPanel) -> None:
    """Show `source`'s runs on the live curves and in the runs list (bound slots only: Qt disconnects them when
    either side is destroyed)."""
    source.runStarted.connect(plots.begin_run)
    source.runStarted.connect(runs.run_started)
    source.stepReported.connect(plots.add_step)
    source.epochReported.connect(plots.add_epoch)
    source.runFinished.connect(plots.end_run)
    source.runFinished.connect(runs.run_finished)


def wire_training(panel: TrainingPanel, plots: LivePlots, runs: RunsPanel) -> None:
    """Route the training panel's run events to the live plots and the runs list, and the list's requests back."""
    wire_run_events(panel, plots, runs)
    runs.overlayChanged.connect(plots.set_overlays)
    runs.resumeRequested.connect(panel.resume_run)
    runs.historyLoaded.connect(plots.merge_history)     # a resumed run's curves are the whole run
    runs.followChanged.connect(plots.follow)            # a run trained by another process, live
    plots.visibilityChanged.connect(runs.set_curves_visible)
