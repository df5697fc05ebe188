"""Shared fixtures for the GUI tests: offscreen Qt, isolated settings and workspace, thread-leak check,
and Qt warnings turned into failures."""

from __future__ import annotations

import gc
import os
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QThread, QThreadPool

# Messages the offscreen platform prints on its own; everything else at WARNING level fails a test.
QT_BENIGN = ("propagateSizeHints", "This plugin does not support")
POOL_WAIT_MS = 2000  # a pooled job just finishing is not a leak; one still busy after this is


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents and item.get_closest_marker("qt_log_level_fail") is None:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_BENIGN))


def _busy_pools(pools: list[QThreadPool], wait_ms: int = POOL_WAIT_MS) -> list[str]:
    """Pools (the global one, and those given) that still run jobs after `wait_ms`."""
    busy = []
    for pool in [QThreadPool.globalInstance(), *pools]:
        try:
            done = pool.waitForDone(wait_ms)
            active = pool.activeThreadCount()
        except RuntimeError:  # deleted with its owner, which waited for it
            continue
        if not done or active:
            busy.append(f"QThreadPool {pool.objectName() or hex(id(pool))} ({active} active)")
    return busy


@pytest.fixture
def busy_pools():
    """The pool check `no_leaked_threads` runs at teardown (for testing the check itself)."""
    return _busy_pools


def _origin() -> str:
    """Where a thread is being started: the innermost frame in the project's code (file:line in function)."""
    here = Path(__file__).resolve()
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename).resolve()
        if path != here and ("workbench" in path.parts or "tests" in path.parts):
            return f"{path.name}:{frame.lineno} in {frame.name}"
    return "an unknown place"


@pytest.fixture(autouse=True)
def no_leaked_threads(monkeypatch: pytest.MonkeyPatch, qapp: object):
    """Fail the test if a QThread, pooled job or Python thread it started is still running at teardown, naming
    where each leaked thread was started."""
    from workbench.ui import gc_guard

    started: list[QThread] = []
    origins: dict[int, str] = {}
    qthread_start, thread_start = QThread.start, threading.Thread.start

    def tracking_qthread_start(self: QThread, *args: object) -> None:
        started.append(self)
        origins[id(self)] = _origin()
        qthread_start(self, *args)

    def tracking_thread_start(self: threading.Thread) -> None:
        origins[id(self)] = _origin()
        thread_start(self)

    gc_guard.install()  # as the app does: cycles are collected in the GUI thread only
    monkeypatch.setattr(QThread, "start", tracking_qthread_start)
    monkeypatch.setattr(threading.Thread, "start", tracking_thread_start)
    before = set(threading.enumerate())
    yield origins
    gc.collect()  # this test's widgets die here, in the GUI thread, not in the next test's workers
    leaked = _busy_pools([])
    for thread in started:
        try:
            if thread.isRunning():
                leaked.append(f"QThread {thread.objectName() or thread!r} (started at {origins[id(thread)]})")
        except RuntimeError:  # already deleted on the C++ side: it had finished
            pass
    for thread in set(threading.enumerate()) - before:
        if isinstance(thread, threading._DummyThread):  # a QThread seen by Python: checked above
            continue
        thread.join(timeout=1.0)  # a thread that is just finishing is not a leak
        if thread.is_alive():
            leaked.append(f"thread {thread.name} (started at {origins.get(id(thread), 'an unknown place')})")
    if leaked:
        pytest.fail("threads left running at teardown: " + ", ".join(leaked))


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QSettings:
    """Default QSettings go to an INI file under tmp_path; returns one for tests to hand to the window."""
    folder = tmp_path / "settings"
    folder.mkdir()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder))
    return QSettings(str(folder / "workbench.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def settings(isolated_settings: QSettings) -> QSettings:
    """An isolated QSettings (IniFormat file in tmp_path)."""
    return isolated_settings


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary workspace; $WORKBENCH_HOME and $WORKBENCH_DATA point into it."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(ws))
    monkeypatch.setenv("WORKBENCH_DATA", str(ws / "data"))
    return ws


def selection(arch: str, valid: bool = True, reason: str = "", options: dict | None = None):
    """An ArchSelection as the architecture panel makes it (LeNet's natural input for the summary)."""
    from workbench.ui.architecture_panel import ArchSelection

    return ArchSelection(arch=arch, options=dict(options or {}), input_override=None, classes_override=None,
                         input_shape=(1, 28, 28), num_classes=10, valid=valid, reason=reason)


@dataclass
class TrainingBench:
    """A training panel wired to live plots and a runs list exactly as the main window wires them."""

    panel: Any
    plots: Any
    runs: Any


@pytest.fixture
def lenet_digits_panel(qtbot, workspace: Path):
    """A factory: a TrainingBench with LeNet on the bundled digits and tiny CPU settings; stopped at teardown."""
    from workbench.ui import dialogs
    from workbench.ui.plots import LivePlots
    from workbench.ui.runs_panel import RunsPanel
    from workbench.ui.training_panel import TrainingPanel
    from workbench.ui.training_wiring import wire_training

    made: list[TrainingBench] = []

    def make(**settings: object) -> TrainingBench:
        bench = TrainingBench(TrainingPanel(workspace), LivePlots(), RunsPanel(workspace))
        for widget in (bench.panel, bench.plots, bench.runs):
            qtbot.addWidget(widget)
        wire_training(bench.panel, bench.plots, bench.runs)
        panel = bench.panel
        panel.errorOccurred.connect(lambda message, details: dialogs.show_error(panel, message, details))
        panel.ensure_engine()
        panel.picker.select("digits")
        panel.set_architecture(selection("lenet"))
        panel.settings.set_values({"batch_size": 32, "device": "cpu", **settings})
        made.append(bench)
        return bench

    yield make
    for bench in made:
        assert bench.panel.wait_stopped(5000)
    for box in dialogs.open_dialogs():
        box.done(0)


@pytest.fixture
def lenet_window(qtbot: Any, workspace: Path, settings: QSettings) -> Any:
    """The main window (eager) with LeNet's summary shown and the bundled digits chosen; closed at teardown."""
    from workbench.ui.main_window import MainWindow

    w = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.summaryShown, timeout=30_000):
        w.arch_panel.select("lenet")
    w.training_panel.picker.select("digits")
    yield w
    w.close()
