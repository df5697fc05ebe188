"""What every command shares: exit codes, the one-line-error parser, KEY=VALUE and C,H,W parsing, JSON output."""

from __future__ import annotations

import argparse
import ast
import json
import math
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from workbench.errors import InvalidOptionError, WorkbenchError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

WORKSPACE_HELP = "workspace folder (default: $WORKBENCH_HOME or the user data folder)"


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def parse_assignments(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """Parse `KEY=VALUE` strings; VALUE is a Python literal (true/false in any case are booleans; 1,8,8 is a
    tuple), or a bare string when it is not one."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidOptionError(f"{flag} expects KEY=VALUE, got {item!r}.")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = {"true": True, "false": False}.get(raw.strip().lower(), raw.strip())
        result[key] = value
    return result


def parse_shape(text: str | None, flag: str = "--input") -> tuple[int, int, int] | None:
    """`C,H,W` (or `CxHxW`) as a validated shape; None for no text."""
    from workbench.models.registry import check_input_shape

    if not text:
        return None
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    return check_input_shape(parts, flag)


def workspace_arg(value: str | None) -> Path | None:
    """The --workspace value as a path (None: the default workspace)."""
    return Path(value).expanduser() if value else None


def finite(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers)."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


class Signalled(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP before a command took charge of them: end without a traceback, 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# Signals that arrived before a command installed its own handlers. Remembered as well as raised: an exception
# raised inside a library's import (torch's) can be swallowed by a bare `except:` there.
EARLY_SIGNALS: list[int] = []


def remember_signal(signum: int, frame: object) -> None:
    """The start-up handler of SIGINT/SIGTERM/SIGHUP: remember the signal and end now."""
    EARLY_SIGNALS.append(signum)
    raise Signalled(signum)


def raise_if_signalled() -> None:
    """Call after slow imports: end as the signal asked if one arrived while a library may have swallowed it."""
    if EARLY_SIGNALS:
        raise Signalled(EARLY_SIGNALS[0])


def print_json_line(obj: Any) -> None:
    """Print one JSON object as the last stdout line (machine-readable output)."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def ending_code(exc: BaseException, *, unexpected: bool = False) -> int:
    """The exit code of a command ended by `exc`, after its one line on stderr: a WorkbenchError 2, Ctrl-C 130, a
    signal 128 + N, a closed stdout 0. Any other exception is re-raised, or with `unexpected` its traceback is
    written and the code is 1 (a launched process, which must not leave through Python's normal exit). After a
    start-up signal any exception is that signal's doing (a Ctrl-C inside numpy's import leaves it half-loaded
    and the next import fails): it ends as the signal did."""
    if EARLY_SIGNALS and not isinstance(exc, (Signalled, KeyboardInterrupt)):
        exc = Signalled(EARLY_SIGNALS[0])
    if isinstance(exc, WorkbenchError):
        sys.stderr.write(f"workbench: error: {exc}\n")
        return EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("workbench: interrupted\n")
        return EXIT_INTERRUPTED
    if isinstance(exc, Signalled):
        name = "interrupted" if exc.signum == signal.SIGINT else f"{signal.Signals(exc.signum).name}: stopped"
        sys.stderr.write(f"workbench: {name}\n")
        return 128 + exc.signum
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK
    if isinstance(exc, SystemExit) and unexpected:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    if not unexpected:
        raise exc
    traceback.print_exception(exc)
    return EXIT_FAILED
