"""The main window as a whole: building, lazy start-up, menus, About, settings, errors, closing mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, QSize, Qt, qVersion
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton, QSplitter, QTreeView

from workbench.ui import dialogs
from workbench.ui.main_window import MainWindow

STABLE_NAMES = ("architectureList", "layerTree", "parameterTable", "summaryTotals", "datasetCombo", "epochsSpin",
                "trainButton", "stopButton", "epochProgress", "lossPlot", "accuracyPlot", "runsList")


@pytest.fixture(autouse=True)
def close_dialogs():
    yield
    for box in dialogs.open_dialogs():
        box.done(0)


def build(qtbot: Any, workspace: Path, settings: QSettings, **kw: Any) -> MainWindow:
    w = MainWindow(workspace=workspace, settings=settings, **kw)
    qtbot.addWidget(w)
    if w.worker.is_busy():
        qtbot.waitSignal(w.summaryShown, timeout=30_000).wait()
    return w


def test_ui_modules_do_not_import_torch_or_pyqtgraph() -> None:
    code = ("import sys, workbench.ui, workbench.ui.main_window, workbench.ui.app, workbench.cli; "
            "bad = [m for m in ('torch', 'torchvision', 'pyqtgraph', 'workbench.models') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_window_builds_with_title_and_stable_names(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    w = build(qtbot, workspace, settings)
    assert w.windowTitle() == "CNN Workbench"
    for name in STABLE_NAMES:
        assert w.findChild(object, name) is not None, name
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["Layers", "Parameters", "Training curves", "Runs",
                                                                   "Analysis", "Compare"]
    menus = [a.text().replace("&", "") for a in w.menuBar().actions()]
    assert menus[:2] == ["File", "View"] and menus[-1] == "Help"
    assert w.train_action.shortcut().toString() == "Ctrl+Return"
    assert w.stop_action.shortcut().toString() == "Esc"
    assert w.arch_panel.current_arch() == "lenet"  # the first-run default trains in seconds on a CPU
    assert w.training_panel.picker.current_name() == "digits"
    assert "61,706" in w.findChild(QLabel, "summaryTotals").text()
    w.close()


def test_lazy_start_paints_before_the_engine_loads(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    w = MainWindow(workspace=workspace, settings=settings, lazy=True)
    qtbot.addWidget(w)
    assert w.training_panel is None and w.summary_view.chart is None and not w.is_engine_ready()
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.engineReady, timeout=60_000):
        w.load_engine()
    assert w.training_panel is not None and w.findChild(QPushButton, "trainButton") is not None
    assert w.arch_panel.names() and w.summary_view.chart is not None
    qtbot.waitSignal(w.summaryShown, timeout=30_000).wait() if w.worker.is_busy() else None
    assert w.summary_view.summary is not None
    w.close()


def test_about_shows_versions(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    import torch
    import torchvision

    w = build(qtbot, workspace, settings)
    about = next(a for a in w.menuBar().actions()[-1].menu().actions() if "About" in a.text())
    about.trigger()
    box = next(b for b in dialogs.open_dialogs() if b.objectName() == "aboutDialog")
    text = box.text()
    assert f"torch: {torch.__version__}" in text and f"torchvision: {torchvision.__version__}" in text
    assert f"Qt: {qVersion()}" in text and ("Device: cpu" in text or "Device: cuda" in text)
    w.close()


def test_error_dialog_has_sentence_and_details_and_app_stays_usable(qtbot: Any, workspace: Path,
                                                                    settings: QSettings) -> None:
    w = build(qtbot, workspace, settings)
    box = dialogs.show_error(w, "The data set could not be read: check the folder.", "Traceback: boom")
    assert box.objectName() == "errorDialog" and box.isVisible()
    assert box.text() == "The data set could not be read: check the folder."
    assert box.detailedText() == "Traceback: boom"
    assert box.windowModality() == Qt.WindowModality.WindowModal
    box.done(0)
    with qtbot.waitSignal(w.summaryShown, timeout=30_000):
        w.arch_panel.select("lenet")
    w.close()


def test_settings_round_trip(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    w = build(qtbot, workspace, settings)
    with qtbot.waitSignal(w.summaryShown, timeout=30_000):
        w.arch_panel.select("vgg11")
    with qtbot.waitSignal(w.summaryShown, timeout=30_000):
        w.arch_panel.set_option_text("classifier_width", "256")
    w.arch_panel.override.setChecked(True)
    w.arch_panel.shape_spins[1].setValue(64)
    w.tabs.setCurrentIndex(1)
    w.resize(QSize(640, 480))
    w.splitter.setSizes([300, 600, 334])
    state = w.splitter.saveState()
    w.training_panel.settings.set_values({"epochs": 7})
    w.close()
    w2 = build(qtbot, workspace, settings)
    assert w2.arch_panel.current_arch() == "vgg11"
    assert w2.arch_panel.field_widget("classifier_width").value() == 256
    assert w2.arch_panel.override.isChecked() and w2.arch_panel.shape_spins[1].value() == 64
    assert w2.tabs.currentIndex() == 1
    assert w2.size() == QSize(640, 480)
    assert w2.findChild(QSplitter, "mainSplitter").saveState() == state
    assert w2.findChild(object, "epochsSpin").value() == 7
    qtbot.waitUntil(lambda: w2.summary_view.summary is not None and w2.summary_view.summary.arch == "vgg11",
                    timeout=30_000)
    assert next(iter(w2.summary_view.summary.input_shape[-2:])) == 64
    w2.close()


def _lenet_on_digits(qtbot: Any, workspace: Path, settings: QSettings) -> MainWindow:
    """A window with LeNet on the bundled digits, set for a long CPU run (tests stop it)."""
    w = build(qtbot, workspace, settings)
    with qtbot.waitSignal(w.summaryShown, timeout=30_000):
        w.arch_panel.select("lenet")
    w.training_panel.picker.select("digits")
    w.training_panel.settings.set_values({"epochs": 50, "batch_size": 32, "device": "cpu"})
    return w


def test_close_during_training_stops_and_keeps_checkpoint(qtbot: Any, workspace: Path, settings: QSettings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    w = _lenet_on_digits(qtbot, workspace, settings)
    panel = w.training_panel
    qtbot.waitUntil(lambda: panel.trainButton.isEnabled(), timeout=10_000)
    asked: list[bool] = []
    monkeypatch.setattr(w, "confirm_close", lambda: asked.append(True) or False)
    with qtbot.waitSignal(panel.stepReported, timeout=120_000):
        w.train_action.trigger()  # Ctrl+Return
    run_id = w.runs_panel.active_run_id
    assert not w.close() and asked == [True] and panel.is_training()  # "No": stays open, still training
    monkeypatch.setattr(w, "confirm_close", lambda: True)
    assert w.close()
    assert not panel.is_training()
    assert list(w.runs_panel.folder_of(run_id).glob("*.pt")), "no checkpoint kept"
    assert w.runs_panel.status_of(run_id) == "stopped"


def test_esc_stops_training(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    w = _lenet_on_digits(qtbot, workspace, settings)
    panel = w.training_panel
    with qtbot.waitSignal(panel.stepReported, timeout=120_000):
        w.start_training()
    with qtbot.waitSignal(panel.runFinished, timeout=30_000) as finished:
        w.stop_action.trigger()  # Esc
    assert finished.args[0].status == "stopped"
    w.close()


def test_layer_tree_is_a_tree_view(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    w = build(qtbot, workspace, settings)
    tree = w.findChild(QTreeView, "layerTree")
    root = tree.model().index(0, 0)
    assert tree.model().rowCount(root) > 0 and tree.isExpanded(root)
    assert [tree.model().headerData(c, Qt.Orientation.Horizontal) for c in range(tree.model().columnCount())] == [
        "Name", "Type", "Kernel", "Input shape", "Output shape", "RF (jump)", "Params", "Mult-Adds", "% of params"]
    assert isinstance(QMessageBox, type)
    w.close()


def test_known_crashing_pyside_release_is_refused() -> None:
    import sys

    from workbench.errors import WorkbenchError
    from workbench.ui.app import check_qt_binding

    check_qt_binding("6.11.3")
    if sys.version_info < (3, 12):
        with pytest.raises(WorkbenchError, match="PySide6-Essentials"):
            check_qt_binding("6.12.0")


def test_about_links_to_the_readme(qtbot: Any, workspace: Path, settings: QSettings) -> None:
    from PySide6.QtCore import QUrl

    w = build(qtbot, workspace, settings)
    box = dialogs.show_about(w)
    assert box.textFormat() == Qt.TextFormat.RichText
    url = dialogs.readme_url()
    assert url is not None and f'href="{url.toString()}"' in box.text()
    readme = Path(__file__).resolve().parents[2] / "README.md"  # this checkout's README
    assert url == QUrl.fromLocalFile(str(readme)) and readme.is_file()
    label = box.findChild(QLabel, "qt_msgbox_label")
    assert label.openExternalLinks() and label.textInteractionFlags() & Qt.TextInteractionFlag.LinksAccessibleByMouse
    box.done(0)
    w.close()


XCB_ENV = {"DISPLAY": ":0"}


def test_missing_xcb_libraries_are_named_in_one_sentence() -> None:
    from workbench.ui.app import XCB_LIBRARIES, platform_problem

    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}

    def can_load(name: str) -> bool:
        return name not in absent

    problem = platform_problem(XCB_ENV, "linux", can_load)
    assert problem is not None and problem.count(". ") == 0 and problem.endswith(".")  # one sentence
    assert "libxcb-cursor.so.0" in problem and "sudo apt install libxcb-cursor0 libxcb-icccm4" in problem
    assert platform_problem(XCB_ENV, "linux", lambda name: True) is None                 # all there: Qt starts
    assert set(XCB_LIBRARIES) >= absent
    # Only where Qt would use xcb: not for offscreen, Wayland, or other systems.
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", can_load) is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux", can_load) is None
    assert platform_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":1"}, "linux", can_load) == problem
    assert platform_problem(XCB_ENV, "darwin", can_load) is None
    no_display = platform_problem({}, "linux", can_load)
    assert no_display is not None and "$DISPLAY" in no_display


def test_workbench_prints_the_sentence_instead_of_qt_abort(tmp_path: Path) -> None:
    """A real process where the check fails: one line on stderr, exit 1, no Qt abort."""
    code = ("import sys, workbench.ui.app as app; "
            "app._can_load = lambda name: name != 'libxcb-cursor.so.0'; "
            "sys.exit(app.run_app())")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":99", WORKBENCH_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "workbench: error: Qt cannot open a window because system libraries are missing (libxcb-cursor.so.0): "
        "install them (Debian/Ubuntu: sudo apt install libxcb-cursor0) and start workbench again."]
