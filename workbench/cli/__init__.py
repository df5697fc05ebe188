"""The `workbench` command: no arguments opens the desktop app; subcommands run the engine headless.

One module per command group registers its subcommands (`add_commands`). Exit codes (`cli.common`): 0 success;
2 bad input (one line on stderr, no traceback); 1 a run failed or diverged; 130 interrupted after saving.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from workbench.cli import analysis, compare, experiment, export, lr_find, models, runs, train
from workbench.cli.common import (
    EARLY_SIGNALS,
    EXIT_BAD_INPUT,
    WORKSPACE_HELP,
    Parser,
    Signalled,
    ending_code,
    parse_assignments,
    print_json_line,
    remember_signal,
)

__all__ = ["build_parser", "main", "parse_assignments", "print_json_line"]

# Command groups in the order `workbench --help` lists them.
COMMAND_GROUPS = (models, compare, train, experiment, lr_find, runs, export, analysis)


def _cmd_gui(args: argparse.Namespace) -> int:
    from workbench.ui.app import run_app

    return run_app(workspace=getattr(args, "workspace", None))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and shell completion)."""
    from workbench import __version__

    parser = Parser(prog="workbench", description="CNN Workbench: inspect and train convolutional networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    p = sub.add_parser("gui", help="open the desktop app (the default with no subcommand)")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.set_defaults(func=_cmd_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (128 + N after signal N, e.g. 130 for Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _cmd_gui(argparse.Namespace(workspace=None))
    previous = {}
    EARLY_SIGNALS.clear()
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
                previous[signum] = signal.signal(signum, remember_signal)  # an ignored signal stays ignored
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        return int(args.func(args))
    except (Exception, KeyboardInterrupt, Signalled) as exc:
        return ending_code(exc)   # re-raises what is neither the user's problem nor a signal's doing
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
