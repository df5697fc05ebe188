"""run_training: turn a TrainJob into data, model, run record and checkpoints, then run the Trainer."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.runs.records import RunCompletedError, RunRecord, RunStatus
from workbench.training import checkpoint as ckpt
from workbench.training.callbacks import Callback
from workbench.training.config import TrainConfig, TrainJob
from workbench.training.control import TrainControl
from workbench.training.device import (
    Precision,
    determinism,
    device_label,
    is_out_of_memory,
    resolve_device,
    resolve_precision,
    seed_everything,
)
from workbench.training.distributed import Distributed, from_environment
from workbench.training.events import FitResult, RunFacts, StepMetrics
from workbench.training.job_data import (
    DataFacts,
    ProgressFn,
    StoppedBeforeStartError,
    check_classes_option,
    check_data_fits,
    load_data,
    load_shard_data,
)
from workbench.training.restore import open_store
from workbench.training.resume import new_settings, resume_settings
from workbench.training.run_logger import RunLogger
from workbench.training.trainer import Trainer

__all__ = ["ModelOutOfMemoryError", "Plan", "RunCompletedError", "StoppedBeforeStartError", "build_run_model",
           "make_loaders", "plan_job", "run_training"]


class ModelOutOfMemoryError(WorkbenchError):
    """The model itself does not fit on the chosen device (raised before any run is created)."""


@dataclass
class Plan:
    """Everything resolved from a job before a run record is created (all bad input surfaces here)."""

    arch: str
    dataset: str
    options: dict[str, Any]
    data_options: dict[str, Any]
    config: TrainConfig
    device: torch.device
    precision: Precision
    data_root: Path | None
    input_shape: tuple[int, int, int]
    num_classes: int
    resume_state: dict[str, Any] | None     # the checkpoint to continue from (None: start at epoch 1)


def run_training(job: TrainJob, callbacks: Sequence[Callback] = (), control: TrainControl | None = None,
                 progress: ProgressFn | None = None) -> FitResult:
    """Train (or resume) a run end to end and return how it ended.

    Bad input raises WorkbenchError before a new run is created (a resumed run is claimed first, so two resumes
    cannot both train it, and released again). Once training starts, every ending (completed, stopped, failed,
    diverged) is recorded in the store and returned as a FitResult.

    Under a launcher (torchrun, `workbench train --nproc`) every process calls this: global rank 0 plans, owns the
    store, checkpoints and reports to `callbacks`/`progress`; the others train their shards (see distributed.py).
    """
    control = control or TrainControl()
    with from_environment() as dist:
        if not dist.is_main:
            callbacks, progress = (), None
        result = _run(job, callbacks, control, progress, dist)
        dist.failed = result.status == RunStatus.FAILED   # the others may still be in a collective: don't wait
        return result


def _run(job: TrainJob, callbacks: Sequence[Callback], control: TrainControl, progress: ProgressFn | None,
         dist: Distributed) -> FitResult:
    main: dict[str, Any] = {"store": None, "claimed": None}   # what only the main process holds

    def plan_on_main() -> tuple[Plan, DataFacts]:
        if job.resume_run_id:
            main["store"], main["claimed"] = _claim(job)
        with _released_on_failure(main["store"], main["claimed"]):
            plan, main["splits"] = plan_job(job, main["claimed"], progress, control)
            dist.check(plan.config, plan.device)
        return plan, DataFacts.of(main["splits"])

    plan, facts = dist.from_main(plan_on_main)
    store, claimed = main["store"], main["claimed"]
    with _released_on_failure(store, claimed):
        plan.device = dist.agree(lambda: dist.device_for(plan.device))
    with determinism(plan.config, plan.device):
        with _released_on_failure(store, claimed):
            def prepare() -> tuple[Any, nn.Module, torch.Generator, tuple[Any, Any]]:
                splits = main.get("splits") or load_shard_data(plan, facts, control)
                model = build_run_model(plan, progress)
                generator = torch.Generator().manual_seed(plan.config.seed)
                loaders = make_loaders(plan, splits, generator, dist.shard)
                if control.stopped:
                    raise StoppedBeforeStartError("Stopped before training started; no run was created.")
                return splits, model, generator, loaders

            splits, model, generator, (train_loader, val_loader) = dist.agree(prepare)

            def open_on_main() -> str:
                main["store"], run_id = _open_run(job, plan, store, dist.world_size)
                return run_id

            run_id = dist.from_main(open_on_main)
            store = main["store"]
        logger = RunLogger(store, run_id) if dist.is_main else None
        own = [logger, StopRequests(store, run_id, control)] if logger is not None else []
        trainer = Trainer(
            model, plan.config, device=plan.device, precision=plan.precision, train_loader=train_loader,
            val_loader=val_loader, callbacks=[*own, *callbacks], control=dist.trainer_control(control),
            run_id=run_id, generator=generator, dist=dist, device_name=device_label(plan.device),
            checkpoint_fn=_checkpoint_writer(store.run_dir(run_id), plan, splits) if dist.is_main else None,
            facts=RunFacts(
                arch=plan.arch, dataset=plan.dataset, num_classes=plan.num_classes, train_size=len(splits.train),
                val_size=len(splits.val), skipped=int(splits.skipped or 0), classes=tuple(splits.classes),
                arch_options=dict(plan.options)))
        result = _with_unreadable(_fit(trainer, plan, store, run_id, logger, callbacks, progress),
                                  train_loader, val_loader)
    if dist.is_main:
        _record_result(store, run_id, result)
    return result


class StopRequests(Callback):
    """Honours a stop request made through the run store (`RunStore.request_stop`, e.g. by the app for a run it
    did not start): checked about once a second at step events, it calls `control.stop()`."""

    def __init__(self, store: Any, run_id: str, control: TrainControl, every_s: float = 1.0) -> None:
        self.store, self.run_id, self.control, self.every_s = store, run_id, control, every_s
        self._checked = time.monotonic()

    def on_train_batch_end(self, e: StepMetrics) -> None:
        now = time.monotonic()
        if now - self._checked < self.every_s or self.control.stopped:
            return
        self._checked = now
        try:
            asked = self.store.get_run(self.run_id).stop_requested
        except WorkbenchError:  # a busy or briefly unreadable store: ask again next time
            return
        if asked:
            self.control.stop()


# --- the steps ---------------------------------------------------------------------------------------------


def _claim(job: TrainJob) -> tuple[Any, RunRecord]:
    """The store and the run to resume, flipped to `running` for this process in one transaction."""
    store = open_store(job.workspace, job.resume_run_id)
    claimed = store.claim_run(str(job.resume_run_id))
    _sweep_leftovers(store)  # after the claim: no other process writes this run's checkpoints now
    return store, claimed


def _sweep_leftovers(store: Any) -> None:
    """Remove the temporary files that interrupted checkpoint writes left in runs no live process trains."""
    for record in store.list_runs():
        if record.status != RunStatus.RUNNING or record.owner_pid == os.getpid():
            ckpt.remove_stale_temp_files(record.folder)


@contextlib.contextmanager
def _released_on_failure(store: Any, claimed: RunRecord | None) -> Iterator[None]:
    """Give a claimed run back (its previous status) when the resume fails before training starts."""
    try:
        yield
    except BaseException as exc:
        if claimed is not None:
            status = claimed.status if claimed.status in (RunStatus.STOPPED, RunStatus.FAILED) else RunStatus.STOPPED
            message = claimed.message or f"Resume failed: {exc}"
            with contextlib.suppress(Exception):
                store.update_run(claimed.run_id, status=status, message=message)
        raise


def plan_job(job: TrainJob, resume: RunRecord | None = None, progress: ProgressFn | None = None,
             control: TrainControl | None = None) -> tuple[Plan, Any]:
    """Resolve names, options, device and data (loaded here) into a Plan; `resume` is the run being continued.
    Every bad input raises WorkbenchError here, before anything is written."""
    from workbench.data import get_dataset
    from workbench.models import get_spec, resolve_options

    settings = resume_settings(job, resume) if resume is not None else new_settings(job)
    config = TrainConfig.from_dict(settings.config.to_dict())  # validated copy; the caller's object is untouched
    device = resolve_device(config.device)
    precision = resolve_precision(config, device)
    spec = get_spec(settings.arch)
    options = resolve_options(settings.arch, settings.options)
    get_dataset(settings.dataset)
    check_classes_option(settings.num_classes)
    splits = load_data(settings, job.download, config, progress, control)
    natural = spec.natural_input_for(options)
    side = config.image_size
    input_shape = settings.input_shape or ((natural[0], side, side) if side else natural)
    num_classes = settings.num_classes or splits.num_classes
    check_data_fits(settings, splits, num_classes)
    plan = Plan(arch=settings.arch, dataset=settings.dataset, options=options, data_options=settings.data_options,
                config=config, device=device, precision=precision, data_root=settings.data_root,
                input_shape=input_shape, num_classes=num_classes, resume_state=settings.state)
    return plan, splits


def build_run_model(plan: Plan, progress: ProgressFn | None = None) -> nn.Module:
    """The plan's model on its device, seeded with the run's seed (ModelOutOfMemoryError when it cannot fit)."""
    from workbench.models import build_model

    if progress:
        progress(f"Building {plan.arch}", 0.0)
    seed_everything(plan.config.seed)
    try:
        # A resumed run's weights come from its checkpoint: the init draw would be overwritten at once.
        return build_model(plan.arch, num_classes=plan.num_classes, input_shape=plan.input_shape,
                           options=plan.options, device=plan.device, initialize_weights=plan.resume_state is None)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        raise ModelOutOfMemoryError(
            f"Out of memory building {plan.arch} on {device_label(plan.device)}; choose a smaller architecture "
            "or input size, or use --device cpu.") from None


def make_loaders(plan: Plan, splits: Any, generator: torch.Generator,
                 shard: tuple[int, int] | None = None) -> tuple[Any, Any]:
    """Training loader (augmented, shuffled by `generator`) and validation loader, on the plan's device;
    `shard=(rank, world)`: this process's part of every global batch (see data/loader.py)."""
    from workbench.data import make_loader

    cfg, dspec = plan.config, splits.spec  # imagefolder: the folder's own classes/size/mean/std
    crop = (cfg.crop_padding if cfg.crop_padding is not None else dspec.crop_padding) if cfg.augment else 0
    hflip = (cfg.hflip if cfg.hflip is not None else dspec.hflip) if cfg.augment else False
    c, h, w = plan.input_shape
    common: dict[str, Any] = dict(device=plan.device, image_size=(h, w), channels=c, mean=dspec.mean,
                                  std=dspec.std, channels_last=plan.precision.channels_last)
    train = make_loader(splits.train, batch_size=cfg.batch_size, train=True, crop_padding=crop, hflip=hflip,
                        generator=generator, max_batches=cfg.max_batches, shard=shard, **common)
    # Validation uses the training batch size, so "try a smaller batch size" also fixes an OOM there.
    val = make_loader(splits.val, batch_size=cfg.batch_size, train=False,
                      generator=torch.Generator().manual_seed(cfg.seed), shard=shard, **common)
    return train, val


