"""Training configuration: a validated dataclass with a JSON round trip, and the job that names what to train."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import InvalidOptionError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
AMP_MODES = ("auto", "off", "bf16", "fp16")
CHANNELS_LAST_MODES = ("auto", "on", "off")

# Short help for every field, used by the CLI (`--help`) and the GUI tooltips.
FIELD_HELP: dict[str, str] = {
    "epochs": "number of passes over the training set",
    "batch_size": "images per optimisation step",
    "optimizer": "sgd (momentum/Nesterov), adam or adamw",
    "lr": "peak learning rate",
    "momentum": "SGD momentum",
    "nesterov": "use Nesterov momentum with SGD",
    "weight_decay": "L2 penalty (decoupled for adamw)",
    "schedule": "learning-rate schedule, stepped per batch: constant, step, cosine or onecycle",
    "warmup_epochs": "linear warm-up length in epochs (fractions allowed)",
    "step_size": "epochs between decays of the step schedule",
    "gamma": "decay factor of the step schedule",
    "label_smoothing": "label smoothing of the training loss (0..1)",
    "augment": "random crop with padding and (where the dataset allows) horizontal flips",
    "crop_padding": "padding of the random crop in pixels (none: per dataset)",
    "hflip": "horizontal flips (none: per dataset; digits never flip)",
    "amp": "mixed precision: auto (bf16/fp16 on CUDA, off on CPU), off, bf16 or fp16",
    "channels_last": "channels-last memory format: auto (on for CUDA and CPU), on or off",
    "compile": "wrap the model in torch.compile",
    "grad_clip": "clip the gradient norm to this value (none: no clipping)",
    "early_stopping": "stop after this many epochs without a better validation accuracy (none: never)",
    "seed": "seed of weights, data order and augmentation",
    "device": "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    "max_batches": "cap on training batches per epoch, for quick trials (none: all)",
    "aux_weight": "weight of each auxiliary-head loss (GoogLeNet), training only",
    "image_size": "side of the square input in pixels (none: what the model needs)",
    "val_fraction": "fraction held out for validation where a dataset has no validation split",
    "deterministic": "deterministic algorithms (slower; makes runs bitwise repeatable)",
    "sync_batchnorm": "with several processes (--nproc, torchrun): batch-norm statistics over the global batch "
                      "(SyncBatchNorm, CUDA only); no effect in one process",
}


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; `validate()` raises InvalidOptionError naming the field."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 30
    gamma: float = 0.1
    label_smoothing: float = 0.0
    augment: bool = True
    crop_padding: int | None = None
    hflip: bool | None = None
    amp: str = "auto"
    channels_last: str = "auto"
    compile: bool = False
    grad_clip: float | None = None
    early_stopping: int | None = None
    seed: int = 0
    device: str = "auto"
    max_batches: int | None = None
    aux_weight: float = 0.3
    image_size: int | None = None
    val_fraction: float = 0.1
    deterministic: bool = False
    sync_batchnorm: bool = False

    def validate(self) -> TrainConfig:
        """Check every field (types, ranges, choices); returns self so calls chain."""
        _int(self, "epochs", low=1)
        _int(self, "batch_size", low=1)
        _choice(self, "optimizer", OPTIMIZERS)
        _float(self, "lr", low=0.0, low_open=True)
        _float(self, "momentum", low=0.0, high=1.0)
        _bool(self, "nesterov")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise InvalidOptionError("nesterov needs optimizer 'sgd' with momentum > 0.")
        _float(self, "weight_decay", low=0.0)
        _choice(self, "schedule", SCHEDULES)
        _float(self, "warmup_epochs", low=0.0)
        _int(self, "step_size", low=1)
        _float(self, "gamma", low=0.0, high=1.0, low_open=True)
        _float(self, "label_smoothing", low=0.0, high=1.0)
        if self.label_smoothing >= 1.0:
            raise InvalidOptionError("label_smoothing must be below 1, got 1.")
        _bool(self, "augment")
        _int(self, "crop_padding", low=0, optional=True)
        _bool(self, "hflip", optional=True)
        _choice(self, "amp", AMP_MODES)
        _choice(self, "channels_last", CHANNELS_LAST_MODES)
        _bool(self, "compile")
        _float(self, "grad_clip", low=0.0, low_open=True, optional=True)
        _int(self, "early_stopping", low=1, optional=True)
        _int(self, "seed", low=0)
        _device(self.device)
        _int(self, "max_batches", low=1, optional=True)
        _float(self, "aux_weight", low=0.0)
        _int(self, "image_size", low=1, optional=True)
        _float(self, "val_fraction", low=0.0, high=1.0, low_open=True)
        if self.val_fraction >= 1.0:
            raise InvalidOptionError("val_fraction must be below 1 (a fraction held out), got 1.")
        _bool(self, "deterministic")
        _bool(self, "sync_batchnorm")
        return self

    # --- JSON round trip ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build and validate a config; unknown keys raise InvalidOptionError with suggestions."""
        from workbench.errors import suggest

        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                raise InvalidOptionError(f"Unknown training option {key!r}.{suggest(key, names)}")
        return cls(**data).validate()

    def to_json(self) -> str:
        """The config as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of `to_json` (validated)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidOptionError(f"Training config is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise InvalidOptionError("Training config JSON must be an object of option names to values.")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


# Starting points that train the small lecture models well; applied under whatever the user sets explicitly.
# LeNet keeps the lecture's sigmoid units, which need Adam with a one-cycle warm-up to learn in a few epochs.
ARCH_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "lenet": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "weight_decay": 0.0, "schedule": "onecycle"},
}
# A user's folder: few images (a few dozen steps per epoch) and content we know nothing about. TrainConfig's SGD
# recipe (lr 0.05, momentum 0.9, no warm-up) is CIFAR's, for 390 steps per epoch: its first five steps inflate
# a lecture ResNet's logits sixfold (standard deviation 0.6 -> 3.8) before any feature is learned, the loss
# rises above chance and the gradient norm collapses tenfold. The bundled digits recover within a few steps;
# 32-px letters on random colours never did (chance after 15 epochs). Adam's per-parameter step size avoids the
# blow-up and one-cycle warms up over the first 30 % of the run. (Flips are off in the folder's DatasetSpec.)
FOLDER_RECIPE: dict[str, Any] = {"optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "schedule": "onecycle"}
# The lecture networks without batch norm need a smaller Adam step on a folder: at 2e-3 their ReLUs die within the
# first epochs and the loss stays at ln(classes). Measured on 10 classes of 32-px letters (200 per class, 15
# epochs, He init): VGG (CIFAR) below 20 % -> 53 % at 5e-4, NiN 10 % (chance) -> 34 %; AlexNet 92 %, GoogLeNet 79 %.
NO_BATCH_NORM_FOLDER_LR = 5e-4
FOLDER_ARCH_RECIPES: dict[str, dict[str, Any]] = {
    name: {"lr": NO_BATCH_NORM_FOLDER_LR}
    for name in ("alexnet", "vgg", "vgg_cifar", "vgg11", "vgg13", "vgg16", "vgg19", "nin", "googlenet")
}
# digits: 1,618 upsampled 8x8 images; crops of a few pixels erase strokes, so no augmentation by default.
DATASET_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"augment": False},
    "imagefolder": FOLDER_RECIPE,
}


def recommended_config(arch: str, dataset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """TrainConfig defaults, then the per-dataset (and, on a folder, per-architecture) starting points, the
    per-architecture ones, then `overrides`."""
    folder_arch = FOLDER_ARCH_RECIPES.get(arch, {}) if dataset == "imagefolder" else {}
    merged = {**DATASET_TRAIN_DEFAULTS.get(dataset, {}), **folder_arch, **ARCH_TRAIN_DEFAULTS.get(arch, {}),
              **(overrides or {})}
    return TrainConfig.from_dict(merged)


@dataclass
class TrainJob:
    """What to train on what, where to keep it, and whether to continue an earlier run."""

    arch: str
    dataset: str
    arch_options: dict[str, Any] = field(default_factory=dict)
    config: TrainConfig = field(default_factory=TrainConfig)
    data_root: Path | None = None
    download: bool = False
    workspace: Path | None = None
    name: str = ""
    resume_run_id: str | None = None
    input_override: tuple[int, int, int] | None = None
    num_classes_override: int | None = None
    # With resume_run_id: where/how to run it now (keys of RESUME_OVERRIDES), e.g. {"device": "cpu"}.
    resume_overrides: dict[str, Any] = field(default_factory=dict)
    # Per-data-set settings passed to load_splits, e.g. {"train_size": 50000} for fake, {"split": "digits"}
    # for emnist, {"image_size": (64, 64)} for imagefolder.
    dataset_options: dict[str, Any] = field(default_factory=dict)
    # With resume_run_id: the checkpoint to continue from ("last", or "best" when last.pt is damaged).
    resume_from: str = "last"
    experiment_id: str | None = None   # the experiment this run belongs to (workbench experiment)


# TrainConfig fields a resumed run may change: they pick hardware, not what is learned.
RESUME_OVERRIDES = ("device", "amp", "channels_last")


# --- field checks ------------------------------------------------------------------------------------------


def _value(cfg: TrainConfig, name: str) -> Any:
    return getattr(cfg, name)


def _int(cfg: TrainConfig, name: str, *, low: int, optional: bool = False) -> None:
    v = _value(cfg, name)
    if v is None and optional:
        return
    if isinstance(v, float) and v.is_integer():  # JSON and literal_eval may hand us 5.0
        v = int(v)
        setattr(cfg, name, v)
    if isinstance(v, bool) or not isinstance(v, int):
        extra = " or none" if optional else ""
        raise InvalidOptionError(f"{name} must be a whole number >= {low}{extra}, got {v!r}.")
    if v < low:
        raise InvalidOptionError(f"{name} must be >= {low}, got {v}.")


def _float(cfg: TrainConfig, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, optional: bool = False) -> None:
    v = _value(cfg, name)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        extra = " or none" if optional else ""
        raise InvalidOptionError(f"{name} must be a finite number{extra}, got {v!r}.")
    setattr(cfg, name, float(v))
    bound = f"{'>' if low_open else '>='} {low:g}" if low is not None else ""
    if high is not None:
        bound = f"{bound} and <= {high:g}" if bound else f"<= {high:g}"
    if (low is not None and (v < low or (low_open and v == low))) or (high is not None and v > high):
        raise InvalidOptionError(f"{name} must be {bound}, got {v!r}.")


def _bool(cfg: TrainConfig, name: str, optional: bool = False) -> None:
    v = _value(cfg, name)
    if v is None and optional:
        return
    if not isinstance(v, bool):
        extra = ", or none for the dataset's default" if optional else ""
        raise InvalidOptionError(f"{name} must be true or false{extra}, got {v!r}.")


def _choice(cfg: TrainConfig, name: str, allowed: tuple[str, ...]) -> None:
    from workbench.errors import suggest

    v = _value(cfg, name)
    if isinstance(v, str) and v.lower() in allowed:
        setattr(cfg, name, v.lower())
        return
    hint = suggest(str(v), list(allowed)) if isinstance(v, str) else ""
    raise InvalidOptionError(f"{name} must be one of {', '.join(allowed)}; got {v!r}.{hint}")


def _device(v: Any) -> None:
    import re

    if not isinstance(v, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v.strip().lower()):
        raise InvalidOptionError(f"device must be auto, cpu, cuda, cuda:N or mps; got {v!r}.")
