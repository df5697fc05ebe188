"""The training loop: the lecture's do_train / do_validation semantics, made fast, stoppable and resumable."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from workbench.models import split_outputs
from workbench.training.callbacks import Callback, CallbackList
from workbench.training.config import TrainConfig
from workbench.training.control import TrainControl
from workbench.training.device import Precision, is_out_of_memory
from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics
from workbench.training.optim import build_optimizer, build_scheduler

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
    so a run stopped mid-epoch resumes at exactly the same batch.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, *, device: torch.device, precision: Precision,
                 train_loader: Iterable, val_loader: Iterable | None, callbacks: Sequence[Callback] = (),
                 control: TrainControl | None = None, run_id: str = "", generator: torch.Generator | None = None,
                 checkpoint_fn: CheckpointFn | None = None, fit_info: dict[str, Any] | None = None,
                 device_name: str | None = None) -> None:
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
        self.fit_info = dict(fit_info or {})
        self.device_name = device_name or str(device)
        if precision.channels_last:
            model.to(memory_format=torch.channels_last)
        self.net: nn.Module = torch.compile(model) if config.compile else model  # type: ignore[assignment]
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
        self.val_criterion = nn.CrossEntropyLoss(reduction="sum")
        # Position and history (all restored by load_state_dict).
        self.epoch = 0                 # completed epochs
        self.batch = 0                 # batches done in the epoch in flight (> 0 only after a mid-epoch stop)
        self.step = 0                  # optimisation steps in total
        self.best_val_accuracy: float | None = None
        self.epochs_without_improvement = 0
        self.train_seconds = 0.0       # training-loop time over all epochs (excludes validation)
        self.train_images = 0
        self.last: dict[str, float] = {}
        self._partial = {"loss_sum": 0.0, "correct": 0.0, "batches": 0, "seen": 0, "seconds": 0.0, "untimed": 0}
        self._warm = False             # True after this process's first step (torch.compile warm-up)
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
            "last": dict(self.last), "partial": dict(self._partial),
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
        self._partial = dict(state.get("partial") or self._partial)
        if self.generator is not None and state.get("data_generator") is not None:
            self.generator.set_state(state["data_generator"])

    def _save(self, kind: str) -> str | None:
        if not self.checkpoint_fn:
            return None
        path = self.checkpoint_fn(kind, self.state_dict())
        if kind == "last":
            self.last_checkpoint = path
        return path

    # --- the loop ----------------------------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train to `config.epochs` (or stop / early stop / divergence) and return how it ended."""
        cfg = self.config
        self.callbacks.on_fit_start(FitStart(
            run_id=self.run_id, arch=str(self.fit_info.get("arch", "")),
            dataset=str(self.fit_info.get("dataset", "")), device=self.device_name, epochs=cfg.epochs,
            start_epoch=self.epoch, batches_per_epoch=self.batches_per_epoch,
            train_size=int(self.fit_info.get("train_size", 0)), val_size=int(self.fit_info.get("val_size", 0)),
            num_classes=int(self.fit_info.get("num_classes", 0)), amp=self.precision.amp,
            channels_last=self.precision.channels_last, config=cfg.to_dict(),
            skipped=int(self.fit_info.get("skipped", 0))))
        status, message, checkpoint = "completed", "", None
        try:
            while self.epoch < cfg.epochs:
                if self.control.stopped:
                    break
                if not self._train_epoch():
                    break
                stop_early = self._end_epoch()
                if stop_early is None:  # stopped during validation: resume re-runs it
                    break
                if stop_early:
                    message = (f"Early stopping: no better validation accuracy for "
                               f"{cfg.early_stopping} epoch(s).")
                    break
            if self.control.stopped and self.epoch < cfg.epochs:
                status = "stopped"
                where = ("during validation" if self.batch >= self.batches_per_epoch
                         else f"after {self.batch} batch(es)")
                message = f"Stopped by request in epoch {self.epoch + 1} {where}."
                checkpoint = self._save("last")
            elif not message:
                message = f"Completed {self.epoch} epoch(s)."
        except Diverged as exc:
            status, message = "diverged", str(exc)
        except Exception as exc:  # a failed run is reported, not raised (the GUI thread must not die)
            status, message = "failed", self._failure_message(exc)
            self.callbacks.on_exception(message, traceback.format_exc())
        result = self._result(status, message, checkpoint or self.last_checkpoint)
        self.callbacks.on_fit_end(result)
        return result

    def _failure_message(self, exc: Exception) -> str:
        cfg = self.config
        if is_out_of_memory(exc):  # CUDA's OutOfMemoryError, or MPS's RuntimeError "... out of memory ..."
            return (f"Out of memory on {self.device_name} at batch size {cfg.batch_size}; "
                    f"try a smaller batch size (e.g. --batch-size {max(1, cfg.batch_size // 2)}).")
        message = f"Training failed: {type(exc).__name__}: {str(exc).strip()}"
        if cfg.compile:  # compiler bugs show up as arbitrary errors (e.g. a fake-kernel stride assertion)
            message += "\ntorch.compile was on: start a new run without it to rule out a compiler bug."
        return message

    def _result(self, status: str, message: str, checkpoint: str | None) -> FitResult:
        last = self.last
        ips = self.train_images / self.train_seconds if self.train_seconds > 0 else None
        return FitResult(
            run_id=self.run_id, status=status, message=message, epochs_completed=self.epoch,
            train_loss=last.get("train_loss"), train_accuracy=last.get("train_accuracy"),
            val_loss=last.get("val_loss"), val_accuracy=last.get("val_accuracy"),
            best_val_accuracy=self.best_val_accuracy, images_per_second=ips, device=self.device_name,
            checkpoint=checkpoint)

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.precision.autocast(self.device):
            main, aux = split_outputs(self.net(x))
            loss = self.criterion(main, y)
            for a in aux:  # GoogLeNet: main + aux_weight * (aux1 + aux2), training only
                loss = loss + self.config.aux_weight * self.criterion(a, y)
        return loss, main

    def _train_epoch(self) -> bool:
        """Run (the rest of) one epoch's training steps; False when a stop request ended it early."""
        cfg, control, dev = self.config, self.control, self.device
        net, opt, scaler = self.net, self.optimizer, self.scaler
        net.train()
        if self.generator is not None:
            self._epoch_gen_state = self.generator.get_state()
        skip, p = self.batch, self._partial
        if not skip:
            p.update(loss_sum=0.0, correct=0.0, batches=0, seen=0, seconds=0.0, untimed=0)
        p.setdefault("untimed", 0)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        batches, seen = p["batches"], p["seen"]
        seen0 = seen
        bpe = self.batches_per_epoch
        cl = self.precision.channels_last
        # The clock starts once the first batch to train is in hand: loader set-up (building the device
        # store) and replayed batches of a mid-epoch resume are not training time.
        clock: float | None = None
        elapsed, last_emit = p["seconds"], time.perf_counter()
        untimed0 = p["untimed"]
        for i, (x, y) in enumerate(self.train_loader):
            if i >= bpe:
                break
            if i < skip:  # resuming mid-epoch: replay the data stream (same RNG draws) without training
                continue
            if clock is None:
                clock = last_emit = time.perf_counter()
            if control.stopped:  # drawn but not trained: this batch is replayed on resume
                break
            if control.paused:
                paused_at = time.perf_counter()
                while not control.wait_while_paused(0.5):
                    pass
                clock += time.perf_counter() - paused_at
                if control.stopped:  # stopped while paused: this batch is replayed on resume
                    break
            if x.device != dev:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if cl and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, main = self._forward_loss(x, y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                opt.step()
            if self._step_scheduler:
                self.scheduler.step()
            self.step += 1
            loss_sum += loss.detach()
            correct += (main.detach().argmax(1) == y).sum()
            batches += 1
            seen += y.shape[0]
            self.batch = i + 1
            if not self._warm:
                self._warm = True
                if cfg.compile and bpe - skip > 1:  # leave torch.compile's one-off warm-up out of img/s
                    loss_sum.sum().item()  # synchronise so the warm-up is really over
                    clock = last_emit = time.perf_counter()
                    p["untimed"] += y.shape[0]
            now = time.perf_counter()
            if control.stopped or now - last_emit >= STEP_EMIT_INTERVAL:
                last_emit = now
                self._fold(p, loss_sum, correct, batches, seen, elapsed + now - clock)
                loss_sum.zero_()
                correct.zero_()
                if control.stopped:
                    break
                self._emit_step(p, bpe)
        now = time.perf_counter()
        start = now if clock is None else clock
        self._fold(p, loss_sum, correct, batches, seen, elapsed + now - start)
        self.train_seconds += now - start
        self.train_images += seen - seen0 - (p["untimed"] - untimed0)
        return not control.stopped

    def _fold(self, p: dict[str, Any], loss_sum: torch.Tensor, correct: torch.Tensor, batches: int, seen: int,
              seconds: float) -> None:
        """Synchronise the device accumulators into the epoch's running totals; raise Diverged if not finite."""
        p["loss_sum"] += float(loss_sum.item())
        p["correct"] += float(correct.item())
        p["batches"], p["seen"], p["seconds"] = batches, seen, seconds
        if not math.isfinite(p["loss_sum"]):
            raise Diverged(
                f"Training diverged in epoch {self.epoch + 1}: the loss became {p['loss_sum']} "
                f"(lr {self.config.lr:g}); try a smaller learning rate, gradient clipping or warm-up.")

    def _emit_step(self, p: dict[str, Any], bpe: int) -> None:
        seconds = max(p["seconds"], 1e-9)
        done_total = self.epoch * bpe + self.batch
        remaining = self.config.epochs * bpe - done_total
        per_batch = seconds / max(1, p["batches"])
        self.callbacks.on_train_batch_end(StepMetrics(
            run_id=self.run_id, epoch=self.epoch + 1, step=self.step, batch=self.batch, batches=bpe,
            loss=p["loss_sum"] / max(1, p["batches"]), accuracy=p["correct"] / max(1, p["seen"]),
            lr=float(self.optimizer.param_groups[0]["lr"]),
            images_per_second=(p["seen"] - p.get("untimed", 0)) / seconds,
            eta_seconds=remaining * per_batch, time=time.time()))

    @torch.inference_mode()
    def validate(self) -> tuple[float, float]:
        """Mean loss and accuracy of the main output over the validation set (eval mode, no grad).

        Honours pause and stop between batches; a stop raises _ValidationStopped (handled by the loop).
        """
        if self.val_loader is None:
            return float("nan"), float("nan")
        self.net.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        control = self.control
        for x, y in self.val_loader:
            if control.paused:
                while not control.wait_while_paused(0.5):
                    pass
            if control.stopped:
                raise _ValidationStopped
            if x.device != self.device:
                x, y = x.to(self.device), y.to(self.device)
            if self.precision.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.precision.autocast(self.device):
                main, _ = split_outputs(self.net(x))
            loss_sum += self.val_criterion(main.float(), y)
            correct += (main.argmax(1) == y).sum()
            seen += y.shape[0]
        if seen == 0:
            return float("nan"), float("nan")
        return float(loss_sum.item()) / seen, float(correct.item()) / seen

    def _end_epoch(self) -> bool | None:
        """Validate, record, checkpoint and notify; True when early stopping triggers, None when a stop
        request interrupted validation (the position stays at the end of the epoch's training part)."""
        cfg, p = self.config, self._partial
        started = time.perf_counter()
        try:
            val_loss, val_acc = self.validate()
        except _ValidationStopped:
            return None
        train_loss = p["loss_sum"] / max(1, p["batches"])
        train_acc = p["correct"] / max(1, p["seen"])
        self.epoch += 1
        self.batch = 0
        is_best = not math.isnan(val_acc) and (self.best_val_accuracy is None or val_acc > self.best_val_accuracy)
        if is_best:
            self.best_val_accuracy = val_acc
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        ips = (p["seen"] - p.get("untimed", 0)) / p["seconds"] if p["seconds"] > 0 else 0.0
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.last = {"train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss,
                     "val_accuracy": val_acc, "lr": lr, "images_per_second": ips}
        self._save("last")
        if is_best:
            self._save("best")
        self.callbacks.on_epoch_end(EpochMetrics(
            run_id=self.run_id, epoch=self.epoch, epochs=cfg.epochs, train_loss=train_loss,
            train_accuracy=train_acc, val_loss=val_loss, val_accuracy=val_acc, lr=lr, images_per_second=ips,
            epoch_seconds=p["seconds"] + time.perf_counter() - started,
            best_val_accuracy=self.best_val_accuracy if self.best_val_accuracy is not None else float("nan"),
            is_best=is_best, time=time.time()))
        return bool(cfg.early_stopping and self.epochs_without_improvement >= cfg.early_stopping)
