"""Dialogs shared by the whole window: the error box and Help → About.

Both are opened with `open()` (window-modal, non-blocking) rather than `exec()`, so a test or a worker
signal never gets stuck in a nested event loop; a reference is kept until the dialog closes.
"""

from __future__ import annotations

import html
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

# Dialogs that are open right now; keeps them alive without a parent and lets tests find them.
_open_dialogs: list[QMessageBox] = []


def _keep(box: QMessageBox) -> None:
    _open_dialogs.append(box)

    def _forget(_result: int = 0) -> None:
        if box in _open_dialogs:
            _open_dialogs.remove(box)

    box.finished.connect(_forget)


def open_dialogs() -> list[QMessageBox]:
    """The error/About dialogs that are currently open (newest last); boxes deleted with their window are dropped."""
    import shiboken6

    _open_dialogs[:] = [box for box in _open_dialogs if shiboken6.isValid(box)]
    return list(_open_dialogs)


def show_error(parent: QWidget | None, message: str, details: str = "") -> QMessageBox:
    """Show a critical message: one clear sentence, with the technical details expandable.

    Non-blocking (window-modal `open()`); the box's object name is "errorDialog".
    """
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle("CNN Workbench — error")
    box.setText(message.strip() or "Something went wrong.")
    box.setTextFormat(Qt.TextFormat.PlainText)
    if details.strip():
        box.setDetailedText(details.strip())
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    _keep(box)
    box.open()
    return box


def error_text(exc: BaseException) -> tuple[str, str]:
    """(one-sentence message, details) for an exception: a WorkbenchError's own sentence (the user's problem: no
    details), else a generic sentence with the traceback as details."""
    import traceback

    from workbench.errors import WorkbenchError

    if isinstance(exc, WorkbenchError):
        return str(exc), ""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"Unexpected error ({type(exc).__name__}): {exc}. See the details; please report it.", details


def version_info() -> dict[str, Any]:
    """Versions of the app and its stack plus the compute device found (imports torch: call after startup)."""
    from workbench import __version__

    info: dict[str, Any] = {
        "CNN Workbench": __version__,
        "Python": platform.python_version(),
        "Qt": qVersion(),
    }
    try:
        import PySide6

        info["PySide6"] = PySide6.__version__
    except Exception:  # pragma: no cover - PySide6 is always there when this runs
        pass
    try:
        import pyqtgraph

        info["pyqtgraph"] = pyqtgraph.__version__
    except Exception:  # pragma: no cover
        pass
    try:
        import torch
        import torchvision

        info["torch"] = torch.__version__
        info["torchvision"] = torchvision.__version__
        info["Device"] = _device_name(torch)
    except Exception as exc:  # torch missing or broken: say so rather than fail the dialog
        info["torch"] = f"unavailable ({exc})"
    return info


def _device_name(torch: Any) -> str:
    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def about_text() -> str:
    """Plain text for the About box: one line per component."""
    lines = ["CNN Workbench — inspect and train convolutional networks.", ""]
    lines += [f"{k}: {v}" for k, v in version_info().items()]
    lines += ["", f"Platform: {platform.platform()}", f"Executable: {sys.executable}"]
    return "\n".join(lines)


def readme_url() -> QUrl | None:
    """Where the README is: the file beside the package (a source checkout or an editable install), else the
    project's home page from the installed package's metadata; None when neither is known."""
    import workbench

    readme = Path(workbench.__file__).resolve().parent.parent / "README.md"
    if readme.is_file():
        return QUrl.fromLocalFile(str(readme))
    try:
        meta = metadata.metadata("cnn-workbench")
    except metadata.PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or []:  # "Documentation, https://…"
        url = entry.partition(",")[2].strip()
        if url:
            return QUrl(url)
    home = meta["Home-page"]
    return QUrl(home) if home else None


def about_html() -> str:
    """The About box's text: the version lines, then a link to the README."""
    body = html.escape(about_text()).replace("\n", "<br>")
    url = readme_url()
    if url is not None:
        shown = url.toLocalFile() if url.isLocalFile() else url.toString()
        body += (f'<br><br>How to use it: <a href="{html.escape(url.toString())}">the README</a> '
                 f"<small>({html.escape(shown)})</small>")
    return body


def show_about(parent: QWidget | None) -> QMessageBox:
    """Help → About: versions of torch, torchvision, Qt and the device found, and a link to the README."""
    box = QMessageBox(parent)
    box.setObjectName("aboutDialog")
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle("About CNN Workbench")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_html())
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)  # the link opens in a browser
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    _keep(box)
    box.open()
    return box
