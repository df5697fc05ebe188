"""`workbench train --nproc N`: the same command in N local processes through PyTorch's elastic launcher (the
engine behind torchrun), one per GPU on CUDA and CPU processes with gloo otherwise; see distributed.py for what
the processes do."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from workbench.errors import InvalidOptionError, WorkbenchError
from workbench.training.config import TrainConfig, TrainJob

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

# Seconds the local launcher gives the processes to checkpoint and exit after a stop signal before killing them.
SHUTDOWN_TIMEOUT_S = 60
LAUNCH_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class LaunchError(WorkbenchError):
    """The local launcher could not start the processes (e.g. no free port for the rendezvous)."""


def launch_local(nproc: int, argv: Sequence[str]) -> int:
    """Run `python -m workbench ARGV` as `nproc` processes on this machine through PyTorch's elastic launcher (what
    torchrun runs: a c10d rendezvous on a free local port, no restarts) and return the exit code: the main process's
    (0 completed, 130 stopped, 1 failed, 2 bad input), or 128 + N when this launcher got signal N (it hands the
    signal to every process once; they checkpoint and exit, or are killed after SHUTDOWN_TIMEOUT_S)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise InvalidOptionError(f"--nproc must be at least 1, got {nproc}.")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"workbench-{uuid.uuid4().hex}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          signals_to_handle=",".join(LAUNCH_SIGNALS), shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    with _launcher_process_state(nproc):
        try:
            elastic_launch(config, sys.executable)("-u", "-m", "workbench", *argv)
        except ChildFailedError as exc:
            return _exit_code(exc.failures, nproc)
        except SignalException as exc:
            return 128 + int(exc.sigval)
        except Exception as exc:  # the launcher itself failed (e.g. its rendezvous), not a training process
            raise LaunchError(f"The launcher of {nproc} training processes failed ({type(exc).__name__}: {exc}); "
                              "check that this machine can open local TCP ports, or run without --nproc.") from None
    return 0


def _exit_code(failures: Mapping[int, ProcessFailure], nproc: int) -> int:
    """The main process's exit code when it exited by itself; when the launcher had to end it (another process
    failed first), the code of the first process that failed by itself (128 + N for one killed by signal N)."""
    own = {rank: f.exitcode for rank, f in failures.items() if f.exitcode > 0}
    if 0 in own:
        return own[0]
    if not own:
        return 128 - min(f.exitcode for f in failures.values())
    rank = min(own, key=lambda r: (failures[r].timestamp, r))
    sys.stderr.write(f"workbench: process {rank} of {nproc} exited with code {own[rank]}; the run did not finish.\n")
    return own[rank]


@contextlib.contextmanager
def _launcher_process_state(nproc: int) -> Iterator[None]:
    """Around a launch: a CPU thread share per process (unless OMP_NUM_THREADS is set), the elastic agent's log
    lines kept quiet (the processes report for themselves), this process's signal handlers and environment kept."""
    environ = dict(os.environ)
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in _signals()} if main_thread else {}
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    import torch.distributed.launcher.api  # noqa: F401 - creates the agent's loggers (each with its own level)

    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith("torch.distributed.elastic") or name.startswith("torch.distributed.launcher")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)  # failures come back as exit codes; the processes say why
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        os.environ.clear()
        os.environ.update(environ)


def _signals() -> Iterator[signal.Signals]:
    for name in LAUNCH_SIGNALS:
        if hasattr(signal, name):
            yield getattr(signal, name)


def job_argv(job: TrainJob) -> list[str]:
    """The `workbench train` arguments that describe `job` (every training option spelled out), so another process
    — e.g. `--nproc N` launched from the desktop app — trains exactly this job."""
    if job.resume_run_id:
        argv = ["train", "--resume", job.resume_run_id, "--resume-from", job.resume_from]
        for key, value in job.resume_overrides.items():
            argv += [f"--{key.replace('_', '-')}", _flag_value(value)]
    else:
        argv = ["train", "--arch", job.arch, "--dataset", job.dataset]
        for key, value in job.arch_options.items():
            argv += ["--set", f"{key}={value!r}"]
        for key, value in job.dataset_options.items():
            argv += ["--data-option", f"{key}={value!r}"]
        if job.input_override:
            argv += ["--input", ",".join(str(v) for v in job.input_override)]
        if job.num_classes_override is not None:
            argv += ["--classes", str(job.num_classes_override)]
        if job.name:
            argv += ["--name", job.name]
        for field in dataclasses.fields(TrainConfig):
            value = getattr(job.config, field.name)
            flag = f"--{field.name.replace('_', '-')}"
            if isinstance(value, bool):
                argv.append(flag if value else f"--no-{flag[2:]}")
            elif value is None and str(field.type).startswith("bool"):
                continue  # "per data set": the CLI's recommended config fills it the same way
            else:
                argv += [flag, _flag_value(value)]
    if job.data_root is not None:
        argv += ["--data-root", str(job.data_root)]
    if job.workspace is not None:
        argv += ["--workspace", str(job.workspace)]
    if job.download:
        argv.append("--download")
    return argv


def _flag_value(value: object) -> str:
    return "none" if value is None else str(value)
