"""`workbench compare`: architectures side by side (params, Mult-Adds, memory, layers, receptive field, speed)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from workbench.cli.common import EXIT_OK, WORKSPACE_HELP, parse_assignments, parse_shape, print_json_line, workspace_arg
from workbench.errors import InvalidOptionError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `compare`."""
    p = sub.add_parser("compare", help="compare architectures side by side (params, cost, receptive field, speed)")
    p.add_argument("archs", nargs="+", metavar="ARCH", help="architectures, e.g. vgg_cifar nin googlenet resnet18")
    p.add_argument("--input", help="input shape C,H,W for every architecture (default: each one's natural input)")
    p.add_argument("--classes", type=int, default=None, help="number of classes (default: each one's own)")
    p.add_argument("--set", action="append", default=[], metavar="ARCH:KEY=VALUE",
                   help="option of one listed architecture (Python literal); without ARCH: for every one")
    p.add_argument("--measure", action="store_true",
                   help="also measure training and inference images/s on the device (batch 64, ~2 s each)")
    p.add_argument("--device", default="auto", help="device for --measure: auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--duration", type=float, default=2.0, metavar="SECONDS",
                   help="with --measure: seconds to time each of training and inference (default 2)")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_compare)


def split_options(items: Sequence[str], archs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`--set ARCH:KEY=VALUE` (or `KEY=VALUE` for every listed architecture) as options per architecture."""
    listed = sorted(set(archs), key=len, reverse=True)  # "tv:resnet18:weights=..." matches its longest name
    per_arch: dict[str, list[str]] = {a: [] for a in archs}
    for item in items:
        arch = next((a for a in listed if item.startswith(f"{a}:")), None)
        if arch is not None:
            per_arch[arch].append(item[len(arch) + 1:])
            continue
        key = item.partition("=")[0]
        if ":" in key:
            prefix = key.rpartition(":")[0]
            raise InvalidOptionError(
                f"--set {item!r} names {prefix!r}, which is not among the compared architectures "
                f"({', '.join(archs)}); use one of them before the colon."
            )
        for a in archs:
            per_arch[a].append(item)
    return {a: parse_assignments(values) for a, values in per_arch.items()}


def cmd_compare(args: argparse.Namespace) -> int:
    """The comparison as an aligned table, or one JSON object as the last line."""
    from workbench.analysis.compare import compare_architectures

    if args.classes is not None and args.classes < 1:
        raise InvalidOptionError(f"--classes must be a positive integer, got {args.classes}.")
    if args.duration <= 0:
        raise InvalidOptionError(f"--duration must be a positive number of seconds, got {args.duration}.")
    options = split_options(args.set, args.archs)
    progress = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    result = compare_architectures(
        args.archs, input_shape=parse_shape(args.input), num_classes=args.classes, options=options,
        measure=args.measure, device=args.device, duration_s=args.duration,
        workspace=workspace_arg(args.workspace), progress=progress,
    )  # fmt: skip
    if args.json:
        print_json_line(result.to_dict())
        return EXIT_OK
    sys.stdout.write(format_comparison(result.to_dict()["rows"]) + "\n")
    return EXIT_OK


_COLUMNS = (
    ("ARCH", "arch"), ("INPUT", "input"), ("PARAMS", "params"), ("MULT-ADDS", "mult_adds"),
    ("PARAMS MB", "params_mb"), ("ACT MB", "activations_mb"), ("CONV", "conv_layers"), ("LINEAR", "linear_layers"),
    ("RF", "receptive_field"), ("TRAIN IMG/S", "train_images_per_second"),
    ("INFER IMG/S", "infer_images_per_second"), ("BEST VAL", "best_val_accuracy"), ("RUNS", "runs"),
)  # fmt: skip


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row[key]
    if key == "arch":
        changed = _changed_options(row["arch"], row["options"])
        return value + (f" ({changed})" if changed else "")
    if value is None:
        return "-"
    if key == "input":
        return "x".join(str(v) for v in value) + f" /{row['classes']}"
    if key in ("params_mb", "activations_mb"):
        return f"{value:,.2f}"
    if key.endswith("per_second"):
        return f"{value:,.0f}"
    if key == "best_val_accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _changed_options(arch: str, options: dict[str, Any]) -> str:
    from workbench.models import get_spec

    defaults = get_spec(arch).defaults()
    return ", ".join(f"{k}={v!r}" for k, v in options.items()
                     if k in defaults and _jsonish(defaults[k]) != v)  # fmt: skip


def _jsonish(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonish(v) for v in value]
    return value


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """An aligned text table of compare rows (JSON-ready dicts): names left, numbers right."""
    table = [tuple(title for title, _ in _COLUMNS)]
    table += [tuple(_cell(key, row) for _, key in _COLUMNS) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = []
    for line in table:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(line[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
