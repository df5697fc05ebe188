"""User-facing errors: each carries one clear sentence (what failed, what to do).

The CLI turns a `WorkbenchError` into exit code 2 and one line on stderr; the GUI shows it in a dialog.
Anything else that escapes is a bug or a failed run, never bad input.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class for problems the user can fix (bad names, bad values, missing data)."""


class UnknownNameError(WorkbenchError, KeyError):
    """An architecture, dataset or run that does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InvalidOptionError(WorkbenchError, ValueError):
    """A hyper-parameter or setting with a value that is not allowed."""


class InputTooSmallError(WorkbenchError, ValueError):
    """The input image is too small for the architecture (a feature map vanishes)."""


class DataUnavailableError(WorkbenchError, FileNotFoundError):
    """A dataset's files are absent and no download was asked for (or it failed)."""


class WorkspaceError(WorkbenchError, OSError):
    """The workspace folder cannot be created or written."""


class CheckpointError(WorkbenchError):
    """A checkpoint is missing, corrupt, or carries a payload we refuse to unpickle."""


def suggest(name: str, candidates: list[str], limit: int = 3) -> str:
    """Return ' Did you mean: a, b?' for close matches of `name`, or '' when none are close."""
    import difflib

    close = difflib.get_close_matches(name, candidates, n=limit, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [c for c in candidates if lowered in c.lower()][:limit]
    return f" Did you mean: {', '.join(close)}?" if close else ""
