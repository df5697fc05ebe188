"""`workbench experiment`: train variants (architectures x --vary grid) one after another with the same data, seed
and budget; Ctrl-C stops the current run and leaves the rest queued; the same command (or --resume) continues."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    parse_assignments,
    parse_shape,
    print_json_line,
    workspace_arg,
)
from workbench.cli.compare import split_options
from workbench.cli.train import add_train_arguments, stop_on_signals
from workbench.errors import InvalidOptionError
from workbench.training.config import RESUME_OVERRIDES, TrainConfig

if TYPE_CHECKING:
    from workbench.training.callbacks import Callback
    from workbench.training.experiment import ExperimentPlan, ExperimentStatus, Variant, VariantEvent


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `experiment`."""
    p = sub.add_parser("experiment", conflict_handler="resolve",
                       help="train several architectures or settings one after another with the same data, seed "
                            "and budget")
    add_train_arguments(p)   # then the options whose meaning differs here replace train's
    p.add_argument("--arch", action="append", default=[], metavar="NAME",
                   help="an architecture to train (repeat for several; see `workbench list`)")
    p.add_argument("--set", action="append", default=[], metavar="[ARCH:]KEY=VALUE",
                   help="architecture option (Python literal) for every listed architecture, or for ARCH only")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="an architecture option of every listed architecture, or a training option, to vary "
                        "(e.g. residual=True,False or lr=0.1,0.01); several --vary make a grid")
    p.add_argument("--name", default="", help="a name for the experiment")
    p.add_argument("--resume", metavar="EXPERIMENT_ID", default=None,
                   help="continue a stored experiment (running the same command again does the same)")
    p.add_argument("--resume-from", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_experiment)


