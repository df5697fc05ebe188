"""The training loop: the lecture's do_train / do_validation semantics, made fast, stoppable and resumable."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from workbench.errors import CheckpointError, DataUnavailableError, WorkbenchError, WorkspaceError
from workbench.models import split_outputs
from workbench.models.dryrun import set_summary_mode
from workbench.runs.records import RunStatus
from workbench.training.callbacks import Callback, CallbackError, CallbackList
from workbench.training.config import TrainConfig
from workbench.training.control import TrainControl
from workbench.training.device import Precision
from workbench.training.distributed import Distributed
from workbench.training.events import (
    EpochMetrics,
    FitResult,
    FitStart,
    RunFacts,
    StepMetrics,
    ValidationSamples,
)
from workbench.training.optim import build_optimizer, build_scheduler
from workbench.training.totals import (
    DeviceSums,
    EpochClock,
    EpochTotals,
    Validation,
    ValidationBatches,
    check_finite,
    failure_message,
)

# Seconds between step-metric events (and device synchronisations): ~16 Hz.
STEP_EMIT_INTERVAL = 0.06

CheckpointFn = Callable[[str, dict[str, Any]], str | None]   # (kind "last"|"best", state) -> path


class Diverged(Exception):
    """The training loss stopped being finite."""


class _ValidationStopped(Exception):
    """A stop request arrived while validating (the epoch's training part is complete)."""


class Trainer:
    """Trains `model` on batches from `train_loader`, validates on `val_loader`, reports to callbacks.

    Loaders are any re-iterable of (x, y) tensor pairs with a len(). `generator` is the CPU generator that
    drives the training loader's shuffling and augmentation; its state at each epoch start is checkpointed
    so a run stopped mid-epoch resumes at exactly the same batch. `dist` is this process's part of a multi-process
    run (sharded loaders, DistributedDataParallel, sums and stops agreed through collectives); the default is one
    process.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, *, device: torch.device, precision: Precision,
                 train_loader: Iterable, val_loader: Iterable | None, callbacks: Sequence[Callback] = (),
                 control: TrainControl | None = None, run_id: str = "", generator: torch.Generator | None = None,
                 checkpoint_fn: CheckpointFn | None = None, facts: RunFacts | None = None,
                 device_name: str | None = None, dist: Distributed | None = None) -> None:
        self.dist = dist or Distributed()
        model = self.dist.prepare(model, config)
        self.model = model
        self.config = config
        self.device = device
        self.precision = precision
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.callbacks = CallbackList(callbacks)
        self.control = control or TrainControl()
        self.run_id = run_id
        self.generator = generator
        self.checkpoint_fn = checkpoint_fn
        self.facts = facts or RunFacts()
        self.device_name = device_name or str(device)
        if precision.channels_last:
            model.to(memory_format=torch.channels_last)
        wrapped = self.dist.wrap(model, device)
        self.net: nn.Module = torch.compile(wrapped) if config.compile else wrapped  # type: ignore[assignment]
        # Validation runs the plain model: each process validates its own shard (no collectives inside).
        self.eval_net: nn.Module = self.net if wrapped is model else (
            torch.compile(model) if config.compile else model)  # type: ignore[assignment]
        self.batches_per_epoch = len(train_loader)  # type: ignore[arg-type]
        if config.max_batches:
            self.batches_per_epoch = min(self.batches_per_epoch, config.max_batches)
        if self.batches_per_epoch < 1:
            raise ValueError("the training loader yields no batches")
        self.optimizer = build_optimizer(model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.batches_per_epoch)
        self._step_scheduler = not (config.schedule == "constant" and config.warmup_epochs == 0)
        self.scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.val_criterion = nn.CrossEntropyLoss(reduction="none")
        # Position and history (all restored by load_state_dict).
        self.epoch = 0                 # completed epochs
        self.batch = 0                 # batches done in the epoch in flight (> 0 only after a mid-epoch stop)
        self.step = 0                  # optimisation steps in total
        self.best_val_accuracy: float | None = None
        self.epochs_without_improvement = 0
        self.train_seconds = 0.0       # training-loop time over all epochs (excludes validation)
        self.train_images = 0
        self.last: dict[str, float] = {}
        self.totals = EpochTotals()    # the epoch in flight
        self._warm = False             # True after this process's first step (torch.compile warm-up)
        self._has_aux = False          # the model returned auxiliary outputs in training
        self._epoch_gen_state: torch.Tensor | None = None
        self.last_checkpoint: str | None = None

    # --- checkpoint state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the loop is now (tensors, numbers, dicts only)."""
        gen_state = self._epoch_gen_state if self.batch else (
            self.generator.get_state() if self.generator is not None else None)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "best_val_accuracy": self.best_val_accuracy,
            "epochs_without_improvement": self.epochs_without_improvement,
            "train_seconds": self.train_seconds, "train_images": self.train_images,
            "last": dict(self.last), "partial": self.totals.to_dict(),
            "data_generator": gen_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()`; the data generator is set to the epoch-start state it recorded."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.best_val_accuracy = state.get("best_val_accuracy")
        self.epochs_without_improvement = int(state.get("epochs_without_improvement", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.train_images = int(state.get("train_images", 0))
        self.last = dict(state.get("last") or {})
        self.totals = EpochTotals.from_dict(state.get("partial"))
        if self.generator is not None and state.get("data_generator") is not None:
            self.generator.set_state(state["data_generator"])

    def save_checkpoint(self, kind: str) -> str | None:
        """Write the `last` or `best` checkpoint through `checkpoint_fn`; returns its path (None without one)."""
        if not self.checkpoint_fn:
            return None
        path = self.checkpoint_fn(kind, self.state_dict())
        if kind == "last":
            self.last_checkpoint = path
        return path

    # --- the loop ----------------------------------------------------------------------------------------

    def fit(self, save_first: bool = False) -> FitResult:
        """Train to `config.epochs` (or stop / early stop / divergence) and return how it ended. `save_first`
        writes the `last` checkpoint before the first step (a new run, so even its first epoch can be resumed).

        A failing callback stops the run with a checkpoint (resumable); a checkpoint that cannot be written (a
        full disk) fails it with that sentence, the previous checkpoint intact."""
        cfg = self.config
        status, message, checkpoint = RunStatus.COMPLETED, "", None
        try:
            if save_first:
                self.save_checkpoint("last")
            self.callbacks.on_fit_start(self._fit_start())
            while self.epoch < cfg.epochs and not self.control.stopped:
                if not self._train_epoch():
                    break
                stop_early = self._end_epoch()
                if stop_early is None:  # stopped during validation: resume re-runs it
                    break
                if stop_early:
                    message = f"Early stopping: no better validation accuracy for {cfg.early_stopping} epoch(s)."
                    break
            if self.control.stopped and self.epoch < cfg.epochs:
                status, message = RunStatus.STOPPED, self._stop_message()
                checkpoint = self.save_checkpoint("last")
            elif not message:
                message = f"Completed {self.epoch} epoch(s)."
        except Diverged as exc:
            status, message = RunStatus.DIVERGED, str(exc)
        except CallbackError as exc:  # the caller's code failed, not the run: keep it resumable
            status, message, checkpoint = self._after_callback_error(exc)
            self.callbacks.on_exception(message, traceback.format_exc())
        except (CheckpointError, WorkspaceError, DataUnavailableError) as exc:  # the disk, workspace or data failed
            status, message = RunStatus.FAILED, f"{exc} (run {self.run_id})"
            self.callbacks.on_exception(message, traceback.format_exc())
        except Exception as exc:  # a failed run is reported, not raised (the GUI thread must not die)
            status, message = RunStatus.FAILED, failure_message(exc, self.config, self.device_name)
            self.callbacks.on_exception(message, traceback.format_exc())
        result = self._result(status, message, checkpoint or self.last_checkpoint)
        self.callbacks.on_fit_end(result)
        return result

    def _after_callback_error(self, exc: CallbackError) -> tuple[RunStatus, str, str | None]:
        """Checkpoint after a failing callback (resumable). The engine's own store writer failing (a full or
        locked workspace) fails the run, with the checkpoint kept when it could still be written."""
        try:
            checkpoint = self.save_checkpoint("last")
        except WorkbenchError as save_error:
            return RunStatus.FAILED, f"{save_error} (run {self.run_id})", None
        if isinstance(exc.error, (WorkspaceError, CheckpointError)):
            return RunStatus.FAILED, f"{exc.error} (run {self.run_id}; resume it once that is fixed)", checkpoint
        return RunStatus.STOPPED, f"Stopped because a callback failed ({exc}); fix it and resume the run.", checkpoint

    def _fit_start(self) -> FitStart:
        f = self.facts
        return FitStart(
            run_id=self.run_id, arch=f.arch, dataset=f.dataset, device=self.device_name, epochs=self.config.epochs,
            start_epoch=self.epoch, batches_per_epoch=self.batches_per_epoch, train_size=f.train_size,
            val_size=f.val_size, num_classes=f.num_classes, amp=self.precision.amp,
            channels_last=self.precision.channels_last, config=self.config.to_dict(), skipped=f.skipped,
            classes=f.classes, arch_options=dict(f.arch_options))

    def _stop_message(self) -> str:
        where = "during validation" if self.batch >= self.batches_per_epoch else f"after {self.batch} batch(es)"
        return f"Stopped by request in epoch {self.epoch + 1} {where}."

    def _result(self, status: RunStatus, message: str, checkpoint: str | None) -> FitResult:
        last = self.last
        ips = self.train_images / self.train_seconds if self.train_seconds > 0 else None
        return FitResult(
            run_id=self.run_id, status=status, message=message, epochs_completed=self.epoch,
            train_loss=last.get("train_loss"), train_accuracy=last.get("train_accuracy"),
            val_loss=last.get("val_loss"), val_accuracy=last.get("val_accuracy"),
            best_val_accuracy=self.best_val_accuracy, images_per_second=ips, device=self.device_name,
            checkpoint=checkpoint)

    # --- one epoch ---------------------------------------------------------------------------------------

    def _train_epoch(self) -> bool:
        """Run (the rest of) one epoch's training steps; False when a stop request ended it early."""
        self.net.train()
        if self.generator is not None:
            self._epoch_gen_state = self.generator.get_state()
        skip = self.batch
        if not skip:
            self.totals = EpochTotals()
        totals, sums = self.totals, DeviceSums(self.device)
        clock = EpochClock(totals.seconds, now=time.perf_counter)
        seen0, untimed0 = totals.seen, totals.untimed
        for i, (x, y) in enumerate(self.train_loader):
            if i >= self.batches_per_epoch:
                break
            if i < skip:  # resuming mid-epoch: replay the data stream (same RNG draws) without training
                continue
            clock.start()
            # A stop (also one while paused) leaves this batch untrained: it is replayed on resume.
            if not self._wait_while_paused(clock):
                break
            self._optimizer_step(*self._to_device(x, y), sums, self.dist.batch_share(self.train_loader, i))
            self.batch = i + 1
            if not self._warm:
                self._warm_up_done(clock, sums, int(y.shape[0]) * self.dist.world_size)
            if self.dist.sync_due(clock, self.control, STEP_EMIT_INTERVAL):
                self._fold(sums, clock)
                if self.control.stopped:
                    break
                self._emit_step()
        self._fold(sums, clock)
        self.train_seconds += clock.run_seconds()
        self.train_images += totals.seen - seen0 - (totals.untimed - untimed0)
        if not self.control.stopped and totals.batches == 0:  # every image of the epoch failed to decode
            raise DataUnavailableError(f"No training image of epoch {self.epoch + 1} could be read; check that the "
                                       "data's files are still there and readable.")
        return not self.control.stopped

    def _wait_while_paused(self, clock: EpochClock | None = None) -> bool:
        """Block while paused (the pause is not training time); False when a stop arrived (before or meanwhile)."""
        control = self.control
        if control.paused:
            paused_at = time.perf_counter()
            while not control.wait_while_paused(0.5):
                pass
            if clock is not None:
                clock.exclude(time.perf_counter() - paused_at)
        return not control.stopped

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.device != self.device:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.precision.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(total loss, main loss, aux losses, main logits); total = main + aux_weight * sum(aux)."""
        with self.precision.autocast(self.device):
            main, aux = split_outputs(self.net(x))
            main_loss = self.criterion(main, y)
            aux_losses = [self.criterion(a, y) for a in aux]
            loss = main_loss
            for a in aux_losses:
                loss = loss + self.config.aux_weight * a
        self._has_aux = self._has_aux or bool(aux_losses)
        return loss, main_loss, aux_losses, main

    def _optimizer_step(self, x: torch.Tensor, y: torch.Tensor, sums: DeviceSums, share: float = 1.0) -> None:
        """Forward, backward (scaled under fp16), optional clipping, optimizer and scheduler step. `share` is this
        process's fraction of the global batch: DDP averages the processes' gradients, so weighting each loss by
        share * world size makes that average the gradient of the global batch's mean loss."""
        cfg, opt, scaler = self.config, self.optimizer, self.scaler
        loss, main_loss, aux_losses, logits = self._forward_loss(x, y)
        weight = share * self.dist.world_size
        grad_loss = loss * weight if weight != 1.0 else loss
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(grad_loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            grad_loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            opt.step()
        if self._step_scheduler:
            self.scheduler.step()
        self.step += 1
        sums.add(loss, main_loss, aux_losses, logits, y, share)

    def _warm_up_done(self, clock: EpochClock, sums: DeviceSums, images: int) -> None:
        """After this process's first step: leave torch.compile's one-off warm-up out of img/s."""
        self._warm = True
        if self.config.compile and self.batches_per_epoch - self.batch + 1 > 1:
            sums.loss.sum().item()  # synchronise so the warm-up is really over
            clock.restart()
            self.totals.untimed += images

    def _fold(self, sums: DeviceSums, clock: EpochClock) -> None:
        """Synchronise the device sums into the epoch's totals (over all processes, agreeing on stop and pause);
        raise Diverged if the loss is not finite."""
        self.dist.fold(sums, self.totals, clock)
        self.totals.seconds = clock.elapsed()
        problem = check_finite(self.totals, self.epoch + 1, self.config.lr)
        if problem:
            raise Diverged(problem)

    def _emit_step(self) -> None:
        t, bpe = self.totals, self.batches_per_epoch
        seconds = max(t.seconds, 1e-9)
        remaining = self.config.epochs * bpe - (self.epoch * bpe + self.batch)
        self.callbacks.on_train_batch_end(StepMetrics(
            run_id=self.run_id, epoch=self.epoch + 1, step=self.step, batch=self.batch, batches=bpe,
            loss=t.mean_loss, accuracy=t.accuracy, lr=float(self.optimizer.param_groups[0]["lr"]),
            images_per_second=(t.seen - t.untimed) / seconds,
            eta_seconds=remaining * seconds / max(1, t.batches), time=time.time()))

    # --- validation ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def validate(self) -> Validation:
        """Loss and accuracy of the main output over the validation set, each sample's prediction and loss, and
        the aux heads' losses. Models with aux heads run with containers in train mode and every layer in eval
        mode, so the heads run while batch norm and dropout behave as in evaluation.

        Honours pause and stop between batches; a stop raises _ValidationStopped (handled by the loop).
        """
        if self.val_loader is None:
            return Validation.empty()
        self.dist.sync_buffers(self.model)  # every process validates the model rank 0 checkpoints
        if self._has_aux:
            set_summary_mode(self.eval_net)
        else:
            self.eval_net.eval()
        batches = ValidationBatches()
        for x, y in self.val_loader:
            if not self._wait_while_paused():
                raise _ValidationStopped
            x, y = self._to_device(x, y)
            with self.precision.autocast(self.device):
                main, aux = split_outputs(self.eval_net(x))
            batches.add(self.val_criterion(main.float(), y), main.argmax(1), y,
                        [self.val_criterion(a.float(), y) for a in aux])
        return self.dist.validation(batches, self.device)

    def _end_epoch(self) -> bool | None:
        """Validate, record, checkpoint and notify; True when early stopping triggers, None when a stop
        request interrupted validation (the position stays at the end of the epoch's training part)."""
        cfg, t = self.config, self.totals
        started = time.perf_counter()
        try:
            val = self.validate()
        except _ValidationStopped:
            return None
        self.epoch += 1
        self.batch = 0
        is_best = not math.isnan(val.accuracy) and (self.best_val_accuracy is None
                                                    or val.accuracy > self.best_val_accuracy)
        if is_best:
            self.best_val_accuracy = val.accuracy
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.last = {"train_loss": t.mean_loss, "train_accuracy": t.accuracy, "val_loss": val.loss,
                     "val_accuracy": val.accuracy, "lr": lr, "images_per_second": t.images_per_second}
        self.save_checkpoint("last")
        if is_best:
            self.save_checkpoint("best")
        if val.predictions:
            self.callbacks.on_validation_samples(ValidationSamples(
                run_id=self.run_id, epoch=self.epoch, predictions=val.predictions, losses=val.losses))
        self.callbacks.on_epoch_end(EpochMetrics(
            run_id=self.run_id, epoch=self.epoch, epochs=cfg.epochs, train_loss=t.mean_loss,
            train_accuracy=t.accuracy, val_loss=val.loss, val_accuracy=val.accuracy, lr=lr,
            images_per_second=t.images_per_second, epoch_seconds=t.seconds + time.perf_counter() - started,
            best_val_accuracy=self.best_val_accuracy if self.best_val_accuracy is not None else float("nan"),
            is_best=is_best, time=time.time(), train_main_loss=t.main_loss, train_aux_losses=t.aux_losses,
            val_aux_losses=val.aux_losses, aux_weight=cfg.aux_weight if t.aux_loss_sums else 0.0))
        return bool(cfg.early_stopping and self.epochs_without_improvement >= cfg.early_stopping)
