"""Running a restored run's model the way it was validated: precision, memory format and preprocessing.

Shared by evaluate, predict and Grad-CAM. A user's image file goes through the run's own pipeline: decoded by
the data layer (`workbench.data.folder.decode`: any PIL mode or bit depth) into the data set's stored channels
(and, for image folders, its stored size), then through the very `make_loader(train=False)` the run validated
with (channel conversion, bilinear resize, normalisation) — so a file holding a validation image gives the same
tensor the validation loader gave.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import InvalidOptionError
from workbench.training.restore import RestoredRun, restore_run


class UnreadableImageError(InvalidOptionError):
    """An image file that is missing or that PIL cannot decode."""


def resolve_run(run: str | RestoredRun, *, workspace: Path | str | None = None, checkpoint: str = "best",
                device: str | torch.device | None = None) -> RestoredRun:
    """`run` itself when already restored, else `restore_run(run, ...)` (device None: the CPU)."""
    if isinstance(run, RestoredRun):
        return run
    return restore_run(run, workspace=workspace, checkpoint=checkpoint, device=device or "cpu")


def inference_precision(restored: RestoredRun) -> Any:
    """The run's `Precision` on the restored device: its AMP setting where that device supports it (fp16 is
    GPU-only, so off on the CPU) and channels-last as in training."""
    from workbench.training.device import resolve_precision

    config = restored.config
    if restored.device.type != "cuda" and config.amp == "fp16":
        config = config.replace(amp="off")
    return resolve_precision(config, restored.device)


_PREPARED: weakref.WeakKeyDictionary[nn.Module, Any] = weakref.WeakKeyDictionary()


def prepare_model(restored: RestoredRun) -> Any:
    """Put the model in eval mode and in training's memory format (once per model); returns the `Precision`
    to run it with."""
    model = restored.model
    model.eval()
    precision = _PREPARED.get(model)
    if precision is None:
        precision = inference_precision(restored)
        if precision.channels_last:
            model.to(memory_format=torch.channels_last)
        _PREPARED[model] = precision
    return precision


@dataclass(frozen=True)
class SourceFormat:
    """How an image file is decoded before the loader sees it: like the run's stored training images."""

    mode: str                          # "L" or "RGB": the data set's stored channels
    size: tuple[int, int] | None       # (H, W) image folders were decoded at; None: keep the file's size


def source_format(restored: RestoredRun) -> SourceFormat:
    """The stored channels (and image-folder size) of the run's data set, from its checkpoint or spec."""
    from workbench.data import get_dataset

    state, options = restored.state, restored.dataset_options
    channels: Any = state.get("data_channels")
    size: Any = state.get("data_size")
    spec = get_dataset(restored.dataset)
    if spec.kind == "folder":
        channels = channels or options.get("channels") or restored.input_shape[0]
        if size is None and "image_size" in options:
            value = options["image_size"]
            size = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    elif channels is None:
        shape = options.get("image_shape")
        channels = shape[0] if shape else spec.channels
    mode = "L" if int(channels) == 1 else "RGB"
    return SourceFormat(mode=mode, size=(int(size[0]), int(size[1])) if size else None)


def read_image(path: Path | str, fmt: SourceFormat) -> np.ndarray:
    """uint8 [C, H, W] of an image file; UnreadableImageError naming the file when it cannot be decoded."""
    from workbench.data.folder import decode

    p = Path(path).expanduser()
    if not p.is_file():
        raise UnreadableImageError(f"Image {p} does not exist (or is not a file).")
    arr = decode(p, fmt.mode, fmt.size)
    if arr is None:
        raise UnreadableImageError(f"Cannot read image {p}: not an image format PIL can decode, or the file is "
                                   "damaged.")
    return arr


def _through_loader(restored: RestoredRun, image: np.ndarray | torch.Tensor, mean: Sequence[float],
                    std: Sequence[float]) -> torch.Tensor:
    from workbench.data import InMemoryImages, make_loader

    x = torch.as_tensor(image, dtype=torch.uint8)
    if x.dim() == 2:
        x = x[None]
    p = restored.preprocessing
    source = InMemoryImages(x[None].contiguous(), torch.zeros(1, dtype=torch.int64))
    loader = make_loader(source, batch_size=1, device=restored.device, train=False, image_size=p.image_size,
                         channels=p.channels, mean=mean, std=std, generator=torch.Generator())
    batch, _ = next(iter(loader))
    return batch


def preprocess(restored: RestoredRun, images: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
    """Stored-format uint8 images ([C, h, w], any sizes) → the model's normalised float32 batch [B, C, H, W]."""
    p = restored.preprocessing
    if not images:
        return torch.empty((0, p.channels, *p.image_size), device=restored.device)
    return torch.cat([_through_loader(restored, im, p.mean, p.std) for im in images])


def model_view(restored: RestoredRun, image: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 [H, W, C] of what the model sees (the run's channels and size), before normalisation."""
    x = _through_loader(restored, image, (0.0,), (1.0 / 255.0,))[0]
    return x.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def load_images(restored: RestoredRun, paths: Sequence[Path | str]) -> list[np.ndarray]:
    """Each file decoded into the run's stored format (uint8 [C, h, w]); the first unreadable one raises."""
    fmt = source_format(restored)
    return [read_image(p, fmt) for p in paths]


def forward_logits(restored: RestoredRun, x: torch.Tensor, precision: Any | None = None) -> torch.Tensor:
    """float32 [B, K] main-output logits of a preprocessed batch (inference mode, the run's precision)."""
    from workbench.models import split_outputs

    precision = precision or prepare_model(restored)
    if precision.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), precision.autocast(restored.device):
        main, _ = split_outputs(restored.model(x))
    return main.float()
