"""run_training: turn a TrainJob into data, model, run record and checkpoints, then run the Trainer."""

from __future__ import annotations

import contextlib
import random
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.errors import InvalidOptionError, UnknownNameError, WorkbenchError
from workbench.training import checkpoint as ckpt
from workbench.training.callbacks import Callback
from workbench.training.config import RESUME_OVERRIDES, TrainConfig, TrainJob
from workbench.training.control import TrainControl
from workbench.training.device import (
    Precision,
    device_label,
    is_out_of_memory,
    resolve_device,
    resolve_precision,
)
from workbench.training.events import EpochMetrics, FitResult, StepMetrics
from workbench.training.trainer import Trainer

ProgressFn = Callable[[str, float], None]


class RunCompletedError(WorkbenchError):
    """Resume was asked for a run that already finished all its epochs."""


class ModelOutOfMemoryError(WorkbenchError):
    """The model itself does not fit on the chosen device (raised before any run is created)."""


class StoppedBeforeStartError(WorkbenchError):
    """A stop (Ctrl-C) arrived while data was loading or the model was built; no run was created."""




@dataclass
class _Plan:
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
    resume_state: dict[str, Any] | None


class _StoreLogger(Callback):
    """Writes step metrics (thinned) and epoch metrics to the run store as they happen."""

    def __init__(self, store: Any, run_id: str) -> None:
        from workbench.runs import MetricBuffer

        self.store, self.run_id = store, run_id
        self.buffer = MetricBuffer(store, run_id, flush_every_s=5.0, step_interval_s=0.5)

    def on_train_batch_end(self, e: StepMetrics) -> None:
        self.buffer.add_step(e.epoch, e.step, {"step_loss": e.loss, "step_accuracy": e.accuracy, "step_lr": e.lr})

    def on_epoch_end(self, e: EpochMetrics) -> None:
        values = {"train_loss": e.train_loss, "train_accuracy": e.train_accuracy, "val_loss": e.val_loss,
                  "val_accuracy": e.val_accuracy, "lr": e.lr, "images_per_second": e.images_per_second}
        self.buffer.add_epoch(e.epoch, 0, values)
        best = e.best_val_accuracy if e.best_val_accuracy == e.best_val_accuracy else None  # NaN -> None
        self.store.update_run(self.run_id, epochs_completed=e.epoch, best_val_accuracy=best,
                              best_metrics={"epoch": e.epoch, **values} if e.is_best else None)


