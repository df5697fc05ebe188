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


def _architectures_info() -> list[dict[str, Any]]:
    from workbench.models import get_spec, list_models

    specs = [get_spec(n) for n in list_models()]
    presets: dict[str, list[str]] = {}
    for spec in specs:
        if spec.preset_of:
            presets.setdefault(spec.preset_of, []).append(spec.name)
    return [
        {
            "name": s.name, "family": s.family, "description": s.description, "preset_of": s.preset_of,
            "presets": presets.get(s.name, []), "natural_input": list(s.natural_input),
            "default_classes": s.default_classes,
            "options": [{"name": o.name, "default": o.default, "help": o.help,
                         "choices": list(o.choices) if o.choices is not None else None,
                         "allowed": o.describe()} for o in s.options],
        }
        for s in specs
    ]  # fmt: skip


def _datasets_info() -> list[dict[str, Any]]:
    """Datasets from workbench.data's registry ([] while that package has none)."""
    try:
        from workbench.data import get_dataset, list_datasets
    except ImportError:
        return []
    rows = []
    for name in list_datasets():
        d = get_dataset(name)
        rows.append({"name": d.name, "title": d.title, "description": d.description, "kind": d.kind,
                     "channels": d.channels, "size": list(d.size), "classes": len(d.classes)})  # fmt: skip
    return rows


def _cmd_list(args: argparse.Namespace) -> int:
    archs, datasets = _architectures_info(), _datasets_info()
    if args.json:
        print_json_line({"architectures": archs, "datasets": datasets})
        return EXIT_OK
    out, family = [], None
    for a in archs:
        if a["family"] != family:
            family = a["family"]
            out.append(f"\n{family}:")
        shape = "x".join(str(v) for v in a["natural_input"])
        opts = ", ".join(f"{o['name']}={o['default']!r}" for o in a["options"])
        base = f" (preset of {a['preset_of']})" if a["preset_of"] else ""
        if a["family"] == "torchvision":
            out.append(f"  {a['name']:<28} {shape:>11}  {a['default_classes']:>4} classes  [{opts}]")
        else:
            out.append(f"  {a['name']:<28} {shape:>11}  {a['default_classes']:>4} classes{base}  {a['description']}")
            out.extend(f"      {o['name']} = {o['default']!r}: {o['help']}" for o in a["options"])
    out.append("\nDatasets:")
    out.extend(f"  {d['name']:<28} {d['channels']}x{d['size'][0]}x{d['size'][1]}  {d['title']}" for d in datasets)
    if not datasets:
        out.append("  (none registered)")
    sys.stdout.write("\n".join(out).lstrip("\n") + "\n")
    return EXIT_OK


def _parse_shape(text: str) -> tuple[int, int, int]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise InvalidOptionError(f"--input expects three positive integers C,H,W (e.g. 3,32,32), got {text!r}.")
    return shape  # type: ignore[return-value]


def _cmd_summary(args: argparse.Namespace) -> int:
    from workbench.models import summarize

    if args.depth < 0:
        raise InvalidOptionError(f"--depth must be 0 or more, got {args.depth}.")
    shape = _parse_shape(args.input) if args.input else None
    summary = summarize(args.arch, input_shape=shape, num_classes=args.classes, options=parse_assignments(args.set))
    if not args.json:
        sys.stdout.write(summary.format_table(args.depth) + "\n")
        return EXIT_OK
    data = summary.to_dict()
    totals = data["totals"]
    print_json_line({"arch": summary.arch, "input": summary.input_shape, "classes": summary.num_classes,
                     "options": data["options"], "total_params": totals["total_params"],
                     "trainable_params": totals["trainable_params"], "mult_adds": totals["mult_adds"],
                     "totals": totals, "layers": data["layers"], "parameters": data["parameters"]})  # fmt: skip
    return EXIT_OK


# --- train / runs ----------------------------------------------------------------------------------------


def _add_training_commands(sub: argparse._SubParsersAction) -> None:
    from workbench.training.cli_train import add_train_arguments

    p = sub.add_parser("train", help="train an architecture on a dataset")
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("runs", help="list the runs in a workspace")
    p.add_argument("--workspace", default=None, help="workspace folder (default: $WORKBENCH_HOME or the user data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON list as the last line")
    p.set_defaults(func=_cmd_runs)


def _cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) one run; exit 0 completed, 1 failed/diverged, 130 stopped by Ctrl-C."""
    from workbench.training.cli_train import cmd_train

    return cmd_train(args, print_json_line)


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
