"""The data side of run_training: loading the splits (stoppable, with progress), checking them against the model
and the run, and checking that every process of a distributed run read the same data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import InvalidOptionError, WorkbenchError

if TYPE_CHECKING:
    from workbench.training.config import TrainConfig
    from workbench.training.control import TrainControl
    from workbench.training.job import Plan
    from workbench.training.resume import Settings

ProgressFn = Callable[[str, float], None]


class StoppedBeforeStartError(WorkbenchError):
    """A stop (Ctrl-C) arrived while data was loading or the model was built; no run was created."""


@dataclass(frozen=True)
class DataFacts:
    """What the main process's data looks like, so every other process can check it loaded the same data."""

    classes: tuple[str, ...]
    train_size: int
    val_size: int

    @classmethod
    def of(cls, splits: Any) -> DataFacts:
        return cls(tuple(str(c) for c in splits.classes), len(splits.train), len(splits.val))


def load_data(settings: Settings | Plan, download: bool, config: TrainConfig, progress: ProgressFn | None,
               control: TrainControl | None) -> Any:
    """The data set's splits; a stop requested through `control` (also during a download) raises
    StoppedBeforeStartError."""
    from workbench.data import load_splits

    if progress:
        progress(f"Loading {settings.dataset}", 0.0)

    def fetch(done: int, total: int) -> None:
        if control is not None and control.stopped:  # Ctrl-C during a download: abort it promptly
            raise StoppedBeforeStartError("Stopped while loading the data; no run was created.")
        if progress:
            progress(f"Loading {settings.dataset}", done / total if total else 0.0)

    splits = load_splits(settings.dataset, root=settings.data_root, download=download, seed=config.seed,
                         val_fraction=config.val_fraction, progress=fetch, options=settings.data_options)
    if control is not None and control.stopped:
        raise StoppedBeforeStartError("Stopped while loading the data; no run was created.")
    return splits


def load_shard_data(plan: Plan, facts: DataFacts, control: TrainControl) -> Any:
    """The data in a process other than the main one (which downloaded it if asked), checked to be the same."""
    splits = load_data(plan, False, plan.config, None, control)
    if DataFacts.of(splits) != facts:
        import socket

        from workbench.training.distributed import env_rank

        mine, where = DataFacts.of(splits), plan.data_root or "the default data root"
        raise InvalidOptionError(
            f"Process {env_rank()} on {socket.gethostname()} reads different data from {where} "
            f"({mine.train_size} training / {mine.val_size} validation images, {len(mine.classes)} classes) than "
            f"the main process ({facts.train_size} / {facts.val_size}, {len(facts.classes)} classes); every node "
            "needs the same data at the same path.")
    return splits


def check_classes_option(num_classes: int | None) -> None:
    """A --classes value below 2 cannot train a classifier."""
    if num_classes is not None and num_classes < 2:
        raise InvalidOptionError(f"--classes must be at least 2 to train a classifier, got {num_classes}.")


def check_data_fits(settings: Settings, splits: Any, num_classes: int) -> None:
    """The model must have an output per class, and a resumed run must see the classes it was trained on."""
    if settings.classes is not None and tuple(splits.classes) != settings.classes:
        raise InvalidOptionError(
            f"The data's classes ({', '.join(splits.classes)}) differ from the ones the run was trained on "
            f"({', '.join(settings.classes)}); resume it on the same data, or start a new run.")
    if num_classes < splits.num_classes:
        raise InvalidOptionError(
            f"--classes {num_classes} is smaller than the {splits.num_classes} classes of {settings.dataset}; "
            f"use at least {splits.num_classes} (or leave --classes out).")
    if splits.num_classes < 2:
        raise InvalidOptionError(f"{settings.dataset} has {splits.num_classes} class; a classifier needs at least "
                                 "two classes (sub-folders) of images.")
    skipped = f" ({splits.skipped} unreadable file(s) skipped)" if splits.skipped else ""
    if len(splits.train) == 0:
        raise InvalidOptionError(f"{settings.dataset} has no readable training images{skipped}; check the files.")
    if len(splits.val) == 0:
        raise InvalidOptionError(
            f"The validation split of {settings.dataset} is empty ({len(splits.train)} training images{skipped}); "
            "add a val/ folder of images, raise --val-fraction, or give the data set validation images.")
