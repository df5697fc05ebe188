"""The `workbench` command: no arguments opens the desktop app; subcommands run headless.

Subcommands: list, summary, train, runs, gui. Exit codes: 0 success; 2 bad input (one line on stderr,
no traceback); 1 a run failed or diverged; 130 interrupted (Ctrl-C) after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from workbench.errors import InvalidOptionError, WorkbenchError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """Parse `KEY=VALUE` strings; VALUE is a Python literal, or a bare string when it is not one."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidOptionError(f"--set expects KEY=VALUE, got {item!r}.")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        result[key] = value
    return result


def print_json_line(obj: Any) -> None:
    """Print one JSON object as the last stdout line (machine-readable output)."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


# --- list / summary --------------------------------------------------------------------------------------


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list architectures and datasets")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("summary", help="print an architecture's layer table")
    p.add_argument("arch", help="architecture name, e.g. resnet18, vgg_cifar or tv:resnet50")
    p.add_argument("--input", help="input shape C,H,W (default: the architecture's natural input)")
    p.add_argument("--classes", type=int, default=None, help="number of classes (default 10, 1000 for ImageNet layouts)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="architecture option (Python literal)")
    p.add_argument("--depth", type=int, default=3, help="deepest level of nested layers to show")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=_cmd_summary)


def _cmd_list(args: argparse.Namespace) -> int:
    raise NotImplementedError  # filled in by the model-zoo work


def _cmd_summary(args: argparse.Namespace) -> int:
    raise NotImplementedError  # filled in by the model-zoo work


# --- train / runs ----------------------------------------------------------------------------------------


def _add_training_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an architecture on a dataset")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("runs", help="list the runs in a workspace")
    p.add_argument("--workspace", default=None, help="workspace folder (default: $WORKBENCH_HOME or the user data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON list as the last line")
    p.set_defaults(func=_cmd_runs)


def _cmd_train(args: argparse.Namespace) -> int:
    raise NotImplementedError  # filled in by the training-engine work


def _cmd_runs(args: argparse.Namespace) -> int:
    """List the workspace's runs, newest first: a table, or a JSON list as the last line."""
    import time as _time
    from pathlib import Path

    from workbench.runs import RunStore

    store = RunStore(Path(args.workspace) if args.workspace else None)
    try:
        records = store.list_runs()
    finally:
        store.close()
    if args.json:
        print_json_line([r.to_dict() for r in records])
        return EXIT_OK
    if not records:
        print(f"No runs in {store.workspace} yet; start one with `workbench train`.")
        return EXIT_OK
    header = ("RUN ID", "NAME", "STATUS", "ARCH", "DATASET", "EPOCHS", "BEST VAL", "CREATED")
    rows = [header]
    for r in records:
        planned = r.epochs_planned
        epochs = f"{r.epochs_completed}/{planned}" if planned is not None else str(r.epochs_completed)
        best = "-" if r.best_val_accuracy is None else f"{100 * r.best_val_accuracy:.2f}%"
        created = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(r.created_at))
        rows.append((r.run_id, r.name or "-", r.status, r.arch, r.dataset, epochs, best, created))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK


# --- gui and entry point ---------------------------------------------------------------------------------


def _cmd_gui(args: argparse.Namespace) -> int:
    from workbench.ui.app import run_app

    return run_app(workspace=getattr(args, "workspace", None))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and shell completion)."""
    from workbench import __version__

    parser = _Parser(prog="workbench", description="CNN Workbench: inspect and train convolutional networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_model_commands(sub)
    _add_training_commands(sub)
    p = sub.add_parser("gui", help="open the desktop app (the default with no subcommand)")
    p.add_argument("--workspace", default=None, help="workspace folder (default: $WORKBENCH_HOME or the user data folder)")
    p.set_defaults(func=_cmd_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _cmd_gui(argparse.Namespace(workspace=None))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args))
    except WorkbenchError as exc:
        sys.stderr.write(f"workbench: error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("workbench: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
