"""A stored run brought back to life: its model with a checkpoint's weights, its classes and preprocessing, its data.

Used by everything that looks at a trained model after the fact (evaluate, predict, Grad-CAM, export).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import CheckpointError, InvalidOptionError
from workbench.training import checkpoint as ckpt
from workbench.training.config import TrainConfig

CHECKPOINT_CHOICES = ("best", "last")


@dataclass(frozen=True)
class Preprocessing:
    """What the run did to every image before the model saw it (validation path: no augmentation)."""

    channels: int                    # the model's input channels (1 <-> 3 converted by luminance / broadcast)
    image_size: tuple[int, int]      # (H, W) the images are resized to
    mean: tuple[float, ...]          # per-channel normalisation of the data set, 0..1 pixel scale
    std: tuple[float, ...]


@dataclass
class RestoredRun:
    """A run's model (eval mode, on `device`) with the weights of one checkpoint, and how to feed it."""

    run_id: str
    checkpoint: str                  # "best" | "last"
    path: Path                       # the checkpoint file
    model: nn.Module
    device: torch.device
    arch: str
    arch_options: dict[str, Any]
    dataset: str
    dataset_options: dict[str, Any]
    data_root: Path | None
    input_shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...]         # one name per model output (len == num_classes)
    preprocessing: Preprocessing
    config: TrainConfig
    epoch: int                       # completed epochs when the checkpoint was written
    state: dict[str, Any]            # the whole checkpoint (weights included)
    workspace: Path | None = None    # the workspace the run lives in (its store: open_store(workspace))

    def load_splits(self, progress: Callable[[int, int], None] | None = None) -> Any:
        """The run's own data (same data set, options, seed and split) as `workbench.data.DataSplits`."""
        from workbench.data import load_splits

        return load_splits(self.dataset, root=self.data_root, seed=self.config.seed,
                           val_fraction=self.config.val_fraction, progress=progress, options=self.dataset_options)


def checkpoint_path(folder: Path, which: str) -> Path:
    """`best.pt` or `last.pt` in a run folder; InvalidOptionError for another name."""
    if which not in CHECKPOINT_CHOICES:
        raise InvalidOptionError(f"--checkpoint must be best or last, got {which!r}.")
    return folder / (ckpt.BEST_NAME if which == "best" else ckpt.LAST_NAME)


def open_store(workspace: Path | str | None, run_id: str | None = None) -> Any:
    """The RunStore of an existing workspace (see `workbench.runs.store.open_existing`); nothing is created."""
    from workbench.runs.store import open_existing

    return open_existing(workspace, run_id)


def restore_run(run_id: str, *, workspace: Path | str | None = None, checkpoint: str = "best",
                device: str | torch.device = "cpu") -> RestoredRun:
    """Load run `run_id`'s `checkpoint` ("best" or "last") onto `device`, ready for inference.

    UnknownNameError for an unknown run or workspace; CheckpointError when the run has no such checkpoint
    (e.g. stopped before its first epoch ended: "best" needs a finished epoch) or the file is damaged.
    """
    from workbench.models import build_model
    from workbench.models.init import as_recorded

    store = open_store(workspace, run_id)
    try:
        record = store.get_run(run_id)
        folder = store.run_dir(run_id)
    finally:
        store.close()
    path = checkpoint_path(folder, checkpoint)
    if not path.is_file():
        other = "last" if checkpoint == "best" else "best"
        hint = (f" (try --checkpoint {other})" if checkpoint_path(folder, other).is_file()
                else "; it has not finished an epoch yet")
        raise CheckpointError(f"Run {run_id} has no {checkpoint} checkpoint{hint}.")
    state = ckpt.load_checkpoint(path)
    try:
        arch = str(state.get("arch") or record.arch)
        options = as_recorded(arch, ckpt.decode_options(state.get("arch_options") or record.arch_options))
        dataset = str(state.get("dataset") or record.dataset)
        data_options = ckpt.decode_options(state.get("dataset_options") or record.dataset_options or {})
        config = TrainConfig.from_dict(dict(state.get("config") or record.config))
        c, h, w = (int(v) for v in state["input_shape"])
        num_classes = int(state["num_classes"])
        weights = state["model"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path} lacks what is needed to rebuild the model ({exc}); it was not "
                              "written by this version of CNN Workbench.") from None
    data_root = Path(state["data_root"]) if state.get("data_root") else None
    dev = torch.device(device)
    model = build_model(arch, num_classes=num_classes, input_shape=(c, h, w), options=options, device=dev,
                        initialize_weights=False)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"Checkpoint {path} does not fit {arch} ({str(exc).splitlines()[0]}).") from None
    model.eval()
    classes, mean, std = _data_description(state, dataset, data_root, data_options, config)
    names = tuple(classes[i] if i < len(classes) else f"class {i}" for i in range(num_classes))
    return RestoredRun(
        run_id=run_id, checkpoint=checkpoint, path=path, model=model, device=dev, arch=arch, arch_options=options,
        dataset=dataset, dataset_options=data_options, data_root=data_root, input_shape=(c, h, w),
        num_classes=num_classes, classes=names, preprocessing=Preprocessing(c, (h, w), mean, std), config=config,
        epoch=int(state.get("epoch", 0)), state=state, workspace=store.workspace)


def _data_description(state: dict[str, Any], dataset: str, data_root: Path | None, options: dict[str, Any],
                      config: TrainConfig) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...]]:
    """Class names and normalisation: from the checkpoint, else (older checkpoints) from the data set."""
    if state.get("classes") is not None and state.get("mean") is not None and state.get("std") is not None:
        return (tuple(str(c) for c in state["classes"]), tuple(float(v) for v in state["mean"]),
                tuple(float(v) for v in state["std"]))
    from workbench.data import get_dataset, load_splits

    spec = get_dataset(dataset)
    if spec.kind == "folder":  # the folder's classes and measured mean/std: read the folder again
        spec = load_splits(dataset, root=data_root, seed=config.seed, val_fraction=config.val_fraction,
                           options=options).spec
    return spec.classes, tuple(spec.mean), tuple(spec.std)
