"""The trainer's events: frozen dataclasses of plain values that cross threads as they are (no tensors)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from workbench.runs.records import RunStatus


@dataclass(frozen=True)
class RunFacts:
    """What the trainer reports about the run it trains (FitStart); it does not need them to train."""

    arch: str = ""
    dataset: str = ""
    num_classes: int = 0
    train_size: int = 0
    val_size: int = 0
    skipped: int = 0                 # unreadable image files left out of the data set
    classes: tuple[str, ...] = ()
    arch_options: dict[str, Any] = field(default_factory=dict)   # the architecture's resolved options


@dataclass(frozen=True)
class FitStart:
    """Sent once before the first training step."""

    run_id: str
    arch: str
    dataset: str
    device: str
    epochs: int
    start_epoch: int                 # 0-based epoch the loop starts in (> 0 when resuming)
    batches_per_epoch: int
    train_size: int
    val_size: int
    num_classes: int
    amp: str                         # "off" | "bf16" | "fp16"
    channels_last: bool
    config: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0                 # unreadable / unlabeled image files left out of the data set
    classes: tuple[str, ...] = ()    # class names, one per model output the data set uses
    arch_options: dict[str, Any] = field(default_factory=dict)   # the architecture's resolved options


@dataclass(frozen=True)
class StepMetrics:
    """Running metrics of the epoch in flight, sent ~10-20 times a second (not every step)."""

    run_id: str
    epoch: int                       # 1-based
    step: int                        # global optimisation steps taken so far
    batch: int                       # batches done in this epoch
    batches: int                     # batches per epoch
    loss: float                      # mean training loss of this epoch so far
    accuracy: float                  # 0..1, this epoch so far
    lr: float
    images_per_second: float
    eta_seconds: float               # estimate for the remaining training (not validation)
    time: float                      # wall clock (time.time())


@dataclass(frozen=True)
class EpochMetrics:
    """Sent after each epoch's validation."""

    run_id: str
    epoch: int                       # 1-based
    epochs: int
    train_loss: float
    train_accuracy: float            # 0..1
    val_loss: float
    val_accuracy: float              # 0..1
    lr: float
    images_per_second: float
    epoch_seconds: float
    best_val_accuracy: float
    is_best: bool
    time: float
    # Models with auxiliary heads (GoogLeNet): train_loss = main + aux_weight * sum(aux); validation loss is
    # the main head's alone, and val_aux_losses are the heads' own losses on the validation set.
    train_main_loss: float | None = None
    train_aux_losses: tuple[float, ...] = ()
    val_aux_losses: tuple[float, ...] = ()
    aux_weight: float = 0.0


@dataclass(frozen=True)
class ValidationSamples:
    """Each validation sample's predicted class and loss at the end of an epoch (in the val loader's order)."""

    run_id: str
    epoch: int                       # 1-based
    predictions: tuple[int, ...]
    losses: tuple[float, ...]


@dataclass(frozen=True)
class FitResult:
    """How a run ended: completed, stopped, failed or diverged."""

    run_id: str
    status: RunStatus
    message: str
    epochs_completed: int
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    best_val_accuracy: float | None
    images_per_second: float | None
    device: str
    checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CLI's `--json` line)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        """The inverse of `to_dict` (e.g. a child process's `--json` line); missing optional fields are None."""
        values: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls)}
        values["status"] = RunStatus(data["status"])
        return cls(**values)
