"""Data sets that need no files: the bundled UCI `digits` and torchvision's synthetic `fake`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.data.options import MAX_IMAGE_SIDE, MAX_IN_MEMORY_BYTES, int_option, ints_option
from workbench.data.registry import (
    Cancel,
    DataFacts,
    DataOption,
    DatasetSpec,
    register_dataset,
    spec_facts,
    split_sizes,
)
from workbench.data.sources import DataSplits, InMemoryImages, Progress, stratified_split
from workbench.errors import DataUnavailableError, InvalidOptionError

DIGITS = DatasetSpec(
    name="digits",
    title="Digits (UCI, bundled)",
    description="1,797 real handwritten digits, 8x8 gray, from the UCI data set scikit-learn ships as "
                "load_digits. Bundled: works offline.",
    classes=tuple(str(i) for i in range(10)),
    channels=1, size=(8, 8),
    mean=(0.3053,), std=(0.3759,),
    hflip=False, kind="bundled", crop_padding=2,
    train_size=1618, val_size=179,   # with the default val_fraction 0.1 (per-class rounding)
)

FAKE = DatasetSpec(
    name="fake",
    title="FakeData (synthetic)",
    description="torchvision's FakeData: random images with random labels, for speed benchmarks only.",
    classes=tuple(str(i) for i in range(10)),
    channels=3, size=(32, 32),
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    hflip=True, kind="synthetic", crop_padding=4,
    train_size=5000, val_size=1000,
    options=(
        DataOption("train_size", 5000, "images in the training split", allowed="a whole number >= 1"),
        DataOption("val_size", 1000, "images in the validation split", allowed="a whole number >= 0"),
        DataOption("image_shape", (3, 32, 32), "(C, H, W) of the generated images; C is 1 or 3",
                   allowed="three whole numbers (C, H, W) with C 1 or 3"),
        DataOption("num_classes", 10, "number of random labels", allowed="a whole number >= 1"),
    ),
)


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    from workbench.paths import resource

    path = resource("data", "digits.npz")
    if not path.is_file():
        raise DataUnavailableError(f"The bundled digits file is missing ({path}); reinstall CNN Workbench.")
    with np.load(path, allow_pickle=False) as data:
        images = torch.from_numpy(data["images"].copy()).unsqueeze(1)   # [N, 1, 8, 8]
        labels = torch.from_numpy(data["labels"].astype(np.int64))
    return images, labels


class _LocalBackend:
    """A data set that is always present (shipped or generated): nothing to find or download."""

    def availability(self, spec: DatasetSpec, root: Path | None) -> str:
        return "bundled"

    def facts(self, spec: DatasetSpec, root: Path | None, *, val_fraction: float, options: Mapping[str, Any],
              progress: Progress | None, cancel: Cancel | None) -> DataFacts:
        return spec_facts(spec)

    def download(self, spec: DatasetSpec, root: Path, progress: Progress | None,
                 cancel: Callable[[], bool] | None) -> None:
        return None


class DigitsBackend(_LocalBackend):
    """Reads resources/data/digits.npz; split per class with a fixed seed."""

    def facts(self, spec: DatasetSpec, root: Path | None, *, val_fraction: float, options: Mapping[str, Any],
              progress: Progress | None, cancel: Cancel | None) -> DataFacts:
        _, labels = _digits_arrays()
        counts = {int(c): int(n) for c, n in zip(*torch.unique(labels, return_counts=True))}
        train, val = split_sizes(counts, val_fraction)
        return DataFacts(spec.name, spec.classes, spec.channels, spec.size, train, val)

    def load(self, spec: DatasetSpec, root: Path | None, *, download: bool, seed: int, val_fraction: float,
             progress: Progress | None, options: Mapping[str, Any]) -> DataSplits:
        spec.check_option_names(options)
        images, labels = _digits_arrays()
        train_idx, val_idx = stratified_split(labels, val_fraction, seed)
        full = InMemoryImages(images, labels)
        if progress is not None:
            progress(len(full), len(full))
        return DataSplits(spec=spec, classes=spec.classes, train=full.subset(train_idx),
                          val=full.subset(val_idx), skipped=0)


def _fake_images(count: int, shape: tuple[int, int, int], num_classes: int, offset: int) -> InMemoryImages:
    """torchvision's FakeData, item for item, materialised as one uint8 tensor.

    FakeData seeds the global generator with `index + random_offset`, draws `randn(shape)` and one
    `randint` label, and ToPILImage turns the floats into bytes with `mul(255).byte()`. We replay exactly
    that with a private generator (no PIL round trip, global RNG untouched): ~12x faster, same bytes
    (tests compare with torchvision.datasets.FakeData).
    """
    floats = torch.empty((count, *shape), dtype=torch.float32)
    labels = torch.empty(count, dtype=torch.int64)
    gen = torch.Generator()
    for i in range(count):
        gen.manual_seed(i + offset)
        floats[i] = torch.randn(shape, generator=gen)
        labels[i] = torch.randint(0, num_classes, size=(1,), dtype=torch.long, generator=gen)[0]
    return InMemoryImages(floats.mul_(255).byte(), labels)


def _fake_params(spec: DatasetSpec, options: Mapping[str, Any]) -> tuple[int, int, tuple[int, int, int], int]:
    """(train size, val size, (C, H, W), classes) from fake's options, validated."""
    spec.check_option_names(options)
    n_train = int_option(options, "train_size", spec.train_size or 5000, "fake")
    n_val = int_option(options, "val_size", spec.val_size or 1000, "fake")
    shape = ints_option(options, "image_shape", (spec.channels, *spec.size), "fake", 3, high=MAX_IMAGE_SIDE)
    n_cls = int_option(options, "num_classes", len(spec.classes), "fake", high=100_000)
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1 or n_train < 1 or n_val < 0 or n_cls < 1:
        raise InvalidOptionError("fake needs image_shape (C,H,W) with C 1 or 3, train_size >= 1, "
                                 "val_size >= 0 and num_classes >= 1.")
    needed = (n_train + n_val) * shape[0] * shape[1] * shape[2]
    if needed > MAX_IN_MEMORY_BYTES:
        raise InvalidOptionError(
            f"fake with {n_train + n_val:,} images of {shape[0]}x{shape[1]}x{shape[2]} would hold {needed / 1e9:.1f} "
            f"GB in memory, over the limit of {MAX_IN_MEMORY_BYTES / 1e9:.1f} GB; lower train_size, val_size or "
            "image_shape.")
    return n_train, n_val, (shape[0], shape[1], shape[2]), n_cls