def _plan(job: TrainJob, store: Any, progress: ProgressFn | None,
          control: TrainControl | None = None) -> tuple[_Plan, Any]:
    from workbench.data import get_dataset, load_splits
    from workbench.models import get_spec, resolve_options

    arch, dataset, options, config = job.arch, job.dataset, dict(job.arch_options or {}), job.config
    data_options = dict(job.dataset_options or {})
    data_root = Path(job.data_root).expanduser() if job.data_root is not None else None
    input_override, classes_override, resume_state = job.input_override, job.num_classes_override, None
    if job.resume_run_id:
        record = store.get_run(job.resume_run_id)
        if record.status == "completed":
            raise RunCompletedError(
                f"Run {record.run_id} already completed ({record.epochs_completed} epochs); "
                "start a new run to train longer.")
        resume_state = ckpt.load_checkpoint(record.folder / ckpt.LAST_NAME)
        arch, dataset = record.arch, record.dataset
        options = ckpt.decode_options(resume_state.get("arch_options", record.arch_options))
        data_options = ckpt.decode_options(resume_state.get("dataset_options") or {})
        config = TrainConfig.from_dict(dict(resume_state.get("config") or record.config))
        bad = sorted(set(job.resume_overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise InvalidOptionError(f"A resumed run keeps its settings except {', '.join(RESUME_OVERRIDES)}; "
                                     f"cannot change {', '.join(bad)}.")
        if job.resume_overrides:
            config = config.replace(**job.resume_overrides)
        if data_root is None and resume_state.get("data_root"):
            data_root = Path(resume_state["data_root"])
        input_override = tuple(resume_state["input_shape"])
        classes_override = int(resume_state["num_classes"])
    config = TrainConfig.from_dict(config.to_dict())  # validated copy; the caller's object stays untouched
    device = resolve_device(config.device)
    precision = resolve_precision(config, device)
    spec = get_spec(arch)
    options = resolve_options(arch, options)
    get_dataset(dataset)
    if progress:
        progress(f"Loading {dataset}", 0.0)

    def fetch(done: int, total: int) -> None:
        if control is not None and control.stopped:  # Ctrl-C during a download: abort it promptly
            raise StoppedBeforeStartError("Stopped while loading the data; no run was created.")
        if progress:
            progress(f"Loading {dataset}", done / total if total else 0.0)

    splits = load_splits(dataset, root=data_root, download=job.download, seed=config.seed,
                         val_fraction=config.val_fraction, progress=fetch, options=data_options)
    if input_override is not None:
        input_shape = tuple(int(v) for v in input_override)
    else:
        natural = spec.natural_input_for(options)
        side = config.image_size
        input_shape = (natural[0], side, side) if side else tuple(natural)
    if control is not None and control.stopped:
        raise StoppedBeforeStartError("Stopped while loading the data; no run was created.")
    num_classes = classes_override or splits.num_classes
    if num_classes < splits.num_classes:
        raise InvalidOptionError(
            f"--classes {num_classes} is smaller than the {splits.num_classes} classes of {dataset}; "
            f"use at least {splits.num_classes} (or leave --classes out).")
    plan = _Plan(arch=arch, dataset=dataset, options=options, data_options=data_options, config=config,
                 device=device, precision=precision,
                 data_root=data_root, input_shape=input_shape, num_classes=num_classes,  # type: ignore[arg-type]
                 resume_state=resume_state)
    return plan, splits


@contextlib.contextmanager
def _determinism(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Deterministic kernels when asked (restored afterwards); cuDNN autotuning otherwise."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[1], saved[2]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed)


def _make_loaders(plan: _Plan, splits: Any, generator: torch.Generator) -> tuple[Any, Any]:
    from workbench.data import make_loader

    cfg, dspec = plan.config, splits.spec  # imagefolder: the folder's own classes/size/mean/std
    crop = (cfg.crop_padding if cfg.crop_padding is not None else dspec.crop_padding) if cfg.augment else 0
    hflip = (cfg.hflip if cfg.hflip is not None else dspec.hflip) if cfg.augment else False
    c, h, w = plan.input_shape
    common = dict(device=plan.device, image_size=(h, w), channels=c, mean=dspec.mean, std=dspec.std,
                  channels_last=plan.precision.channels_last)
    train = make_loader(splits.train, batch_size=cfg.batch_size, train=True, crop_padding=crop, hflip=hflip,
                        generator=generator, max_batches=cfg.max_batches, **common)
    # Validation uses the training batch size, so "try a smaller batch size" also fixes an OOM there.
    val = make_loader(splits.val, batch_size=cfg.batch_size, train=False,
                      generator=torch.Generator().manual_seed(cfg.seed), **common)
    return train, val


def _existing_store(job: TrainJob) -> Any:
    """The store of a run to resume; an absent workspace database means an unknown run (nothing is created)."""
    from workbench.paths import default_workspace
    from workbench.runs import DB_NAME, RunStore

    workspace = Path(job.workspace).expanduser() if job.workspace is not None else default_workspace()
    if not (workspace / DB_NAME).exists():
        raise UnknownNameError(f"No run {job.resume_run_id!r} in workspace {workspace} (it holds no runs); "
                               "check --workspace, or run `workbench runs` to list them.")
    return RunStore(workspace)


def run_training(job: TrainJob, callbacks: Sequence[Callback] = (), control: TrainControl | None = None,
                 progress: ProgressFn | None = None) -> FitResult:
    """Train (or resume) a run end to end; see docs/ARCHITECTURE.md.

    Bad input raises WorkbenchError before any run is created. Once the run exists, every ending (completed,
    stopped, failed, diverged) is recorded in the store and returned as a FitResult.
    """
    from workbench.models import build_model
    from workbench.runs import RunStore

    control = control or TrainControl()
    if job.resume_run_id:
        store = _existing_store(job)
        plan, splits = _plan(job, store, progress, control)
    else:  # validate everything first: bad input must not create the workspace or its database
        plan, splits = _plan(job, None, progress, control)
        store = None
    cfg = plan.config
    with _determinism(cfg, plan.device):
        if progress:
            progress(f"Building {plan.arch}", 0.0)
        _seed_everything(cfg.seed)
        try:
            model = build_model(plan.arch, num_classes=plan.num_classes, input_shape=plan.input_shape,
                                options=plan.options, device=plan.device)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            raise ModelOutOfMemoryError(
                f"Out of memory building {plan.arch} on {device_label(plan.device)}; choose a smaller "
                "architecture or input size, or use --device cpu.") from None
        generator = torch.Generator().manual_seed(cfg.seed)
        train_loader, val_loader = _make_loaders(plan, splits, generator)
        label = device_label(plan.device)
        if control.stopped:
            raise StoppedBeforeStartError("Stopped before training started; no run was created.")
        if store is None:
            store = RunStore(job.workspace)
        if plan.resume_state is not None:
            run_id = str(job.resume_run_id)
            store.claim_run(run_id)
            state = plan.resume_state
            store.discard_metrics_after(run_id, int(state["epoch"]) + (1 if int(state["batch"]) else 0))
            store.update_run(run_id, device=label)
        else:
            run_id = store.create_run(arch=plan.arch, arch_options=plan.options, dataset=plan.dataset,
                                      config=cfg.to_dict(), device=label, name=job.name,
                                      dataset_options=plan.data_options)
        logger = _StoreLogger(store, run_id)
        folder = store.run_dir(run_id)
        extra = {"format": ckpt.CHECKPOINT_FORMAT, "config": cfg.to_dict(), "arch": plan.arch,
                 "arch_options": ckpt.encode_options(plan.options), "dataset": plan.dataset,
                 "dataset_options": ckpt.encode_options(plan.data_options),
                 "input_shape": list(plan.input_shape), "num_classes": plan.num_classes,
                 "classes": [str(c) for c in splits.classes], "mean": [float(v) for v in splits.spec.mean],
                 "std": [float(v) for v in splits.spec.std],
                 "data_root": str(plan.data_root) if plan.data_root is not None else None}

        def save(kind: str, state: dict[str, Any]) -> str:
            name = ckpt.BEST_NAME if kind == "best" else ckpt.LAST_NAME
            full = {**state, **extra, "rng": ckpt.pack_rng_state()}
            return str(ckpt.save_checkpoint(folder / name, full))

        result: FitResult | None = None
        try:
            trainer = Trainer(
                model, cfg, device=plan.device, precision=plan.precision, train_loader=train_loader,
                val_loader=val_loader, callbacks=[logger, *callbacks], control=control, run_id=run_id,
                generator=generator, checkpoint_fn=save, device_name=label,
                fit_info={"arch": plan.arch, "dataset": plan.dataset, "num_classes": plan.num_classes,
                          "train_size": len(splits.train), "val_size": len(splits.val),
                          "skipped": int(getattr(splits, "skipped", 0) or 0)})
            if plan.resume_state is not None:
                trainer.load_state_dict(plan.resume_state)
                ckpt.unpack_rng_state(plan.resume_state["rng"])
            else:
                trainer._save("last")  # so a run killed in its first epoch can still be resumed
            if progress:
                progress("Training", 0.0)
            result = trainer.fit()
        except BaseException as exc:
            message = f"Training failed: {type(exc).__name__}: {exc}"
            status = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
            with contextlib.suppress(Exception):
                store.update_run(run_id, status=status, message=message)
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                for cb in callbacks:
                    with contextlib.suppress(Exception):
                        cb.on_exception(message, traceback.format_exc())
            raise
        finally:
            with contextlib.suppress(Exception):
                logger.buffer.close()
    final = {k: v for k, v in {
        "train_loss": result.train_loss, "train_accuracy": result.train_accuracy, "val_loss": result.val_loss,
        "val_accuracy": result.val_accuracy, "images_per_second": result.images_per_second}.items() if v is not None}
    store.update_run(run_id, status=result.status, message=result.message, epochs_completed=result.epochs_completed,
                     final_metrics=final)
    return result

