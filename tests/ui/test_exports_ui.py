"""Exports from the app: plots as SVG, every export confirmed in the status bar, File → Export model… (a run's
checkpoint through export_run on a TaskRunner; a missing optional extra is one clear sentence)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtWidgets import QMainWindow

from tests.ui.conftest import TrainingBench
from tests.ui.test_plots import epoch_event, step
from workbench.ui import dialogs, window_menus
from workbench.ui.export_model_dialog import ExportModelDialog, default_output
from workbench.ui.plots import LivePlots
from workbench.ui.runs_panel import RunsPanel


def _fed(plots: LivePlots) -> LivePlots:
    for epoch in (1, 2):
        plots.add_step(step(epoch=epoch, batch=5, batches=10, loss=1.0 / epoch, accuracy=0.5, lr=0.1,
                            images_per_second=100.0))
        plots.add_epoch(epoch_event(epoch=epoch, train_loss=1.0 / epoch, val_loss=1.2 / epoch,
                                    val_accuracy=0.4 * epoch))
    return plots


def test_plot_export_as_svg(qtbot: Any, tmp_path: Path) -> None:
    plots = _fed(LivePlots())
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    one = plots.export_svg("lossPlot", tmp_path / "loss.svg")
    text = one.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "<path" in text
    grid = plots.export_svg(None, tmp_path / "all.svg")
    from xml.dom import minidom

    root = minidom.parse(str(grid)).documentElement
    parts = [n for n in root.childNodes if getattr(n, "tagName", "") == "g"]
    assert root.tagName == "svg" and len(parts) == 4                  # the four plots, each placed
    clips = [n.getAttribute("id") for n in root.getElementsByTagName("clipPath")]
    assert len(clips) == len(set(clips)) >= 4                           # no clip path shared by two plots


class _Window(QMainWindow):
    """What the File menu's export actions use of the main window."""

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self.plots = _fed(LivePlots())
        self.runs_panel = RunsPanel(workspace)
        self.training_panel = SimpleNamespace(run_id=None)
        self.setCentralWidget(self.plots)


def test_every_export_says_where_it_saved(qtbot: Any, workspace: Path, tmp_path: Path) -> None:
    window = _Window(workspace)
    qtbot.addWidget(window)
    for function, name in ((window_menus.export_plot_png, "loss.png"), (window_menus.export_plot_svg, "loss.svg")):
        path = function(window, tmp_path / name, "lossPlot")
        assert path is not None and path.is_file()
        assert window.statusBar().currentMessage() == f"Saved the plot to {path}"
    csv_path = window_menus.export_metrics_csv(window, tmp_path / "m.csv")   # no run in the store: the curves
    assert csv_path is not None and window.statusBar().currentMessage() == f"Saved the metrics to {csv_path}"
    # A failed write says what failed, in one sentence, and no "Saved" message appears.
    window.statusBar().clearMessage()
    assert window_menus.export_plot_svg(window, tmp_path / "missing" / "x.svg", "lossPlot") is None
    assert window.statusBar().currentMessage() == ""
    assert dialogs.open_dialogs() and "Could not write the SVG file" in dialogs.open_dialogs()[-1].text()
    for box in dialogs.open_dialogs():
        box.done(0)
    window.runs_panel.close_store()


@pytest.fixture
def trained(lenet_digits_panel: Any, qtbot: Any) -> TrainingBench:
    bench = lenet_digits_panel(epochs=1, max_batches=2)
    with qtbot.waitSignal(bench.panel.runFinished, timeout=120_000):
        bench.panel.start_training()
    return bench


def test_export_model_dialog_writes_the_selected_run(trained: TrainingBench, qtbot: Any, workspace: Path,
                                                     tmp_path: Path) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    runs = trained.runs
    run_id = runs.newest_run_id()
    dialog = ExportModelDialog(workspace, runs.records, run_id, window)
    assert dialog.run_id() == run_id and dialog.format() == "onnx" and dialog.checkpoint() == "best"
    assert dialog.output() == default_output(workspace, run_id, "onnx", "best")
    dialog.set_choice(fmt="tensorboard")
    assert not dialog.checkpointCombo.isEnabled()
    dialog.set_choice(fmt="safetensors", checkpoint="last", output=tmp_path / "out" / "lenet.safetensors")
    with qtbot.waitSignal(dialog.exported, timeout=60_000) as done:
        assert dialog.start_export()
    result = done.args[0]
    assert result.path == tmp_path / "out" / "lenet.safetensors" and result.path.is_file()
    assert result.checkpoint == "last" and result.run_id == run_id
    assert dialog.statusLabel.text().startswith(f"Saved {result.path}")
    assert str(result.path) in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: dialog.exportButton.isEnabled(), timeout=5000)
    dialog.done(0)


def test_export_model_names_a_missing_extra(trained: TrainingBench, qtbot: Any, workspace: Path,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.export import common

    monkeypatch.setattr(common, "_importable", lambda name: name not in ("onnx", "onnxscript"))
    dialog = ExportModelDialog(workspace, trained.runs.records, None)
    qtbot.addWidget(dialog)
    dialog.set_choice(fmt="onnx", output=tmp_path / "m.onnx")
    with qtbot.waitSignal(dialog.runner.failed, timeout=30_000) as failed:
        dialog.start_export()
    message = failed.args[0]
    assert "pip install 'cnn-workbench[onnx]'" in message and message.count(".") >= 1
    assert dialog.statusLabel.text() == message and not (tmp_path / "m.onnx").exists()
    boxes = dialogs.open_dialogs()
    assert boxes and boxes[-1].text() == message and not boxes[-1].detailedText()   # a user error: no traceback
    for box in boxes:
        box.done(0)
    qtbot.waitUntil(lambda: not dialog.is_exporting(), timeout=5000)


@pytest.mark.slow
def test_file_menu_has_the_export_entries(qtbot: Any, workspace: Path, settings: Any) -> None:
    from workbench.ui.main_window import MainWindow

    window = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(window)
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert {"Export plot as &PNG…", "Export plot as &SVG…", "Export metrics as &CSV…", "Export &model…"} <= set(texts)
    dialog = window_menus.export_model(window)
    assert dialog is not None and dialog.objectName() == "exportModelDialog"
    dialog.done(0)
    window.close()
