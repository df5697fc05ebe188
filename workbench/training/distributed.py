"""Several processes training one run (`workbench train --nproc N`, or any torchrun launch): the process group, the
rank roles and the few collectives the trainer needs (the local launcher is in launcher.py).

Rank roles: global rank 0 (the main process) plans the run, owns the run store, writes every checkpoint and reports
to the callbacks; every rank trains its slice of each global batch under DistributedDataParallel. `Distributed` is
the one-process case, where every method is a no-op; `ProcessGroup` is the same interface over torch.distributed,
so the trainer reads the same either way.

Stop protocol: a stop (Ctrl-C, SIGTERM, a request through the run store) or pause lands in the local TrainControl
of whichever rank sees it; the trainer's own control is an agreed copy that changes only at a synchronisation
point, where one all-reduce carries the metric sums together with every rank's stop/pause flags (at the step-
emission cadence, never per step). So every rank stops after the same step, and only rank 0 checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from workbench.errors import InvalidOptionError, WorkbenchError
from workbench.training.control import TrainControl
from workbench.training.totals import DeviceSums, EpochClock, EpochTotals, Validation, ValidationBatches

if TYPE_CHECKING:
    from workbench.training.config import TrainConfig

T = TypeVar("T")

# How long a collective may wait for the other processes (a rank that hangs, not one that died: the launcher
# tears the others down at once then). Long enough for rank 0 to write a big checkpoint or download data.
TIMEOUT_ENV = "WORKBENCH_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0
_MAX_EVERY = 10_000


class FollowError(WorkbenchError):
    """Another process of the run failed first (the main process reports it); this one ends quietly."""


class ProcessError(WorkbenchError):
    """Another process of the run could not start training (its own sentence, prefixed with the process)."""


def launcher_env(environ: Mapping[str, str] | None = None) -> bool:
    """True when a launcher (torchrun, `--nproc`) started this process: RANK, WORLD_SIZE and MASTER_ADDR are set."""
    env = os.environ if environ is None else environ
    return all(key in env for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def env_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank from the launcher's environment (0 without a launcher)."""
    env = os.environ if environ is None else environ
    return int(env.get("RANK", "0")) if launcher_env(env) else 0


def check_batch_split(batch_size: int, world_size: int) -> None:
    """The global batch must split evenly over the processes (InvalidOptionError otherwise)."""
    if world_size > 1 and batch_size % world_size:
        lower = batch_size - batch_size % world_size
        hint = f"--batch-size {lower} or {lower + world_size}" if lower else f"--batch-size {world_size}"
        raise InvalidOptionError(f"--batch-size {batch_size} (the global batch) does not split evenly over "
                                 f"{world_size} processes; use a multiple of {world_size}, e.g. {hint}.")


class Distributed:
    """One process: the whole run is here, every collective is the identity."""

    rank = 0
    local_rank = 0
    world_size = 1
    local_world_size = 1
    failed = False                         # the run failed (or raised) in this process: leave without waiting

    @property
    def is_main(self) -> bool:
        """True in the process that owns the run store and writes the checkpoints (global rank 0)."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, world size) for the data loaders; None in one process."""
        return None

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.failed = True
        self.close()

    def close(self) -> None:
        """Leave the process group (nothing to do in one process)."""

    # --- set-up --------------------------------------------------------------------------------------

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the main process and hand its (picklable) result to every process; when it raises, the
        main process raises that error and the others a FollowError."""
        return fn()

    def agree(self, fn: Callable[[], T]) -> T:
        """Run `fn` in every process; if it raises anywhere, raise everywhere (the main process the first error,
        the others FollowError), so no process trains alone."""
        return fn()

    def device_for(self, device: torch.device) -> torch.device:
        """The training device of this process (cuda:LOCAL_RANK for `cuda` under a launcher)."""
        return device

    def check(self, config: TrainConfig, device: torch.device) -> None:
        """Refuse settings that cannot run with this many processes (before any run is created)."""

    def trainer_control(self, control: TrainControl) -> TrainControl:
        """The control the trainer reads: `control` itself in one process, an agreed copy with several."""
        return control

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        """The model to train (SyncBatchNorm layers with several processes when asked)."""
        return model

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module the training steps call (DistributedDataParallel with several processes)."""
        return model

    def decorrelate_rng(self) -> None:
        """Give each process its own stream of the global RNG (dropout) from the shared state."""

    # --- the training loop ----------------------------------------------------------------------------

    def batch_share(self, loader: object, index: int) -> float:
        """This process's fraction of training batch `index` (1.0 in one process)."""
        return 1.0

    def sync_due(self, clock: EpochClock, control: TrainControl, interval: float) -> bool:
        """True after a step when the sums are to be synchronised and a step event emitted (about every
        `interval` seconds, and at once after a stop)."""
        return control.stopped or clock.emit_due(interval)

    def fold(self, sums: DeviceSums, totals: EpochTotals, clock: EpochClock) -> None:
        """Move the step sums into the epoch totals (summed over processes, agreeing on stop and pause)."""
        sums.fold_into(totals)

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every process the main process's buffers (batch-norm statistics) before validating."""

    def validation(self, batches: ValidationBatches, device: torch.device) -> Validation:
        """The validation result over every process's shard, samples in the validation set's order."""
        return batches.result()


