"""Advice a teacher would give: hints when a run's results look wrong, warnings when settings look implausible.

Both return `Hint(message, field)`: one sentence saying what it usually means and what to try, and the TrainConfig
field it is about (the app focuses that field when the hint is clicked). Qt-free and torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.training.events import EpochMetrics

# Learning rates outside these ranges are unusual for the optimizer (warned about, never refused).
LR_RANGE: dict[str, tuple[float, float]] = {"sgd": (1e-6, 1.0), "adam": (1e-6, 0.1), "adamw": (1e-6, 0.1)}
MAX_PLAUSIBLE_EPOCHS = 1000
MAX_PLAUSIBLE_WEIGHT_DECAY = 0.1
DIVERGENCE_RATIO = 1.5      # the training loss grew to this multiple of its best epoch
OVERFIT_RATIO = 2.0         # validation loss this many times the training loss ...
OVERFIT_GAP = 0.3           # ... and at least this far above it (nats)
TINY_LR_FACTOR = 100        # a rate below this multiple of the optimizer's usual minimum is "too small"


@dataclass(frozen=True)
class Hint:
    """One sentence of advice and the TrainConfig field it is about (None: no single field)."""

    message: str
    field: str | None = None


def chance_accuracy(num_classes: int) -> float:
    """Accuracy of guessing: 1 / classes."""
    return 1.0 / max(1, num_classes)


def at_chance(accuracy: float, num_classes: int) -> bool:
    """Accuracy no better than guessing, give or take a quarter of p(1-p) and a point of noise."""
    p = chance_accuracy(num_classes)
    return accuracy <= p + 0.25 * p * (1 - p) + 0.01


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def hints(epochs: Sequence[EpochMetrics], num_classes: int, config: Mapping[str, Any],
          arch_options: Mapping[str, Any] | None = None) -> list[Hint]:
    """What the finished epochs of a run suggest (most important first; empty when nothing looks wrong):
    a diverging training loss, chance-level validation accuracy after an epoch or more, or a validation loss far
    above the training loss. `arch_options` (the architecture's resolved options) lets the advice name an option."""
    if not epochs:
        return []
    last = epochs[-1]
    lr, optimizer = config.get("lr"), str(config.get("optimizer", "sgd"))
    lr_text = f" ({lr:g})" if isinstance(lr, (int, float)) else ""
    train_main = last.train_main_loss if last.train_main_loss is not None else last.train_loss
    best = min((e.train_loss for e in epochs[:-1] if _finite(e.train_loss)), default=None)
    if not _finite(last.train_loss, last.val_loss):
        return [Hint(f"The loss became infinite or NaN in epoch {last.epoch}: the learning rate{lr_text} is far "
                     f"too high for {optimizer}; try one 10× smaller (or set a gradient clip).", "lr")]
    if best is not None and last.train_loss > DIVERGENCE_RATIO * best and last.train_loss > epochs[0].train_loss:
        return [Hint(f"The training loss is diverging (from {best:.3g} up to {last.train_loss:.3g}): the learning "
                     f"rate{lr_text} is too high for {optimizer}; try one 10× smaller.", "lr")]
    found: list[Hint] = []
    if at_chance(last.val_accuracy, num_classes):
        stuck = abs(train_main - math.log(max(2, num_classes))) < 0.1 * math.log(max(2, num_classes))
        why = ("the loss has not moved from guessing (ln " + str(num_classes) + f" ≈ {math.log(num_classes):.2f})"
               if stuck else "the network is not learning yet")
        low = LR_RANGE.get(optimizer, LR_RANGE["sgd"])[0]
        field: str | None = "lr"
        if isinstance(lr, (int, float)) and lr < TINY_LR_FACTOR * low:
            advice = (f"the learning rate{lr_text} is too small to move the weights — try Find LR or the "
                      "recommended rate")
        elif (arch_options or {}).get("activation") == "sigmoid":
            # Measured: the lecture's sigmoid LeNet stayed at chance on 32-px colour letters with every optimizer,
            # rate and schedule tried; the same network with ReLU reached 89 % in 15 epochs.
            advice = ("sigmoid units (the lecture's LeNet) learn slowly and often never leave chance on colour "
                      "images — give it another epoch, or set the architecture option activation to relu")
            field = None
        else:
            advice = (f"the learning rate{lr_text} is usually wrong for this network — try Find LR, or a 10× smaller "
                      "rate with warm-up (deep networks without batch norm often need it)")
        found.append(Hint(
            f"Validation accuracy is at chance level ({_pct(last.val_accuracy)} for {num_classes} classes) after "
            f"{last.epoch} epoch{'s' if last.epoch != 1 else ''} and {why}: {advice}.", field))
    elif (last.val_loss > OVERFIT_RATIO * train_main and last.val_loss - train_main > OVERFIT_GAP):
        if not config.get("augment", True):
            advice, field = "turn augmentation on", "augment"
        else:
            advice, field = "raise the weight decay (e.g. 5e-4 to 5e-3) or stop earlier", "weight_decay"
        found.append(Hint(
            f"Validation loss ({last.val_loss:.3g}) is far above the training loss ({train_main:.3g}): the model "
            f"memorises the training images instead of learning what generalises; {advice}.", field))
    return found


def settings_warnings(config: Mapping[str, Any], *, train_size: int | None = None) -> list[Hint]:
    """Values that are allowed but implausible (an expert may still want them): the learning rate outside the
    optimizer's usual range, a batch larger than the training split, absurdly many epochs, and a few more."""
    out: list[Hint] = []
    optimizer = str(config.get("optimizer", "sgd"))
    lr = config.get("lr")
    low, high = LR_RANGE.get(optimizer, LR_RANGE["sgd"])
    if isinstance(lr, (int, float)) and lr > 0:
        if lr > high:
            out.append(Hint(f"Learning rate {lr:g} is unusually high for {optimizer} (usual {low:g} to {high:g}): "
                            "the loss will likely diverge.", "lr"))
        elif lr < low:
            out.append(Hint(f"Learning rate {lr:g} is unusually low for {optimizer} (usual {low:g} to {high:g}): "
                            "the weights will barely move.", "lr"))
    batch = config.get("batch_size")
    if isinstance(batch, int) and train_size and batch > train_size:
        out.append(Hint(f"Batch size {batch:,} is larger than the training split ({train_size:,} images): every "
                        "epoch is a single step; pick a size well below it (e.g. 32 to 256).", "batch_size"))
    epochs = config.get("epochs")
    if isinstance(epochs, int) and epochs > MAX_PLAUSIBLE_EPOCHS:
        out.append(Hint(f"{epochs:,} epochs is far more than these networks need (tens to a few hundred); "
                        "set early stopping or fewer epochs.", "epochs"))
    warmup = config.get("warmup_epochs")
    if isinstance(warmup, (int, float)) and isinstance(epochs, int) and warmup >= epochs > 0:
        out.append(Hint(f"Warm-up ({warmup:g} epochs) lasts the whole run ({epochs} epochs): the learning rate "
                        "never reaches its peak.", "warmup_epochs"))
    step_size = config.get("step_size")
    if (config.get("schedule") == "step" and isinstance(step_size, int) and isinstance(epochs, int)
            and step_size >= epochs):
        out.append(Hint(f"The step schedule decays every {step_size} epochs but the run has {epochs}: the learning "
                        "rate never decays.", "step_size"))
    decay = config.get("weight_decay")
    if isinstance(decay, (int, float)) and decay > MAX_PLAUSIBLE_WEIGHT_DECAY:
        out.append(Hint(f"Weight decay {decay:g} is very strong (usual 0 to 5e-3): it will pull the weights to zero "
                        "faster than the data can move them.", "weight_decay"))
    momentum = config.get("momentum")
    if optimizer == "sgd" and isinstance(momentum, (int, float)) and momentum >= 0.999:
        out.append(Hint(f"Momentum {momentum:g} keeps almost every past step (usual 0.9): SGD will overshoot.",
                        "momentum"))
    return out
