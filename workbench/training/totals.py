"""The running totals of the epoch in flight (device-side sums per step, host-side totals per emission), the
validation result, and the messages a failing epoch ends with."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from workbench.training.device import is_out_of_memory

if TYPE_CHECKING:
    from workbench.training.config import TrainConfig


@dataclass
class EpochTotals:
    """What the epoch in flight has done so far; checkpointed (as `partial`) so a mid-epoch resume continues it."""

    loss_sum: float = 0.0            # sum over batches of the (total) training loss
    main_loss_sum: float = 0.0       # the main head's part (models with aux heads only)
    aux_loss_sums: list[float] = field(default_factory=list)   # one per aux head
    correct: float = 0.0
    batches: int = 0
    seen: int = 0                    # images trained on
    seconds: float = 0.0             # training time (pauses and the compile warm-up excluded)
    untimed: int = 0                 # images of the compile warm-up step (left out of img/s)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EpochTotals:
        """Read the checkpoint's `partial` dict (older checkpoints lack the loss-part keys)."""
        data = dict(data or {})
        return cls(loss_sum=float(data.get("loss_sum", 0.0)), main_loss_sum=float(data.get("main_loss_sum", 0.0)),
                   aux_loss_sums=[float(v) for v in data.get("aux_loss_sums", [])],
                   correct=float(data.get("correct", 0.0)), batches=int(data.get("batches", 0)),
                   seen=int(data.get("seen", 0)), seconds=float(data.get("seconds", 0.0)),
                   untimed=int(data.get("untimed", 0)))

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the checkpoint."""
        return asdict(self)

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.batches)

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.seen)

    @property
    def images_per_second(self) -> float:
        return (self.seen - self.untimed) / self.seconds if self.seconds > 0 else 0.0

    @property
    def main_loss(self) -> float | None:
        """Mean main-head loss, for models with aux heads (None otherwise)."""
        return self.main_loss_sum / max(1, self.batches) if self.aux_loss_sums else None

    @property
    def aux_losses(self) -> tuple[float, ...]:
        return tuple(v / max(1, self.batches) for v in self.aux_loss_sums)


class DeviceSums:
    """Per-step sums kept on the training device, so a step never waits for the device; `fold` synchronises."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.main = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.aux: torch.Tensor | None = None
        self.batches = 0
        self.seen = 0

    def add(self, loss: torch.Tensor, main_loss: torch.Tensor, aux_losses: list[torch.Tensor],
            logits: torch.Tensor, y: torch.Tensor, share: float = 1.0) -> None:
        """Add one step's detached losses and correct predictions. `share` is this process's fraction of the
        global batch (several processes): its losses count with that weight, so the sums over processes are the
        global batch's mean losses."""
        def part(t: torch.Tensor) -> torch.Tensor:
            return t.detach() * share if share != 1.0 else t.detach()

        self.loss += part(loss)
        if aux_losses:
            self.main += part(main_loss)
            stacked = torch.stack([part(a) for a in aux_losses])
            self.aux = stacked if self.aux is None else self.aux + stacked
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.batches += 1
        self.seen += int(y.shape[0])

    def fold_into(self, totals: EpochTotals) -> None:
        """Move the sums into `totals` (one device synchronisation) and start again from zero."""
        totals.loss_sum += float(self.loss.item())
        totals.correct += float(self.correct.item())
        if self.aux is not None:
            totals.main_loss_sum += float(self.main.item())
            aux = [float(v) for v in self.aux.tolist()]
            totals.aux_loss_sums = [a + b for a, b in zip(totals.aux_loss_sums or [0.0] * len(aux), aux)]
        self._add_counts(totals)

    def packed(self, extra: list[float]) -> torch.Tensor:
        """[loss, main, correct, seen, *extra, *aux] as one float64 tensor on the device (to all-reduce)."""
        head = torch.stack([self.loss.double(), self.main.double(), self.correct.double()])
        tail = torch.tensor([float(self.seen), *extra], dtype=torch.float64).to(head.device, non_blocking=True)
        parts = [head, tail] + ([self.aux.double()] if self.aux is not None else [])
        return torch.cat(parts)

    def fold_packed(self, values: list[float], extra: int, totals: EpochTotals) -> None:
        """Fold a (summed over processes) `packed()` tensor's values into `totals`; `seen` is the global count."""
        loss, main, correct, seen = values[:4]
        totals.loss_sum += loss
        totals.correct += correct
        if self.aux is not None:
            totals.main_loss_sum += main
            aux = values[4 + extra:]
            totals.aux_loss_sums = [a + b for a, b in zip(totals.aux_loss_sums or [0.0] * len(aux), aux)]
        self.seen = round(seen)
        self._add_counts(totals)

    def _add_counts(self, totals: EpochTotals) -> None:
        totals.batches += self.batches
        totals.seen += self.seen
        self.loss.zero_()
        self.correct.zero_()
        self.main.zero_()
        self.aux = None
        self.batches = self.seen = 0


