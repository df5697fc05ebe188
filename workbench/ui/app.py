"""`run_app`: create the QApplication, show the window at once, import torch after the first paint.

Set WORKBENCH_LAUNCH_PROBE=1 to print timings and quit once the engine is ready (bench/bench_launch.py):
lines `first_paint_unix=<time>`, `first_paint_since_start_s=<s>`, `engine_ready_unix=<time>`.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from workbench.errors import WorkbenchError
from workbench.paths import resource
from workbench.ui import gc_guard
from workbench.ui.dialogs import error_text, show_error
from workbench.ui.main_window import FirstPaintWatcher, MainWindow

PROBE_ENV = "WORKBENCH_LAUNCH_PROBE"


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None where unknown."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] here is field 3
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused when one exists), HiDPI-safe, following the system palette."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(argv if argv is not None else sys.argv[:1]))
    QCoreApplication.setOrganizationName("cnn-workbench")
    QCoreApplication.setApplicationName("CNN Workbench")
    icon = resource("icons", "workbench.svg")
    assert isinstance(app, QApplication)
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    gc_guard.install(app)
    return app


def _install_excepthook(window: MainWindow) -> None:
    """An exception escaping a slot becomes an error dialog; the app keeps running."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, exc, tb)
            return
        traceback.print_exception(kind, exc, tb)
        message, details = error_text(exc.with_traceback(tb))
        show_error(window, message, details)

    sys.excepthook = hook


def check_qt_binding(version: str | None = None) -> None:
    """Refuse the one PySide6 release known to crash this Python (WorkbenchError with the fix)."""
    import PySide6

    version = version or PySide6.__version__
    if sys.version_info < (3, 12) and version.startswith("6.12."):
        raise WorkbenchError(
            f"PySide6 {version} crashes on Python {sys.version_info.major}.{sys.version_info.minor} "
            "(it drops references to None); run: pip install 'PySide6-Essentials!=6.12.*'."
        )


def run_app(workspace: Path | str | None = None, argv: list[str] | None = None) -> int:
    """Open the desktop app; returns the exit code."""
    check_qt_binding()
    probe = bool(os.environ.get(PROBE_ENV))
    app = make_application(argv)
    window = MainWindow(Path(workspace) if workspace else None, lazy=True)
    _install_excepthook(window)

    def after_first_paint() -> None:
        if probe:
            age = process_age()
            print(f"first_paint_unix={time.time():.4f}", flush=True)
            if age is not None:
                print(f"first_paint_since_start_s={age:.3f}", flush=True)
        window.load_engine()

    if probe:
        def ready() -> None:
            print(f"engine_ready_unix={time.time():.4f}", flush=True)
            QTimer.singleShot(0, window.close)
        window.engineReady.connect(ready)
        window.loader.failed.connect(lambda *_: app.exit(1))

    window._first_paint = FirstPaintWatcher(window, after_first_paint)  # type: ignore[attr-defined]
    window.show()
    return int(app.exec())
