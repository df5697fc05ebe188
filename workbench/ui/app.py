"""`run_app`: create the QApplication, show the window at once (with the layer tree of the shipped summary),
import torch after the first paint.

WORKBENCH_LAUNCH_PROBE (bench/bench_launch.py, tests/ui/test_quit.py) prints timings as `name=value` lines:
`first_paint_unix`, `first_paint_since_start_s`, `tree_shown_unix` (the layer tree has its rows), and
- `1`: `engine_ready_unix`, then quits once the engine is ready;
- `quit`: quits right after the first paint, as Ctrl+Q would while the engine still loads
  (`quit_requested_unix`; the process must be gone within 2 s).

Before the QApplication exists, `platform_problem()` checks what Qt would otherwise abort the process for (no
display; the xcb platform plugin's system libraries missing) and the app prints one sentence instead.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from workbench.errors import WorkbenchError
from workbench.paths import resource
from workbench.ui import gc_guard
from workbench.ui.dialogs import error_text, show_error
from workbench.ui.main_window import MainWindow
from workbench.ui.startup import FirstPaintWatcher
from workbench.ui.summary_preview import find_preview

PROBE_ENV = "WORKBENCH_LAUNCH_PROBE"
# What Qt's xcb platform plugin (PySide6 6.5+) loads, by soname, with the Debian/Ubuntu package providing it.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1", "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}  # fmt: skip


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


def _can_load(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def platform_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                     can_load: Callable[[str], bool] | None = None) -> str | None:
    """One sentence on why Qt could not open a window here (it would abort the process), or None.

    On Linux without QT_QPA_PLATFORM, Qt uses Wayland when WAYLAND_DISPLAY is set and xcb (X11) otherwise;
    xcb needs $DISPLAY and the XCB_LIBRARIES, which a fresh install may lack (libxcb-cursor0 since Qt 6.5).
    """
    env = os.environ if env is None else env
    if not (platform or sys.platform).startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen != "xcb" and (chosen or env.get("WAYLAND_DISPLAY")):
        return None
    if not env.get("DISPLAY"):
        return ("There is no display to open the window on ($DISPLAY is not set): start workbench from a desktop "
                "session, or use the command line (workbench --help).")
    loads = can_load or _can_load
    missing = [name for name in XCB_LIBRARIES if not loads(name)]
    if not missing:
        return None
    packages = " ".join(XCB_LIBRARIES[name] for name in missing)
    return (f"Qt cannot open a window because system libraries are missing ({', '.join(missing)}): install them "
            f"(Debian/Ubuntu: sudo apt install {packages}) and start workbench again.")


def show_preview(window: MainWindow) -> bool:
    """Show the shipped summary of the architecture the window will select (torch is not loaded yet)."""
    summary = find_preview(window.stored_dict("architecture/state"))
    if summary is None or window.summary_view.summary is not None:
        return False
    window.summary_view.set_summary(summary)
    window.param_table.set_parameters(summary.parameters)
    return True


def _probe(name: str) -> None:
    print(f"{name}={time.time():.4f}", flush=True)


class _TreeShownProbe(QObject):
    """Prints `tree_shown_unix` once, when the first summary is shown (no shipped summary to preview)."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.printed = False

    def shown(self, _summary: object) -> None:
        if not self.printed:
            self.printed = True
            _probe("tree_shown_unix")


def run_app(workspace: Path | str | None = None, argv: list[str] | None = None) -> int:
    """Open the desktop app; returns the exit code."""
    check_qt_binding()
    problem = platform_problem()
    if problem:
        sys.stderr.write(f"workbench: error: {problem}\n")
        return 1
    probe = os.environ.get(PROBE_ENV, "")
    app = make_application(argv)
    window = MainWindow(Path(workspace) if workspace else None, lazy=True)
    _install_excepthook(window)

    def after_first_paint() -> None:
        if probe:
            age = process_age()
            _probe("first_paint_unix")
            if age is not None:
                print(f"first_paint_since_start_s={age:.3f}", flush=True)
        if show_preview(window):
            window.summary_view.tree.viewport().repaint()
            if probe:
                _probe("tree_shown_unix")
        elif probe:
            window.summaryShown.connect(_TreeShownProbe(window).shown)
        window.load_engine()
        if probe == "quit":
            _probe("quit_requested_unix")
            window.close()  # what File → Quit (Ctrl+Q) does

    if probe == "1":
        def ready() -> None:
            _probe("engine_ready_unix")
            QTimer.singleShot(0, window.close)
        window.engineReady.connect(ready)
        window.loader.failed.connect(lambda *_: app.exit(1))

    window._first_paint = FirstPaintWatcher(window, after_first_paint)  # type: ignore[attr-defined]
    window.show()
    code = int(app.exec())
    _exit_if_busy(code)
    return code


def _exit_if_busy(code: int) -> None:
    """The window is closed and its state saved. Work that was abandoned (the engine import, a summary) may still
    run in daemon threads; the interpreter would wait at shutdown for the GIL and import locks they hold, so end
    the process now instead."""
    busy = [t for t in threading.enumerate() if t.daemon and t.is_alive() and t.name.startswith("workbench-")]
    if busy:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
