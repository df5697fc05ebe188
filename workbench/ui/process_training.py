"""Training in several processes from the app: the run is launched as `workbench train ... --nproc N` in a child
process, and followed through the run store like any run another process trains.

`process_training_task` is Qt-free: it starts the child, reports `ProcessRunStarted` once the run appears in the
store, forwards a Stop as Ctrl-C to the child's process group (the launcher hands it to every process; they
checkpoint after the same step), and returns the child's closing JSON line as a FitResult.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.training.events import FitResult
from workbench.ui.tasks import Task, TaskSink

if TYPE_CHECKING:
    from workbench.training.config import TrainJob

POLL_S = 0.25


@dataclass(frozen=True)
class ProcessRunStarted:
    """The child's run exists in the store: the app can follow it."""

    run_id: str
    processes: int


def process_command(job: TrainJob, processes: int) -> list[str]:
    """The child's command line: this job as `workbench train` arguments, in `processes` processes."""
    from workbench.training.launcher import job_argv

    return [sys.executable, "-m", "workbench", *job_argv(job), "--nproc", str(processes), "--json", "--quiet"]


def process_training_task(job: TrainJob, processes: int, command: Sequence[str] | None = None) -> Task:
    """A task that trains `job` in a child process (`command`, default `process_command(job, processes)`)."""

    def task(sink: TaskSink) -> FitResult:
        from workbench.runs import RunStore

        store = RunStore(job.workspace)
        known = {r.run_id for r in store.list_runs()}
        argv = list(command or process_command(job, processes))
        with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
            child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True,
                                     start_new_session=True)  # its own process group: a Stop reaches every process
            run_id, stop_sent = job.resume_run_id, False
            if run_id:
                sink.partial(ProcessRunStarted(run_id, processes))
            while child.poll() is None:
                if sink.cancelled() and not stop_sent:
                    stop_sent = True
                    os.killpg(child.pid, signal.SIGINT)
                if run_id is None:
                    new = [r for r in store.list_runs() if r.run_id not in known]
                    if new:
                        run_id = new[0].run_id
                        sink.partial(ProcessRunStarted(run_id, processes))
                time.sleep(POLL_S)
            out = child.stdout.read() if child.stdout is not None else ""
            errors.seek(0)
            problem = errors.read().strip().splitlines()
        store.close()
        lines = out.strip().splitlines()
        if lines and lines[-1].startswith("{"):
            try:
                return FitResult.from_dict(json.loads(lines[-1]))
            except (ValueError, KeyError, TypeError) as exc:
                raise WorkbenchError(f"The training process ended (exit code {child.returncode}) with a result the "
                                     f"app cannot read ({type(exc).__name__}: {exc}); see the run in the runs list."
                                     ) from None
        last = problem[-1] if problem else f"exit code {child.returncode}"
        raise WorkbenchError(last.removeprefix("workbench: error: ").removeprefix("workbench: "))

    return task


def max_processes() -> int:
    """How many processes a run may use here: one per GPU on CUDA, else one per CPU core."""
    from workbench.ui.training_settings import available_devices

    gpus = sum(device.startswith("cuda:") for device in available_devices())
    return gpus or max(1, os.cpu_count() or 1)
