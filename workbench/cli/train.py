"""`workbench train`: options generated from TrainConfig's fields, progress on stderr, exit codes."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    WORKSPACE_HELP,
    ending_code,
    finite,
    parse_assignments,
    parse_shape,
    print_json_line,
    raise_if_signalled,
    workspace_arg,
)
from workbench.errors import InvalidOptionError
from workbench.training.callbacks import Callback
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

# The data registry's declared options (`data_option_help()`), spelled out here so building the parser does not
# import torch; tests/test_cli_train.py checks the two agree.
DATA_OPTION_HELP = ("data-set option (Python literal; image_shape=1,28,28): emnist split; imagefolder image_size, "
                    "channels, streaming, memory_budget; fake train_size, val_size, image_shape, num_classes")


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
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE", help=DATA_OPTION_HELP)
    p.add_argument("--data-root", default=None, help="folder of the data sets ($WORKBENCH_DATA or <workspace>/data)")
    p.add_argument("--download", action="store_true", help="download the data set if it is not on disk")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.add_argument("--name", default="", help="a name for the run")
    p.add_argument("--resume", metavar="RUN_ID", default=None, help="continue a stopped or interrupted run")
    p.add_argument("--resume-from", choices=("last", "best"), default="last",
                   help="checkpoint a resumed run continues from (best: when last.pt is damaged) [last]")
    p.add_argument("--input", default=None, metavar="C,H,W", help="input shape (default: what the model needs)")
    p.add_argument("--classes", type=int, default=None, help="number of outputs (default: the data set's classes)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train with N local processes through PyTorch's elastic launcher (one per GPU on CUDA, CPU "
                        "processes with gloo otherwise); --batch-size stays the global batch; a resume may change "
                        "it. Under torchrun leave it out")
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


class _RunInfo(Callback):
    """Keeps the run's start event and its last epoch's metrics for the closing JSON line."""

    def __init__(self) -> None:
        self.start: Any = None
        self.last_epoch: Any = None

    def on_fit_start(self, e: Any) -> None:
        self.start = e

    def on_epoch_end(self, e: Any) -> None:
        self.last_epoch = e


# Signals that stop a run like Ctrl-C does (checkpoint, status stopped); the exit code is 128 + the signal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
# Options that name what a run learns from; a resumed run keeps its own.
_RESUME_REFUSED = {"set": "--set", "data_option": "--data-option", "input": "--input", "classes": "--classes",
                   "name": "--name", "arch": "--arch", "dataset": "--dataset"}


def cmd_train(args: argparse.Namespace) -> int:
    """Run `workbench train`; returns 0 completed, 1 failed/diverged, 128 + signal when stopped by a signal
    (130 for Ctrl-C)."""
    from workbench.training.distributed import env_rank, launcher_env

    job = job_from_args(args)
    raise_if_signalled()  # a Ctrl-C during torch's import may have been swallowed there
    if args.nproc is not None:
        if launcher_env():
            raise InvalidOptionError("--nproc starts its own processes; under torchrun leave it out "
                                     "(torchrun's --nproc-per-node sets the count).")
        return _launch(args, job)
    if launcher_env():
        # A launched process leaves without running C++ destructors: torch.distributed's background threads can
        # still be joinable then, and std::terminate would turn a finished run into an abort the launcher reports.
        # Whatever ends it (a second Ctrl-C, a peer's death seen by gloo) ends it here with its own exit code.
        try:
            code = _other_rank(job) if env_rank() else _train(args, job)
        except BaseException as exc:
            code = ending_code(exc, unexpected=True)
        with contextlib.suppress(OSError):     # a closed pipe must not skip os._exit
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return _train(args, job)


def _train(args: argparse.Namespace, job: Any) -> int:
    """Train (or resume) `job` in this process, reporting on the console; the exit code."""
    from workbench.runs.records import RunStatus
    from workbench.training.control import TrainControl
    from workbench.training.job import StoppedBeforeStartError, run_training

    control = TrainControl()
    info = _RunInfo()
    callbacks: list[Any] = [info] + ([] if args.quiet else [_console()])
    stopped_by: list[int] = []
    with stop_on_signals(control, stopped_by):
        try:
            result = run_training(job, callbacks, control)
        except StoppedBeforeStartError as exc:  # Ctrl-C while loading/downloading: nothing to save, no run made
            sys.stderr.write(f"workbench: {exc}\n")
            return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    if args.json:
        print_json_line(_json_line(result, info))
    else:
        acc = "n/a" if result.val_accuracy is None else f"{100 * result.val_accuracy:.2f}%"
        sys.stdout.write(f"{result.run_id} {result.status} epochs {result.epochs_completed} val accuracy {acc}\n")
    if result.status == RunStatus.COMPLETED:
        return EXIT_OK
    if result.status == RunStatus.STOPPED and stopped_by:
        return 128 + stopped_by[0]
    if result.status == RunStatus.STOPPED:  # stopped by a request through the store, or a failing callback
        sys.stderr.write(f"workbench: {result.message}\n")
        return EXIT_INTERRUPTED
    sys.stderr.write(f"workbench: run {result.status}: {result.message}\n")
    return EXIT_FAILED


def _launch(args: argparse.Namespace, job: Any) -> int:
    """`--nproc N`: run this same command (without --nproc) in N processes through the elastic launcher."""
    from workbench.training.distributed import check_batch_split
    from workbench.training.launcher import launch_local

    if args.nproc < 1:
        raise InvalidOptionError(f"--nproc must be at least 1, got {args.nproc}.")
    if not args.resume:  # a resumed run's batch size is checked by its processes (it is in the checkpoint)
        check_batch_split(job.config.batch_size, args.nproc)
    return launch_local(args.nproc, worker_argv(job, args))


def _other_rank(job: Any) -> int:
    """A process other than global rank 0: it trains its shard quietly (rank 0 reports); Ctrl-C and SIGTERM reach
    it from the launcher and stop it at the step every process agrees on. Exit 0 unless it failed itself, so the
    launcher waits for rank 0 to checkpoint and report."""
    from workbench.runs.records import RunStatus
    from workbench.training.control import TrainControl
    from workbench.training.distributed import FollowError, env_rank
    from workbench.training.job import StoppedBeforeStartError, run_training

    control = TrainControl()
    with stop_on_signals(control, [], quiet=True):
        try:
            result = run_training(job, (), control)
        except (FollowError, StoppedBeforeStartError):  # rank 0 says why
            return EXIT_OK
    if result.status == RunStatus.FAILED:
        sys.stderr.write(f"workbench: process {env_rank()}: {result.message}\n")
        return EXIT_FAILED
    return EXIT_OK


def worker_argv(job: Any, args: argparse.Namespace) -> list[str]:
    """What each launched process runs: the job spelled out as `train` arguments (`launcher.job_argv`, as the
    app's child processes get it), without --nproc, with the output flags this command was given."""
    from workbench.training.launcher import job_argv

    return [*job_argv(job), *(f"--{flag}" for flag in ("json", "quiet") if getattr(args, flag))]


def job_from_args(args: argparse.Namespace) -> Any:
    """The TrainJob the options describe; a resume takes only RESUME_OVERRIDES (and the same --data-root)."""
    from workbench.training.config import TrainJob

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if not args.resume and (not args.arch or not args.dataset):
        raise InvalidOptionError("train needs --arch NAME and --dataset NAME (or --resume RUN_ID).")
    if not args.resume and args.resume_from != "last":
        raise InvalidOptionError("--resume-from goes with --resume RUN_ID.")
    overrides: dict[str, Any] = {}
    if args.resume:  # only where/how it runs may change: --device, --amp, --channels-last, --nproc
        overrides = {k: v for k, v in given.items() if k in RESUME_OVERRIDES}
        refused = [f"--{k.replace('_', '-')}" for k in given if k not in RESUME_OVERRIDES]
        refused += [flag for key, flag in _RESUME_REFUSED.items() if getattr(args, key)]
        if refused:
            raise InvalidOptionError(f"--resume continues a run with its stored settings (only --device, --amp, "
                                     f"--channels-last and --nproc may change); drop {', '.join(refused)}.")
        given = {}
    config = recommended_config(args.arch or "", args.dataset or "", given)
    return TrainJob(
        arch=args.arch or "", dataset=args.dataset or "", arch_options=parse_assignments(args.set), config=config,
        dataset_options=parse_assignments(args.data_option, "--data-option"),
        data_root=Path(args.data_root).expanduser() if args.data_root else None, download=args.download,
        workspace=workspace_arg(args.workspace), name=args.name, resume_run_id=args.resume,
        input_override=parse_shape(args.input), num_classes_override=args.classes, resume_overrides=overrides,
        resume_from=args.resume_from)


def _console() -> Any:
    from workbench.training.console import ConsoleProgress

    return ConsoleProgress(sys.stderr)


@contextlib.contextmanager
def stop_on_signals(control: Any, stopped_by: list[int], quiet: bool = False) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP ask the run to stop (it checkpoints); a second Ctrl-C aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if not stopped_by:
            stopped_by.append(signum)
            if not quiet:
                name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
                sys.stderr.write(f"\n{name}: stopping after this step and saving a checkpoint "
                                 "(Ctrl-C again to abort)...\n")
        control.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _json_line(result: Any, info: _RunInfo) -> dict[str, Any]:
    from workbench.training.distributed import launcher_env

    keys = ("run_id", "status", "epochs_completed", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
            "best_val_accuracy", "images_per_second", "device", "message", "checkpoint")
    data = result.to_dict()
    line = {k: finite(data[k]) for k in keys}
    line["skipped"] = info.start.skipped if info.start else 0  # unreadable image files left out
    line["world_size"] = int(os.environ.get("WORLD_SIZE", "1")) if launcher_env() else 1  # training processes
    epoch = info.last_epoch
    line["train_main_loss"] = finite(epoch.train_main_loss) if epoch else None
    line["train_aux_losses"] = [finite(v) for v in epoch.train_aux_losses] if epoch else []
    line["val_aux_losses"] = [finite(v) for v in epoch.val_aux_losses] if epoch else []
    return line
