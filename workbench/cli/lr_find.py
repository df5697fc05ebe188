"""`workbench lr-find`: the learning-rate range test on what `workbench train` would train; nothing is stored."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import TYPE_CHECKING

from workbench.cli.common import EXIT_OK, finite, print_json_line
from workbench.cli.train import add_train_arguments, job_from_args, stop_on_signals
from workbench.errors import InvalidOptionError

if TYPE_CHECKING:
    from workbench.training.lr_find import LrFinding


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `lr-find`."""
    p = sub.add_parser("lr-find", help="find a learning rate: loss over an exponential ramp of rates (nothing "
                                       "is stored)")
    add_train_arguments(p)
    ramp = p.add_argument_group("the ramp")
    ramp.add_argument("--start-lr", type=float, default=1e-7, metavar="LR", help="first rate of the ramp [1e-07]")
    ramp.add_argument("--end-lr", type=float, default=10.0, metavar="LR", help="last rate of the ramp [10]")
    ramp.add_argument("--steps", type=int, default=200, help="optimisation steps, one batch each [200]")
    ramp.add_argument("--diverge", type=float, default=4.0, metavar="FACTOR",
                      help="stop once the smoothed loss exceeds FACTOR x its minimum [4]")
    p.set_defaults(func=cmd_lr_find)


def cmd_lr_find(args: argparse.Namespace) -> int:
    """Run the range test; the JSON line is `{suggested_lr, lrs, losses, ...}`. Exit 0, or 128 + signal when
    stopped (the curve so far is still printed)."""
    from workbench.training.control import TrainControl
    from workbench.training.lr_find import find_lr

    if args.resume or args.resume_from != "last":
        raise InvalidOptionError("lr-find starts from a new model; leave out --resume and --resume-from.")
    if getattr(args, "nproc", None) is not None:
        raise InvalidOptionError("--nproc is a `workbench train` option; lr-find runs in this process.")
    job = job_from_args(args)
    control = TrainControl()
    stopped_by: list[int] = []
    progress = None if args.quiet else _Progress()
    with stop_on_signals(control, stopped_by):
        finding = find_lr(job, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps, diverge=args.diverge,
                          progress=progress, control=control)
    if progress is not None:
        progress.done()
    if args.json:
        data = finding.to_dict()
        print_json_line({"suggested_lr": finding.suggested_lr, "lrs": data["lrs"],
                         "losses": [finite(v) for v in data["losses"]],
                         "raw_losses": [finite(v) for v in data["raw_losses"]], "min_loss_lr": finding.min_loss_lr,
                         "stopped_early": finding.stopped_early, "cancelled": finding.cancelled})
    else:
        sys.stdout.write(format_finding(finding) + "\n")
    if finding.cancelled:
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    return EXIT_OK


def format_finding(finding: LrFinding) -> str:
    """The smoothed loss once per decade of the ramp, then the suggestion in one line."""
    lines = []
    if finding.lrs:
        lines.append(f"{'LR':>9}  SMOOTHED LOSS")
        shown: set[int] = set()
        for lr, loss in zip(finding.lrs, finding.losses, strict=True):
            decade = math.floor(math.log10(lr) + 1e-9)
            if decade not in shown:
                shown.add(decade)
                lines.append(f"{lr:9.1e}  {loss:.4g}")
        lines.append(f"{finding.lrs[-1]:9.1e}  {finding.losses[-1]:.4g}")
    steps = len(finding.lrs)
    if finding.cancelled:
        end = f"stopped after {steps} steps"
    elif finding.stopped_early:
        end = f"{steps} steps, stopped early once the loss rose past its minimum"
    else:
        end = f"{steps} steps"
    if finding.suggested_lr is None:
        lines.append(f"no suggestion: the smoothed loss never fell ({end}); try a larger --end-lr or more --steps")
    else:
        lines.append(f"suggested learning rate {finding.suggested_lr:.2e} (a tenth of {finding.min_loss_lr:.2e}, "
                     f"where the smoothed loss is lowest; {end})")
    return "\n".join(lines)


class _Progress:
    """A percentage on stderr, redrawn in place on a terminal and written once per stage otherwise."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.stage = ""
        self.shown = -1

    def __call__(self, stage: str, fraction: float) -> None:
        percent = int(100 * fraction)
        if stage != self.stage:
            if self.live and self.stage:
                sys.stderr.write("\n")
            self.stage, self.shown = stage, -1
            if not self.live:
                sys.stderr.write(f"{stage}...\n")
        if self.live and percent != self.shown:
            self.shown = percent
            sys.stderr.write(f"\r{stage}: {percent:3d}%")
            sys.stderr.flush()

    def done(self) -> None:
        if self.live and self.stage:
            sys.stderr.write("\n")
        sys.stderr.flush()