def _open_run(job: TrainJob, plan: Plan, store: Any, world_size: int = 1) -> tuple[Any, str]:
    """Create the run's record (a new run) or prepare the claimed one (drop what follows its checkpoint)."""
    from workbench.runs import RunStore
    from workbench.runs.history import discard_history_after

    label = device_label(plan.device)
    if job.resume_run_id:
        run_id = str(job.resume_run_id)
        state = plan.resume_state or {"epoch": 0, "batch": 0}
        keep = int(state["epoch"]) + (1 if int(state["batch"]) else 0)
        store.discard_metrics_after(run_id, keep)
        discard_history_after(store, run_id, int(state["epoch"]))
        store.update_run(run_id, device=label, world_size=world_size)  # a run may resume with another count
        return store, run_id
    store = RunStore(job.workspace)
    _sweep_leftovers(store)
    run_id = store.create_run(
        arch=plan.arch, arch_options=plan.options, dataset=plan.dataset, config=plan.config.to_dict(), device=label,
        name=job.name, dataset_options=plan.data_options, experiment_id=job.experiment_id,
        data_root=str(plan.data_root) if plan.data_root is not None else None, input_shape=plan.input_shape,
        num_classes=plan.num_classes, world_size=world_size)
    return store, run_id


def _checkpoint_writer(folder: Path, plan: Plan, splits: Any) -> Callable[[str, dict[str, Any]], str]:
    """The trainer's checkpoint_fn: its state plus what rebuilds the run (see checkpoint.py), written atomically."""
    extra = {"format": ckpt.CHECKPOINT_FORMAT, "config": plan.config.to_dict(), "arch": plan.arch,
             "arch_options": ckpt.encode_options(plan.options), "dataset": plan.dataset,
             "dataset_options": ckpt.encode_options(plan.data_options), "input_shape": list(plan.input_shape),
             "num_classes": plan.num_classes,
             "data_root": str(plan.data_root) if plan.data_root is not None else None,
             "classes": [str(c) for c in splits.classes], "mean": [float(v) for v in splits.spec.mean],
             "std": [float(v) for v in splits.spec.std]}

    def write(kind: str, state: dict[str, Any]) -> str:
        name = ckpt.BEST_NAME if kind == "best" else ckpt.LAST_NAME
        return str(ckpt.save_checkpoint(folder / name, {**state, **extra, "rng": ckpt.pack_rng_state()}))

    return write