class FakeBackend(_LocalBackend):
    """torchvision FakeData, materialised once into memory (train and val use different offsets)."""

    def facts(self, spec: DatasetSpec, root: Path | None, *, val_fraction: float, options: Mapping[str, Any],
              progress: Progress | None, cancel: Cancel | None) -> DataFacts:
        n_train, n_val, shape, n_cls = _fake_params(spec, options)
        return DataFacts(spec.name, tuple(str(i) for i in range(n_cls)), shape[0], (shape[1], shape[2]),
                         n_train, n_val)

    def load(self, spec: DatasetSpec, root: Path | None, *, download: bool, seed: int, val_fraction: float,
             progress: Progress | None, options: Mapping[str, Any]) -> DataSplits:
        n_train, n_val, shape3, n_cls = _fake_params(spec, options)
        base = seed * 10_000_000
        train = _fake_images(n_train, shape3, n_cls, base)
        if progress is not None:
            progress(n_train, n_train + n_val)
        val = _fake_images(n_val, shape3, n_cls, base + n_train)
        if progress is not None:
            progress(n_train + n_val, n_train + n_val)
        classes = tuple(str(i) for i in range(n_cls))
        return DataSplits(spec=spec, classes=classes, train=train, val=val, skipped=0)


register_dataset(DIGITS, DigitsBackend())
register_dataset(FAKE, FakeBackend())
