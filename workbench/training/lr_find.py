"""The learning-rate finder: a range test (Smith 2017; the fastai "LR finder") on a job's own model and data.

The learning rate grows exponentially from `start_lr` to `end_lr` over `steps` optimisation steps, one batch
each; the loss is smoothed with a bias-corrected exponential moving average, and the test stops early once the
smoothed loss exceeds `diverge` times its minimum (or stops being finite). The model, the optimizer and every
random-number generator the test draws from are restored afterwards, bit for bit; no run record is created.

The suggestion is one tenth of the rate at the smoothed minimum. At the minimum the rate is already about as
large as training tolerates (the next rates make the loss rise); a decade below it the loss still falls quickly
and safely. The steepest-descent point, the other common rule, is the argmax of a derivative of a noisy
mini-batch curve and jumps by decades between repeated tests; the minimum is a far more stable point to read.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from workbench.errors import InvalidOptionError

if TYPE_CHECKING:
    from workbench.training.config import TrainConfig, TrainJob
    from workbench.training.control import TrainControl
    from workbench.training.device import Precision
    from workbench.training.job import ProgressFn

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
PointFn = Callable[[float, float], None]   # (learning rate, smoothed loss) after each step
SUGGESTION_FACTOR = 0.1                     # suggested rate = SUGGESTION_FACTOR x the rate at the smoothed minimum

__all__ = ["SUGGESTION_FACTOR", "LrFinding", "classification_loss", "find_lr", "lr_range_test", "suggest_lr"]


@dataclass(frozen=True)
class LrFinding:
    """The range test's curve (one point per step) and the suggested learning rate (None: the loss never fell)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]         # smoothed (bias-corrected exponential moving average)
    raw_losses: tuple[float, ...]     # each step's mini-batch loss
    suggested_lr: float | None
    stopped_early: bool               # the smoothed loss passed `diverge` x its minimum, or was not finite
    cancelled: bool = False           # a stop request ended the test before its last step
    min_loss_lr: float | None = None  # the rate at the smoothed minimum

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for the curves)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def find_lr(job: TrainJob, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200,
            smoothing: float = 0.98, diverge: float = 4.0, progress: ProgressFn | None = None,
            control: TrainControl | None = None, on_point: PointFn | None = None) -> LrFinding:
    """Run the range test on the job's model (built with its seed), optimizer and training data.

    Nothing is stored and nothing global changes: the global RNGs (seeded while the model is built) are put back
    as they were. Bad input raises WorkbenchError, as `run_training` does before it creates a run.
    """
    from workbench.training import checkpoint as ckpt
    from workbench.training.device import determinism
    from workbench.training.job import build_run_model, make_loaders, plan_job
    from workbench.training.optim import build_optimizer

    if job.resume_run_id:
        raise InvalidOptionError("The learning-rate finder starts from a new model; leave out --resume.")
    _check_ramp(start_lr, end_lr, steps, smoothing, diverge)
    saved_rng = ckpt.pack_rng_state()
    try:
        plan, splits = plan_job(job, None, progress, control)
        with determinism(plan.config, plan.device):
            model = build_run_model(plan, progress)
            if plan.precision.channels_last:
                model.to(memory_format=torch.channels_last)
            train_loader, _ = make_loaders(plan, splits, torch.Generator().manual_seed(plan.config.seed))
            optimizer = build_optimizer(model, plan.config)
            return lr_range_test(model, optimizer, train_loader, loss_fn=classification_loss(plan.config),
                                 device=plan.device, precision=plan.precision, grad_clip=plan.config.grad_clip,
                                 start_lr=start_lr, end_lr=end_lr, steps=steps, smoothing=smoothing,
                                 diverge=diverge, progress=progress, control=control, on_point=on_point)
    finally:
        ckpt.unpack_rng_state(saved_rng)


def classification_loss(config: TrainConfig) -> LossFn:
    """The training loss `run_training` minimises: cross-entropy (with the configured label smoothing) of the main
    output plus `aux_weight` x each auxiliary head's (GoogLeNet)."""
    from workbench.models import split_outputs

    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        main, aux = split_outputs(model(x))
        total = criterion(main, y)
        for head in aux:
            total = total + config.aux_weight * criterion(head, y)
        return total

    return loss