def _fit(trainer: Trainer, plan: Plan, store: Any, run_id: str, logger: RunLogger | None,
         callbacks: Sequence[Callback], progress: ProgressFn | None) -> FitResult:
    """Restore a resumed run's position and train; an escape from fit (a second Ctrl-C, a bug) is recorded (by the
    main process: the others have no store)."""
    try:
        if plan.resume_state is not None:
            trainer.load_state_dict(plan.resume_state)
            ckpt.unpack_rng_state(plan.resume_state["rng"])
        trainer.dist.decorrelate_rng()
        if progress:
            progress("Training", 0.0)
        # A new run (or one resumed without a checkpoint) writes last.pt before its first step, so a run killed
        # in its first epoch can still be resumed.
        return trainer.fit(save_first=plan.resume_state is None)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        message = "Interrupted." if interrupted else f"Training failed: {type(exc).__name__}: {exc}"
        if store is not None:
            with contextlib.suppress(Exception):
                store.update_run(run_id, status=RunStatus.STOPPED if interrupted else RunStatus.FAILED,
                                 message=message)
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            for cb in callbacks:
                with contextlib.suppress(Exception):
                    cb.on_exception(message, traceback.format_exc())
        raise
    finally:
        if logger is not None:
            with contextlib.suppress(Exception):
                logger.close()


def _with_unreadable(result: FitResult, *loaders: Any) -> FitResult:
    """Say how many images a streaming loader had to leave out because they could no longer be read."""
    lost = sum(int(getattr(loader, "unreadable", 0)) for loader in loaders)
    if not lost:
        return result
    return dataclasses.replace(result, message=f"{result.message} {lost} image(s) could not be read during the "
                                               "run and were left out of their batches.".strip())


def _record_result(store: Any, run_id: str, result: FitResult) -> None:
    final = {k: v for k, v in {
        "train_loss": result.train_loss, "train_accuracy": result.train_accuracy, "val_loss": result.val_loss,
        "val_accuracy": result.val_accuracy, "images_per_second": result.images_per_second}.items() if v is not None}
    store.update_run(run_id, status=result.status, message=result.message, epochs_completed=result.epochs_completed,
                     final_metrics=final)
