"""Image sources shared by every data set: in-memory uint8 tensors or streaming torch Datasets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from workbench.data.registry import DatasetSpec

Progress = Callable[[int, int], None]


class InMemoryImages(Dataset):
    """A whole split as one uint8 tensor `[N, C, H, W]` (CPU) plus int64 labels `[N]`.

    `on(device)` returns the images moved to `device` once and cached, so several loaders (or epochs)
    share a single device copy.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, paths: Sequence[str] | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N,C,H,W], got {images.dtype} {tuple(images.shape)}")
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError("labels must be a 1-D tensor with one label per image")
        if paths is not None and len(paths) != images.shape[0]:
            raise ValueError("paths must name one file per image")
        self.images = images.contiguous()
        self.labels = labels.to(torch.int64)
        # The file each image was decoded from (image folders); None for packaged sets.
        self.paths: tuple[str, ...] | None = tuple(str(p) for p in paths) if paths is not None else None
        self._device_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._derived: dict[Any, torch.Tensor] = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def channels(self) -> int:
        """Number of channels C."""
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """Image size (H, W)."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def nbytes(self) -> int:
        """Bytes held by the images."""
        return self.images.numel()

    def on(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) on `device`, copied once and cached."""
        dev = torch.device(device)
        key = str(dev)
        if key not in self._device_cache:
            if dev.type == "cpu":
                self._device_cache[key] = (self.images, self.labels)
            else:
                self._device_cache[key] = (self.images.to(dev), self.labels.to(dev))
        return self._device_cache[key]

    def cached(self, key: Any, build: Callable[[], torch.Tensor], keep: int = 2) -> torch.Tensor:
        """A derived tensor (e.g. a resized, padded device copy) built once per `key`; keeps the newest few."""
        if key not in self._derived:
            while len(self._derived) >= keep:
                self._derived.pop(next(iter(self._derived)))
            self._derived[key] = build()
        return self._derived[key]

    def subset(self, indices: torch.Tensor) -> InMemoryImages:
        """A new source with the given rows (a copy); file paths follow their images."""
        paths = [self.paths[i] for i in indices.tolist()] if self.paths is not None else None
        return InMemoryImages(self.images[indices], self.labels[indices], paths=paths)


class StreamingImages(Dataset):
    """Base class of sources decoded on the fly; items are (uint8 [C,H,W], int) of one common size."""

    channels: int
    size: tuple[int, int]


ImageSource = InMemoryImages | StreamingImages | Dataset


def sample_sources(source: ImageSource, name: str) -> list[str]:
    """Where each sample of a split came from: its file path (image folders, in memory or streamed), else
    `name[index]` with the index into the split (packaged sets; torchvision sets: the official test split)."""
    paths = getattr(source, "paths", None)
    if paths is None:
        files = getattr(source, "files", None)
        paths = [str(f) for f in files] if files is not None else None
    if paths is not None:
        return list(paths)
    return [f"{name}[{i}]" for i in range(len(source))]  # type: ignore[arg-type]


@dataclass
class DataSplits:
    """A data set's train and validation sources, ready for `make_loader`."""

    spec: DatasetSpec
    classes: tuple[str, ...]
    train: ImageSource
    val: ImageSource
    skipped: int = 0
    # Extra facts for the front ends (e.g. {"train_from": "train/", "streaming": False}).
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def channels(self) -> int:
        """Channels of the stored images."""
        return int(getattr(self.train, "channels", self.spec.channels))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the stored images."""
        return tuple(getattr(self.train, "size", self.spec.size))


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-class split: returns (train indices, val indices), each sorted.

    Every class keeps at least one training image; a class with two or more images gives at least one to
    validation when `val_fraction` > 0.
    """
    if not 0.0 <= val_fraction < 1.0:
        from workbench.errors import InvalidOptionError

        raise InvalidOptionError(f"val_fraction must be in [0, 1), got {val_fraction}; pick e.g. 0.1.")
    gen = torch.Generator().manual_seed(seed)
    train_parts: list[torch.Tensor] = []
    val_parts: list[torch.Tensor] = []
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls, as_tuple=False).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        n_val = round(idx.numel() * val_fraction)
        if val_fraction > 0 and idx.numel() >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, idx.numel() - 1)
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    train = torch.sort(torch.cat(train_parts)).values if train_parts else torch.empty(0, dtype=torch.long)
    val = torch.sort(torch.cat(val_parts)).values if val_parts else torch.empty(0, dtype=torch.long)
    return train, val