class ProcessGroup(Distributed):
    """This process's part of a torch.distributed process group set up by a launcher (see module docstring)."""

    def __init__(self, rank: int, world_size: int, local_rank: int, local_world_size: int, owned: bool) -> None:
        self.rank, self.world_size = rank, world_size
        self.local_rank, self.local_world_size = local_rank, local_world_size
        self._owned = owned
        self._local = TrainControl()       # where signals and store requests land in this process
        self._agreed = TrainControl()      # what the trainer reads: changed only at synchronisation points
        self._device = torch.device("cpu")
        self._every = 1                    # steps between synchronisations (rank 0's proposal, agreed)
        self._since = 0
        self._interval = 0.06
        self._last_sync = time.perf_counter()

    @property
    def shard(self) -> tuple[int, int] | None:
        return (self.rank, self.world_size) if self.world_size > 1 else None

    def close(self) -> None:
        """Leave the process group. When every process reached the same end (completed, stopped, diverged) each
        first waits for the others: one that tears gloo down while another still talks to it aborts in C++
        ("terminate called without an active exception"). After a failure nobody waits: the failing process
        exits and the launcher ends the others."""
        import torch.distributed as dist

        if not (self._owned and dist.is_initialized()):
            return
        if not self.failed:
            with contextlib.suppress(Exception):
                dist.barrier()
        dist.destroy_process_group()

    # --- set-up --------------------------------------------------------------------------------------

    def from_main(self, fn: Callable[[], T]) -> T:
        import torch.distributed as dist

        payload: list[Any] = [None]
        error: Exception | None = None
        if self.is_main:
            try:
                value = fn()
                payload = [(True, value)]
            except Exception as exc:
                error = exc
                payload = [(False, str(exc))]
        dist.broadcast_object_list(payload, src=0)
        ok, value = payload[0]
        if error is not None:
            raise error
        if not ok:
            raise FollowError(str(value))
        return value

    def agree(self, fn: Callable[[], T]) -> T:
        import torch.distributed as dist

        error: Exception | None = None
        value: T | None = None
        try:
            value = fn()
        except Exception as exc:
            error = exc
        messages: list[str | None] = [None] * self.world_size
        dist.all_gather_object(messages, None if error is None else str(error) or type(error).__name__)
        failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
        if failed:
            if not self.is_main:
                raise FollowError(failed[0][1] or "another process failed")
            if error is not None:
                raise error
            rank, text = failed[0]
            raise ProcessError(f"Process {rank} of {self.world_size}: {text}")
        return value  # type: ignore[return-value]

    def device_for(self, device: torch.device) -> torch.device:
        if device.type == "cuda":
            if device.index is not None and self.local_world_size > 1:
                raise InvalidOptionError(f"--device {device} picks one GPU, but {self.local_world_size} processes "
                                         "per node each need their own; use --device cuda.")
            count = torch.cuda.device_count()
            if device.index is None:
                if self.local_rank >= count:
                    raise InvalidOptionError(f"This node has {count} GPU(s), too few for local process "
                                             f"{self.local_rank}; start at most {count} processes per node.")
                device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise InvalidOptionError(f"Training with several processes runs on CUDA GPUs (nccl) or CPUs (gloo), not "
                                     f"{device.type}; use --device cuda or --device cpu.")
        self._device = device
        return device

    def check(self, config: TrainConfig, device: torch.device) -> None:
        check_batch_split(config.batch_size, self.world_size)
        if config.sync_batchnorm and self.world_size > 1 and device.type != "cuda":
            raise InvalidOptionError("sync_batchnorm needs CUDA GPUs (nccl); leave it off for CPU processes.")

    def trainer_control(self, control: TrainControl) -> TrainControl:
        self._local, self._agreed = control, TrainControl()
        return self._agreed

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        if config.sync_batchnorm and self.world_size > 1:
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)

    def decorrelate_rng(self) -> None:
        if self.world_size > 1:
            base = int(torch.randint(0, 2**62, (1,)).item())  # the same draw in every process
            torch.manual_seed(base + self.rank)

    # --- the training loop ----------------------------------------------------------------------------

    def batch_share(self, loader: object, index: int) -> float:
        share = getattr(loader, "batch_share", None)
        return float(share(index)) if callable(share) else 1.0 / self.world_size

    def sync_due(self, clock: EpochClock, control: TrainControl, interval: float) -> bool:
        self._interval = interval
        # A count of steps agreed by every process (a clock would differ between them and desynchronise them).
        self._since += 1
        return self._since >= self._every

    def fold(self, sums: DeviceSums, totals: EpochTotals, clock: EpochClock) -> None:
        import torch.distributed as dist

        flags = [float(self._local.stopped), float(self._local.paused),
                 float(self._propose_every()) if self.is_main else 0.0]
        packed = sums.packed(flags)
        dist.all_reduce(packed)
        values = packed.tolist()
        stop, pause, every = values[4:7]
        sums.fold_packed(values, len(flags), totals)
        self._every, self._since, self._last_sync = max(1, round(every)), 0, time.perf_counter()
        if pause and not stop:
            stop = self._wait_while_paused(clock)
        if stop:
            self._agreed.stop()

    def _propose_every(self) -> int:
        """Steps that take about the emission interval, from the time the last ones took (main process only)."""
        if not self._since:
            return self._every
        per_step = max(1e-6, (time.perf_counter() - self._last_sync) / self._since)
        return max(1, min(_MAX_EVERY, int(self._interval / per_step)))

    def _wait_while_paused(self, clock: EpochClock) -> bool:
        """Every process waits (a collective every half second keeps the group alive) until no process is
        paused; True when a stop arrived meanwhile."""
        import torch.distributed as dist

        started = clock.now()
        while True:
            self._local.wait_while_paused(0.5)
            flags = torch.tensor([float(self._local.stopped), float(self._local.paused)], dtype=torch.float64,
                                 device=self._device)
            dist.all_reduce(flags)
            stop, pause = flags.tolist()
            if stop or not pause:
                break
        clock.exclude(clock.now() - started)
        return bool(stop)

    def sync_buffers(self, model: nn.Module) -> None:
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)

    def validation(self, batches: ValidationBatches, device: torch.device) -> Validation:
        import torch.distributed as dist

        losses, predictions, correct, aux = batches.tensors(device)
        sizes = torch.tensor([losses.numel(), aux.numel()], dtype=torch.long, device=device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(self.world_size)]
        dist.all_gather(all_sizes, sizes)
        counts = [int(s[0]) for s in all_sizes]
        n, n_aux, longest = sum(counts), max(int(s[1]) for s in all_sizes), max(counts)
        if n == 0:
            return Validation.empty()
        stats = torch.zeros(3 + n_aux, dtype=torch.float64, device=device)
        stats[0], stats[1] = losses.double().sum(), correct.double()
        stats[3:3 + aux.numel()] = aux.double()
        dist.all_reduce(stats)
        gathered = [_gather_padded(t, longest, counts) for t in (losses, predictions)]
        values = stats.tolist()
        return Validation(loss=values[0] / n, accuracy=values[1] / n,
                          predictions=tuple(int(v) for v in gathered[1].tolist()),
                          losses=tuple(float(v) for v in gathered[0].tolist()),
                          aux_losses=tuple(v / n for v in values[3:]))


def _gather_padded(tensor: torch.Tensor, longest: int, counts: list[int]) -> torch.Tensor:
    """Every process's 1-D `tensor` (of `counts[rank]` values) concatenated in rank order."""
    import torch.distributed as dist

    padded = torch.zeros(longest, dtype=tensor.dtype, device=tensor.device)
    padded[:tensor.numel()] = tensor
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def from_environment() -> Distributed:
    """The process group a launcher set up in this process's environment (initialised here: gloo for CPU tensors,
    nccl for CUDA ones), or `Distributed()` for a plain single-process run."""
    import torch.distributed as dist

    if not launcher_env() or not dist.is_available():
        return Distributed()
    env = os.environ
    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    local_rank = int(env.get("LOCAL_RANK", "0"))
    local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    owned = not dist.is_initialized()
    if owned:
        if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        seconds = float(env.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=seconds))
    return ProcessGroup(rank, world, local_rank, local_world, owned)
