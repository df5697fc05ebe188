"""Shared fixtures for the GUI tests: offscreen Qt, isolated settings and workspace, thread-leak check,
and Qt warnings turned into failures."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

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
    """Pools (the global one, and those the UI created) that still run jobs after `wait_ms`."""
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


@pytest.fixture(autouse=True)
def no_leaked_threads(monkeypatch: pytest.MonkeyPatch, qapp: object):
    """Fail the test if a QThread, pooled job or Python thread it started is still running at teardown."""
    import workbench.ui.summary_worker as summary_worker
    from workbench.ui import gc_guard

    started: list[QThread] = []
    pools: list[QThreadPool] = []
    original = QThread.start

    def tracking_start(self: QThread, *args: object) -> None:
        started.append(self)
        original(self, *args)

    class TrackedPool(QThreadPool):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            pools.append(self)

    gc_guard.install()  # as the app does: cycles are collected in the GUI thread only
    monkeypatch.setattr(QThread, "start", tracking_start)
    monkeypatch.setattr(summary_worker, "QThreadPool", TrackedPool)
    before = set(threading.enumerate())
    yield started
    gc.collect()  # this test's widgets die here, in the GUI thread, not in the next test's workers
    leaked = _busy_pools(pools)
    for thread in started:
        try:
            if thread.isRunning():
                leaked.append(f"QThread {thread.objectName() or thread!r}")
        except RuntimeError:  # already deleted on the C++ side: it had finished
            pass
    for thread in set(threading.enumerate()) - before:
        if isinstance(thread, threading._DummyThread):  # a QThread seen by Python: checked above
            continue
        thread.join(timeout=1.0)  # a thread that is just finishing is not a leak
        if thread.is_alive():
            leaked.append(f"thread {thread.name}")
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


@pytest.fixture
def lenet_digits_panel(qtbot, workspace: Path):
    """A factory: a TrainingPanel with LeNet on the bundled digits and tiny CPU settings; stopped at teardown."""
    from workbench.ui import dialogs
    from workbench.ui.training_panel import TrainingPanel

    made: list[TrainingPanel] = []

    def make(**settings: object) -> TrainingPanel:
        widget = TrainingPanel(workspace)
        qtbot.addWidget(widget)
        widget.ensure_engine()
        widget.picker.select("digits")
        widget.set_architecture("lenet", {}, None, None, True, "")
        widget.settings.set_values({"batch_size": 32, "device": "cpu", **settings})
        made.append(widget)
        return widget

    yield make
    for widget in made:
        assert widget.wait_stopped(5000)
    for box in dialogs.open_dialogs():
        box.done(0)
