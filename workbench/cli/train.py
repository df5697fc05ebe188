"""`workbench train`: options generated from TrainConfig's fields, progress on stderr, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    WORKSPACE_HELP,
    finite,
    parse_assignments,
    parse_shape,
    print_json_line,
    workspace_arg,
)
from workbench.errors import InvalidOptionError
from workbench.training.config import (
    AMP_MODES,
    CHANNELS_LAST_MODES,
    FIELD_HELP,
    OPTIMIZERS,
    RESUME_OVERRIDES,
    SCHEDULES,
    TrainConfig,
    recommended_config,
)

_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": AMP_MODES, "channels_last": CHANNELS_LAST_MODES}


def _converter(name: str, type_text: str) -> Callable[[str], Any]:
    """argparse `type=` for a config field: int/float, 'none' for optional fields."""
    optional = "None" in type_text
    base = int if type_text.startswith("int") else float if type_text.startswith("float") else str

    def convert(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "off", ""):
            return None
        try:
            return base(text)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(base, "text")
            raise argparse.ArgumentTypeError(
                f"--{name.replace('_', '-')} expects {kind}{' or none' if optional else ''}, got {text!r}") from None

    convert.__name__ = base.__name__
    return convert


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The `train` options: what to train, where, and one option per TrainConfig field."""
    p.add_argument("--arch", help="architecture name (see `workbench list`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture option (Python literal)")
    p.add_argument("--dataset", help="data set name (see `workbench list`)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="data-set option (Python literal; image_shape=1,28,28): fake train_size, val_size, "
                        "image_shape, num_classes; emnist split; imagefolder image_size, channels, streaming, "
                        "memory_budget")
    p.add_argument("--data-root", default=None, help="folder of the data sets ($WORKBENCH_DATA or <workspace>/data)")
    p.add_argument("--download", action="store_true", help="download the data set if it is not on disk")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.add_argument("--name", default="", help="a name for the run")
    p.add_argument("--resume", metavar="RUN_ID", default=None, help="continue a stopped or interrupted run")
    p.add_argument("--input", default=None, metavar="C,H,W", help="input shape (default: what the model needs)")
    p.add_argument("--classes", type=int, default=None, help="number of outputs (default: the data set's classes)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    defaults = TrainConfig()
    group = p.add_argument_group("training options (defaults in brackets)")
    for f in dataclasses.fields(TrainConfig):
        flag = f"--{f.name.replace('_', '-')}"
        default = getattr(defaults, f.name)
        help_text = f"{FIELD_HELP.get(f.name, '')} [{default}; some architectures/data sets start elsewhere]"
        if str(f.type).startswith("bool"):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        elif f.name in _CHOICES:
            group.add_argument(flag, dest=f.name, choices=_CHOICES[f.name], default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=_converter(f.name, str(f.type)), default=argparse.SUPPRESS,
                               metavar=f.name.upper(), help=help_text)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `train`."""
    p = sub.add_parser("train", help="train an architecture on a dataset")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Run `workbench train`; returns 0 completed, 1 failed/diverged, 130 stopped (Ctrl-C)."""
    from workbench.training.callbacks import Callback
    from workbench.training.config import TrainJob
    from workbench.training.console import ConsoleProgress
    from workbench.training.control import TrainControl
    from workbench.training.events import FitStart
    from workbench.training.job import StoppedBeforeStartError, run_training

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if not args.resume and (not args.arch or not args.dataset):
        raise InvalidOptionError("train needs --arch NAME and --dataset NAME (or --resume RUN_ID).")
    overrides: dict[str, Any] = {}
    if args.resume:  # only where/how it runs may change: --device, --amp, --channels-last
        overrides = {k: v for k, v in given.items() if k in RESUME_OVERRIDES}
        refused = [k for k in given if k not in RESUME_OVERRIDES]
        refused += [k for k in ("set", "data_option") if getattr(args, k)]
        if refused:
            names = ", ".join(f"--{k.replace('_', '-')}" for k in refused)
            raise InvalidOptionError(f"--resume continues a run with its stored settings (only --device, --amp "
                                     f"and --channels-last may change); drop {names}.")
        given = {}
    config = recommended_config(args.arch or "", args.dataset or "", given)
    job = TrainJob(
        arch=args.arch or "", dataset=args.dataset or "", arch_options=parse_assignments(args.set), config=config,
        dataset_options=parse_assignments(args.data_option, "--data-option"),
        data_root=Path(args.data_root).expanduser() if args.data_root else None, download=args.download,
        workspace=workspace_arg(args.workspace), name=args.name,
        resume_run_id=args.resume, input_override=parse_shape(args.input), num_classes_override=args.classes,
        resume_overrides=overrides)
    control = TrainControl()
    started: list[FitStart] = []

    class _FitInfo(Callback):
        def on_fit_start(self, e: FitStart) -> None:
            started.append(e)

    callbacks: list[Callback] = [_FitInfo()] + ([] if args.quiet else [ConsoleProgress(sys.stderr)])
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            sys.stderr.write("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)...\n")
            control.stop()
            signal.signal(signal.SIGINT, signal.default_int_handler)
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = run_training(job, callbacks, control)
    except StoppedBeforeStartError as exc:  # Ctrl-C while loading/downloading: nothing to save, no run made
        sys.stderr.write(f"workbench: {exc}\n")
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if args.json:
        keys = ("run_id", "status", "epochs_completed", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "best_val_accuracy", "images_per_second", "device", "message", "checkpoint")
        data = result.to_dict()
        line = {k: finite(data[k]) for k in keys}
        line["skipped"] = started[0].skipped if started else 0  # unreadable image files left out
        print_json_line(line)
    else:
        acc = "n/a" if result.val_accuracy is None else f"{100 * result.val_accuracy:.2f}%"
        sys.stdout.write(f"{result.run_id} {result.status} epochs {result.epochs_completed} val accuracy {acc}\n")
    if result.status == "completed":
        return EXIT_OK
    if result.status == "stopped":
        return EXIT_INTERRUPTED
    sys.stderr.write(f"workbench: run {result.status}: {result.message}\n")
    return EXIT_FAILED
