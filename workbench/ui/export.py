"""File → Export: a plot as PNG or SVG, a run's metrics as CSV. Each action takes a path so tests skip the dialogs;
the window confirms each file written in its status bar (`confirm_saved`)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMainWindow, QWidget

if TYPE_CHECKING:
    from workbench.runs import RunStore
    from workbench.ui.plots import LivePlots


# Choice shown in the "which plot" question → LivePlots plot name (None: the whole visible grid).
PLOT_CHOICES = {"All plots (as shown)": None, "Loss": "lossPlot", "Accuracy": "accuracyPlot",
                "Learning rate": "lrPlot", "Throughput": "throughputPlot"}


def ask_plot(parent: QWidget) -> str | bool | None:
    """Ask which plot to export: a plot name, None for all, False when cancelled."""
    choice, ok = QInputDialog.getItem(parent, "Export plot", "Plot:", list(PLOT_CHOICES), 0, False)
    return PLOT_CHOICES.get(choice) if ok else False


def ask_save_path(parent: QWidget, title: str, suggested: Path, file_filter: str) -> Path | None:
    """A save-file dialog; None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), file_filter)
    return Path(path) if path else None


def export_plot_png(plots: LivePlots, path: Path, plot: str | None = None) -> Path:
    """One plot (`plot` = "lossPlot", …) via pyqtgraph's exporter, or the whole grid as it is shown."""
    path = Path(path)
    if plot is not None:
        return plots.export_png(plot, path)
    plots.redraw()
    if not plots.grab().save(str(path), "PNG"):
        raise OSError(f"Could not write {path}; choose a folder you can write to.")
    return path


def export_plot_svg(plots: LivePlots, path: Path, plot: str | None = None) -> Path:
    """One plot (pyqtgraph's SVGExporter), or the four plots as shown (plot None), as an SVG file."""
    try:
        return plots.export_svg(plot, Path(path))
    except OSError:
        raise
    except Exception as exc:  # the exporter reports a bad path as whatever the XML writer raised
        raise OSError(f"Could not write {path} ({exc}); choose a folder you can write to.") from exc


def confirm_saved(window: QMainWindow, what: str, path: Path) -> None:
    """Say in the window's status bar where an export was written."""
    window.statusBar().showMessage(f"Saved {what} to {path}", 15_000)


def write_metrics_csv(store: RunStore, run_id: str, path: Path) -> Path:
    """Every metric row the run store logged for `run_id`: metric, epoch, step, value."""
    path = Path(path)
    rows = store.metrics(run_id)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "epoch", "step", "value"])
        for name, points in rows.items():
            for epoch, step, value in points:
                writer.writerow([name, epoch, step, "" if math.isnan(value) else repr(float(value))])
    return path