class EpochClock:
    """Training time of the epoch in flight: starts when the first batch to train is in hand (loader set-up and
    replayed batches of a mid-epoch resume are not training), and leaves pauses and warm-ups out."""

    def __init__(self, carried: float = 0.0, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.carried = carried           # seconds of this epoch trained before a resume
        self.started: float | None = None
        self.last_emit = now()

    def start(self) -> None:
        """Start timing (idempotent)."""
        if self.started is None:
            self.started = self.last_emit = self.now()

    def restart(self) -> None:
        """Start timing again from now (the compile warm-up step is left out)."""
        self.started = self.last_emit = self.now()

    def exclude(self, seconds: float) -> None:
        """Leave `seconds` (a pause) out of the training time."""
        if self.started is not None:
            self.started += seconds

    def run_seconds(self) -> float:
        """Seconds trained in this process during this epoch."""
        return 0.0 if self.started is None else self.now() - self.started

    def elapsed(self) -> float:
        """Training seconds of the whole epoch so far (before a resume included)."""
        return self.carried + self.run_seconds()

    def emit_due(self, interval: float) -> bool:
        """True (and the emission clock reset) when `interval` seconds passed since the last emission."""
        now = self.now()
        if now - self.last_emit >= interval:
            self.last_emit = now
            return True
        return False


def check_finite(totals: EpochTotals, epoch: int, lr: float) -> str | None:
    """The divergence message when the running loss is no longer finite, else None."""
    if math.isfinite(totals.loss_sum):
        return None
    return (f"Training diverged in epoch {epoch}: the loss became {totals.loss_sum} (lr {lr:g}); try a smaller "
            "learning rate, gradient clipping or warm-up.")


def failure_message(exc: Exception, config: TrainConfig, device_name: str) -> str:
    """What a run that raised `exc` reports: out of memory with a smaller batch to try, or the error itself."""
    if is_out_of_memory(exc):  # CUDA's OutOfMemoryError, or MPS's RuntimeError "... out of memory ..."
        return (f"Out of memory on {device_name} at batch size {config.batch_size}; "
                f"try a smaller batch size (e.g. --batch-size {max(1, config.batch_size // 2)}).")
    message = f"Training failed: {type(exc).__name__}: {str(exc).strip()}"
    if config.compile:  # compiler bugs show up as arbitrary errors (e.g. a fake-kernel stride assertion)
        message += "\ntorch.compile was on: start a new run without it to rule out a compiler bug."
    return message


@dataclass(frozen=True)
class Validation:
    """One pass over the validation set: the main head's mean loss and accuracy, every sample's prediction and
    loss (in loader order), and the aux heads' mean losses (empty for models without aux heads)."""

    loss: float
    accuracy: float
    predictions: tuple[int, ...] = ()
    losses: tuple[float, ...] = ()
    aux_losses: tuple[float, ...] = ()

    @classmethod
    def empty(cls) -> Validation:
        return cls(float("nan"), float("nan"))


class ValidationBatches:
    """Per-batch validation outputs kept on the device until the pass ends (one synchronisation)."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.predictions: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []
        self.aux: list[torch.Tensor] = []

    def add(self, losses: torch.Tensor, predictions: torch.Tensor, labels: torch.Tensor,
            aux_losses: list[torch.Tensor]) -> None:
        """One batch: per-sample losses and predictions of the main head, per-sample losses of each aux head."""
        self.losses.append(losses)
        self.predictions.append(predictions)
        self.correct.append((predictions == labels).sum())
        if aux_losses:
            self.aux.append(torch.stack([a.sum() for a in aux_losses]))

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(per-sample losses, predictions, correct count, aux-loss sums) of this process, on `device`."""
        if not self.losses:
            empty = torch.zeros(0, device=device)
            return empty, empty.long(), torch.zeros((), device=device, dtype=torch.long), empty
        aux = torch.stack(self.aux).sum(0) if self.aux else torch.zeros(0, device=device)
        return (torch.cat(self.losses).float(), torch.cat(self.predictions), torch.stack(self.correct).sum(), aux)

    def result(self) -> Validation:
        if not self.losses:
            return Validation.empty()
        losses = torch.cat(self.losses)
        n = losses.numel()
        aux = tuple(float(v) / n for v in torch.stack(self.aux).sum(0).tolist()) if self.aux else ()
        return Validation(loss=float(losses.sum().item()) / n, accuracy=float(torch.stack(self.correct).sum()) / n,
                          predictions=tuple(int(v) for v in torch.cat(self.predictions).tolist()),
                          losses=tuple(float(v) for v in losses.float().tolist()), aux_losses=aux)