def parse_vary(items: Sequence[str]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """`KEY=V1,V2,...` strings as (key, values): the values as one Python literal list when they parse as one
    (so tuples keep their commas: `block_info=((1,64),),((2,64),)`), else split at commas, each read as `--set`
    reads a value; `none` is None."""
    result = []
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip().replace("-", "_"), raw.strip()
        if not sep or not key or not raw:
            raise InvalidOptionError(f"--vary expects KEY=V1,V2,..., got {item!r}.")
        try:
            parsed = ast.literal_eval(f"[{raw}]")
            values = list(parsed) if isinstance(parsed, list) else [parsed]
        except (ValueError, SyntaxError):
            values = [parse_assignments([f"v={part}"], "--vary")["v"] for part in raw.split(",")]
        values = [None if isinstance(v, str) and v.lower() == "none" else v for v in values]
        result.append((key, tuple(values)))
    return tuple(result)


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run the queue; exit 0 when every variant completed, 1 when one failed or diverged, 128 + signal when
    stopped by one (130 for Ctrl-C)."""
    from workbench.training.control import TrainControl
    from workbench.training.experiment import run_experiment

    plan = _plan_from_args(args)
    control = TrainControl()
    stopped_by: list[int] = []
    with stop_on_signals(control, stopped_by):
        status = run_experiment(plan, None if args.quiet else _console_for, control,
                                on_variant=None if args.quiet else _announce)
    if args.json:
        print_json_line(status.to_dict())
    else:
        sys.stdout.write(format_status(status) + "\n")
    statuses = {v.status for v in status.variants}
    if stopped_by:
        return 128 + stopped_by[0]
    if "stopped" in statuses:   # a stop request through the store, or a failing callback
        sys.stderr.write(f"workbench: experiment {status.experiment_id} stopped; continue it with "
                         f"`workbench experiment --resume {status.experiment_id}`\n")
        return EXIT_INTERRUPTED
    if statuses & {"failed", "diverged"}:
        return EXIT_FAILED
    return EXIT_OK


def _plan_from_args(args: argparse.Namespace) -> ExperimentPlan:
    from workbench.training.experiment import ExperimentSpec, plan_experiment

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if args.resume_from is not None:
        raise InvalidOptionError("--resume-from is a `workbench train` option; an experiment resumes a stopped "
                                 "variant from its last checkpoint.")
    if getattr(args, "nproc", None) is not None:
        raise InvalidOptionError("--nproc is a `workbench train` option; an experiment trains its variants in this "
                                 "process, one after another.")
    workspace = workspace_arg(args.workspace)
    if args.resume:
        return _resumed_plan(args, given, workspace)
    if not args.arch or not args.dataset:
        raise InvalidOptionError("experiment needs --arch NAME (one or more) and --dataset NAME, "
                                 "or --resume EXPERIMENT_ID.")
    spec = ExperimentSpec(
        archs=tuple(dict.fromkeys(args.arch)), dataset=args.dataset, vary=parse_vary(args.vary),
        arch_options=split_options(args.set, args.arch), train_options=given,
        dataset_options=parse_assignments(args.data_option, "--data-option"), data_root=args.data_root,
        input_shape=parse_shape(args.input), num_classes=args.classes, name=args.name)
    return plan_experiment(spec, workspace=workspace, download=args.download)


def _resumed_plan(args: argparse.Namespace, given: dict[str, Any], workspace: Any) -> ExperimentPlan:
    from workbench.runs.experiments import get_experiment
    from workbench.runs.store import RunStore
    from workbench.training.experiment import plan_from_record

    refused = [f"--{k.replace('_', '-')}" for k in given if k not in RESUME_OVERRIDES]
    refused += [flag for key, flag in (("arch", "--arch"), ("dataset", "--dataset"), ("set", "--set"),
                                       ("vary", "--vary"), ("data_option", "--data-option"), ("input", "--input"),
                                       ("classes", "--classes"), ("name", "--name"), ("data_root", "--data-root"))
                if getattr(args, key)]
    if refused:
        raise InvalidOptionError(f"--resume continues an experiment with its stored settings (only --device, --amp "
                                 f"and --channels-last may change); drop {', '.join(refused)}.")
    record = get_experiment(RunStore(workspace), args.resume)
    hardware = {k: v for k, v in given.items() if k in RESUME_OVERRIDES}
    return plan_from_record(record, workspace=workspace, download=args.download, hardware=hardware)


def _console_for(variant: Variant) -> list[Callback]:
    from workbench.training.console import ConsoleProgress

    return [ConsoleProgress(sys.stderr)]


def _announce(event: VariantEvent) -> None:
    where = f"[{event.index + 1}/{event.total}] {event.label}"
    if event.phase == "skipped":
        sys.stderr.write(f"{where}: already {event.status} (run {event.run_id}), skipped\n")
    elif event.phase == "started":
        sys.stderr.write(f"{where}: {'resuming run ' + str(event.run_id) if event.resumed else 'starting'}\n")
    sys.stderr.flush()


_COLUMNS = (("#", "index"), ("VARIANT", "label"), ("RUN", "run_id"), ("STATUS", "status"),
            ("EPOCHS", "epochs_completed"), ("BEST VAL", "best_val_accuracy"), ("TRAIN TIME", "train_seconds"),
            ("IMG/S", "images_per_second"), ("PARAMS", "params"), ("MULT-ADDS", "mult_adds"))
_LEFT = 4   # the first columns (up to STATUS) are left-aligned text


def format_status(status: ExperimentStatus) -> str:
    """An aligned table of the variants, and a closing line saying how to continue when some are still queued."""
    from workbench.training.console import format_duration

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key == "index":
            return str(value + 1)
        if key == "best_val_accuracy":
            return f"{100 * value:.2f}%"
        if key == "train_seconds":
            return format_duration(value)
        if key == "images_per_second":
            return f"{value:,.0f}" if math.isfinite(value) else "-"
        return f"{value:,}" if isinstance(value, int) else str(value)

    rows = [tuple(title for title, _ in _COLUMNS)]
    rows += [tuple(cell(key, getattr(v, key)) for _, key in _COLUMNS) for v in status.variants]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [f"experiment {status.experiment_id}" + (f" ({status.name})" if status.name else "")
             + f" on {status.dataset}: {len(status.variants)} variant(s)"]
    for r in rows:
        cells = [c.ljust(w) if i < _LEFT else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    left = len(status.queued)
    if left:
        lines.append(f"{left} variant(s) still to train: continue with `workbench experiment --resume "
                     f"{status.experiment_id}` (or run the same command again)")
    return "\n".join(lines)