def lr_range_test(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Any], *,
                  loss_fn: LossFn, device: torch.device | None = None, precision: Precision | None = None,
                  grad_clip: float | None = None, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200,
                  smoothing: float = 0.98, diverge: float = 4.0, progress: ProgressFn | None = None,
                  control: TrainControl | None = None, on_point: PointFn | None = None) -> LrFinding:
    """The range test on any model and optimizer: `batches` (re-iterable (x, y) pairs) are cycled through, the
    learning rate of every parameter group is set per step. The model's state (parameters, buffers, gradients,
    train/eval modes) and the optimizer's state are restored bit for bit afterwards, however the test ends.
    The global RNGs are not touched here except by the model itself (dropout): `find_lr` restores those."""
    _check_ramp(start_lr, end_lr, steps, smoothing, diverge)
    snapshot = _Snapshot(model, optimizer)
    scaler = torch.amp.GradScaler(device.type) if device is not None and precision and precision.needs_scaler \
        else None
    lrs: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    stopped_early = cancelled = False
    try:
        model.train()
        ratio = (end_lr / start_lr) ** (1.0 / max(1, steps - 1))
        average, best = 0.0, math.inf
        stream = _cycle(batches)
        for i in range(steps):
            if control is not None:
                control.wait_while_paused()   # returns at once unless paused; a stop also releases it
                if control.stopped:
                    cancelled = True
                    break
            lr = start_lr * ratio ** i
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(stream)
            if device is not None and x.device != device:
                x, y = x.to(device), y.to(device)
            value = _step(model, optimizer, loss_fn, x, y, device, precision, scaler, grad_clip)
            if not math.isfinite(value):
                stopped_early = True
                break
            average = smoothing * average + (1.0 - smoothing) * value
            smooth = average / (1.0 - smoothing ** (i + 1))
            lrs.append(lr)
            raw.append(value)
            smoothed.append(smooth)
            best = min(best, smooth)
            if on_point is not None:
                on_point(lr, smooth)
            if progress is not None:
                progress("Finding the learning rate", (i + 1) / steps)
            if smooth > diverge * best:
                stopped_early = True
                break
    finally:
        snapshot.restore()
    at_min = lrs[min(range(len(smoothed)), key=smoothed.__getitem__)] if smoothed else None
    return LrFinding(lrs=tuple(lrs), losses=tuple(smoothed), raw_losses=tuple(raw),
                     suggested_lr=suggest_lr(lrs, smoothed), stopped_early=stopped_early, cancelled=cancelled,
                     min_loss_lr=at_min)


def suggest_lr(lrs: list[float] | tuple[float, ...], losses: list[float] | tuple[float, ...]) -> float | None:
    """One tenth of the rate at the smoothed loss's minimum (not below the first rate); None when the curve has
    fewer than three points or its minimum is its first point (the loss never fell)."""
    if len(losses) < 3:
        return None
    best = min(range(len(losses)), key=losses.__getitem__)
    if best == 0:
        return None
    return max(lrs[best] * SUGGESTION_FACTOR, lrs[0])


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
          device: torch.device | None, precision: Precision | None, scaler: torch.amp.GradScaler | None,
          grad_clip: float | None) -> float:
    """One optimisation step; returns the batch's loss before it."""
    if precision is not None and device is not None:
        if precision.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with precision.autocast(device):
            loss = loss_fn(model, x, y)
    else:
        loss = loss_fn(model, x, y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return float(loss.detach().float())


def _cycle(batches: Iterable[Any]) -> Iterator[Any]:
    """The batches over and over (each pass re-iterates, so a shuffling loader reshuffles)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise InvalidOptionError("The training data yields no batches; the learning-rate finder needs some.")


class _Snapshot:
    """A model's and optimizer's state, copied, to put back bit for bit."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.optim_state = copy.deepcopy(optimizer.state_dict())
        self.grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
        self.modes = [m.training for m in model.modules()]

    def restore(self) -> None:
        self.model.load_state_dict(self.state)
        self.optimizer.load_state_dict(self.optim_state)
        for p, grad in zip(self.model.parameters(), self.grads, strict=True):
            p.grad = grad
        for m, mode in zip(self.model.modules(), self.modes, strict=True):
            m.training = mode


def _check_ramp(start_lr: float, end_lr: float, steps: int, smoothing: float, diverge: float) -> None:
    if not (math.isfinite(start_lr) and math.isfinite(end_lr) and 0 < start_lr < end_lr):
        raise InvalidOptionError(f"The learning-rate ramp needs 0 < start < end, got {start_lr:g} to {end_lr:g}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise InvalidOptionError(f"The learning-rate finder needs at least 2 steps, got {steps!r}.")
    if not 0.0 <= smoothing < 1.0:
        raise InvalidOptionError(f"smoothing must be in [0, 1), got {smoothing:g}.")
    if not diverge > 1.0:
        raise InvalidOptionError(f"diverge must be above 1 (a multiple of the minimum loss), got {diverge:g}.")
