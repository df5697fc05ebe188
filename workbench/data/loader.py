"""Batches on the training device: index, augment, resize and normalise in a few batched tensor ops.

In-memory sources live once on the device as uint8; each epoch draws one permutation plus every sample's
crop offsets and flip from the caller's CPU `torch.Generator` (one transfer per epoch), so restoring that
generator's state reproduces the epoch bit for bit. Streaming sources go through a DataLoader and then the
same device-side augmentation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, default_collate

from workbench.data.sources import ImageSource, InMemoryImages
from workbench.errors import InvalidOptionError

_LUMA = (0.299, 0.587, 0.114)   # ITU-R 601, what PIL's convert("L") uses
# An in-memory set is resized/padded once into a uint8 store when that store is at most this big;
# larger ones (e.g. CIFAR at 224 px) are resized per batch instead.
PREPARED_BUDGET = 1 << 30


def _channel_stats(values: Sequence[float], channels: int, what: str) -> list[float]:
    vals = [float(v) for v in values]
    if len(vals) == channels:
        return vals
    if len(vals) == 1:
        return vals * channels
    if channels == 1 and len(vals) == 3:
        return [sum(v * w for v, w in zip(vals, _LUMA))]
    raise InvalidOptionError(f"{what} has {len(vals)} values but the model takes {channels} channels; "
                             "give one value per channel.")


class DeviceAugment:
    """The per-batch pipeline: channels → float/resize → crop with padding → flip → normalise.

    `pad` is in pixels of the output (model input) size; padding is black (0) as torchvision's RandomCrop.
    """

    def __init__(self, *, in_channels: int, in_size: tuple[int, int], channels: int, image_size: tuple[int, int],
                 mean: Sequence[float], std: Sequence[float], device: torch.device, pad: int = 0,
                 hflip: bool = False, channels_last: bool = False) -> None:
        if channels not in (1, 3) or in_channels not in (1, 3):
            raise InvalidOptionError(f"only 1- or 3-channel images are supported (got {in_channels} → {channels}).")
        if pad < 0:
            raise InvalidOptionError(f"crop_padding must be >= 0, got {pad}.")
        self.in_channels, self.channels = in_channels, channels
        self.in_size = (int(in_size[0]), int(in_size[1]))
        self.size = (int(image_size[0]), int(image_size[1]))
        if min(self.size) < 1:
            raise InvalidOptionError(f"image_size must be positive, got {image_size}.")
        self.device, self.pad, self.hflip, self.channels_last = device, int(pad), bool(hflip), channels_last
        m = torch.tensor(_channel_stats(mean, channels, "mean"), dtype=torch.float32)
        s = torch.tensor(_channel_stats(std, channels, "std"), dtype=torch.float32)
        if bool((s <= 0).any()):
            raise InvalidOptionError("std values must be positive.")
        # [1,C,1,1] stats: addcmul broadcasts a 1-channel batch to 3 channels for free (1→3 conversion).
        self.scale = (1.0 / (255.0 * s)).view(1, channels, 1, 1).to(device)
        self.shift = (-m / s).view(1, channels, 1, 1).to(device)
        self._luma = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1).to(device)
        self._rows = torch.arange(self.size[0], device=device)
        self._cols = torch.arange(self.size[1], device=device)

    def draws(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random crop offsets and flips for `n` samples, drawn on the CPU in a fixed order."""
        out: dict[str, torch.Tensor] = {}
        if self.pad > 0:
            out["oy"] = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
            out["ox"] = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        if self.hflip:
            out["flip"] = torch.randint(0, 2, (n,), generator=generator, dtype=torch.uint8).bool()
        return out

    @property
    def store_channels(self) -> int:
        """Channels kept in a prepared store (1→3 happens later, for free, in the normalisation)."""
        return 1 if self.channels == 1 else self.in_channels

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        """3→1 channel reduction and resize to the output size (uint8 passes through untouched if neither)."""
        if self.in_channels == 3 and self.channels == 1:
            x = (x.to(torch.float32) * self._luma).sum(dim=1, keepdim=True)
        if tuple(x.shape[-2:]) != self.size:
            down = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
            x = F.interpolate(x.to(torch.float32), size=self.size, mode="bilinear", align_corners=False,
                              antialias=down)
        return x

    def _finish(self, x: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
        if "flip" in draws:
            x = torch.where(draws["flip"].view(-1, 1, 1, 1), x.flip(3), x)
        x = torch.addcmul(self.shift, x.to(torch.float32), self.scale)   # (x/255 - mean) / std, 1→C broadcast
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    def __call__(self, x: torch.Tensor, draws: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """uint8 [B,C,h,w] on the device → normalised float32 [B,channels,H,W] (augmented if draws given)."""
        draws = draws or {}
        x = self._geometry(x)
        if "oy" in draws:
            p = self.pad
            x = self._gather(F.pad(x, (p, p, p, p)), torch.arange(x.shape[0], device=x.device),
                             draws["oy"], draws["ox"])
        return self._finish(x, draws)

    # --- prepared stores: the whole in-memory set resized and padded once, then one gather per batch ---

    def store_bytes(self, n: int) -> int:
        """Bytes of a prepared store for `n` images."""
        return n * self.store_channels * (self.size[0] + 2 * self.pad) * (self.size[1] + 2 * self.pad)

    def prepare(self, images: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """uint8 [N,C,h,w] → uint8 [N,C',H+2p,W+2p]: channel reduction, one batched resize per chunk, zero pad."""
        p, (h, w) = self.pad, self.size
        if p == 0 and tuple(images.shape[-2:]) == self.size and images.shape[1] == self.store_channels:
            return images
        out = torch.zeros((images.shape[0], self.store_channels, h + 2 * p, w + 2 * p), dtype=torch.uint8,
                          device=images.device)
        for i in range(0, images.shape[0], chunk):
            y = self._geometry(images[i:i + chunk])
            if y.is_floating_point():
                y = y.round_().clamp_(0, 255).to(torch.uint8)
            out[i:i + chunk, :, p:p + h, p:p + w] = y
        return out

    def from_store(self, store: torch.Tensor, idx: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
        """One batch from a prepared store: select + crop in a single gather, then flip and normalise."""
        p, (h, w) = self.pad, self.size
        if "oy" in draws:
            x = self._gather(store, idx, draws["oy"], draws["ox"])
        else:
            x = store.index_select(0, idx)
            if p:
                x = x[:, :, p:p + h, p:p + w]
        return self._finish(x, draws)

    def _gather(self, src: torch.Tensor, idx: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
        b, c = idx.shape[0], src.shape[1]
        rows = (oy.view(-1, 1) + self._rows).view(b, 1, -1, 1)
        cols = (ox.view(-1, 1) + self._cols).view(b, 1, 1, -1)
        ci = torch.arange(c, device=src.device).view(1, c, 1, 1)
        return src[idx.view(b, 1, 1, 1), ci, rows, cols]


def split_range(start: int, count: int, rank: int, world: int) -> tuple[int, int]:
    """This rank's contiguous part [lo, hi) of `count` items from `start`, split as evenly as possible (the first
    `count % world` ranks take one more)."""
    base, extra = divmod(count, world)
    lo = start + rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class BatchLoader:
    """Iterable of (x float32 [B,C,H,W] on device, y int64 [B] on device); `len()` = batches per epoch.

    `batch_size` is the global batch. With `shard=(rank, world)` (several training processes) every rank draws the
    same seeded permutation and augmentation and keeps its own slice of each global batch (training), or a
    contiguous block of the samples in batches of `batch_size // world` (validation, in order), so the processes
    together see exactly what one process would.
    """

    def __init__(self, source: ImageSource, *, batch_size: int, device: torch.device, train: bool,
                 augment: DeviceAugment, generator: torch.Generator, max_batches: int | None,
                 drop_last: bool, num_workers: int | None, shard: tuple[int, int] | None = None) -> None:
        if batch_size < 1:
            raise InvalidOptionError(f"batch_size must be >= 1, got {batch_size}.")
        if max_batches is not None and max_batches < 1:
            raise InvalidOptionError(f"max_batches must be >= 1, got {max_batches}.")
        rank, world = shard or (0, 1)
        if world < 1 or not 0 <= rank < world:
            raise InvalidOptionError(f"shard must be (rank, world) with 0 <= rank < world, got {shard}.")
        if batch_size % world:
            raise InvalidOptionError(f"batch_size {batch_size} does not split evenly over {world} processes; use a "
                                     f"multiple of {world}.")
        self.source, self.batch_size, self.device, self.train = source, batch_size, device, train
        self.augment, self.generator = augment, generator
        self.max_batches, self.drop_last = max_batches, drop_last
        self.rank, self.world = rank, world
        self.num_samples = len(source)  # type: ignore[arg-type]
        self.num_workers = num_workers if num_workers is not None else min(4, os.cpu_count() or 1)
        self.unreadable = 0  # streamed images that could not be decoded any more (dropped from their batches)

    def __len__(self) -> int:
        n, bs = self.num_samples, self.batch_size
        if not self.train and self.world > 1:
            lo, hi = split_range(0, n, self.rank, self.world)
            return math.ceil((hi - lo) / (bs // self.world))
        batches = n // bs if self.drop_last else math.ceil(n / bs)
        if self.world > 1 and not self.drop_last and 0 < n % bs < self.world:
            batches -= 1  # a last global batch smaller than the process count would leave a process without data
        return batches if self.max_batches is None else min(batches, self.max_batches)

    def batch_slices(self) -> Iterator[tuple[int, int, int, int]]:
        """(lo, hi, g0, g1) per batch: this rank's positions [lo, hi) in the epoch's order and its global batch's
        [g0, g1) (training; for validation the global batch is the rank's own)."""
        n, bs = self.num_samples, self.batch_size
        if not self.train and self.world > 1:
            start, end = split_range(0, n, self.rank, self.world)
            local = bs // self.world
            for b in range(len(self)):
                lo = start + b * local
                yield lo, min(lo + local, end), lo, min(lo + local, end)
            return
        for b in range(len(self)):
            g0, g1 = b * bs, min((b + 1) * bs, n)
            lo, hi = split_range(g0, g1 - g0, self.rank, self.world)
            yield lo, hi, g0, g1

    def batch_share(self, index: int) -> float:
        """This rank's fraction of training batch `index` (1.0 in one process)."""
        if self.world == 1:
            return 1.0
        g0, g1 = index * self.batch_size, min((index + 1) * self.batch_size, self.num_samples)
        lo, hi = split_range(g0, g1 - g0, self.rank, self.world)
        return (hi - lo) / max(1, g1 - g0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if isinstance(self.source, InMemoryImages):
            return self._iter_memory(self.source)
        return self._iter_stream()

    def _iter_memory(self, source: InMemoryImages) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images, labels = source.on(self.device)
        aug = self.augment
        store = None
        if aug.store_bytes(len(source)) <= PREPARED_BUDGET:
            key = ("prepared", str(self.device), aug.size, aug.pad, aug.store_channels)
            store = source.cached(key, lambda: aug.prepare(images))
        n = self.num_samples
        if self.train:
            order = torch.randperm(n, generator=self.generator)
            draws = aug.draws(n, self.generator)
        else:
            order, draws = torch.arange(n), {}
        order = order.to(self.device, non_blocking=True)
        draws = {k: v.to(self.device, non_blocking=True) for k, v in draws.items()}
        for lo, hi, _, _ in self.batch_slices():
            sl = slice(lo, hi)
            idx = order[sl]
            bd = {k: v[sl] for k, v in draws.items()}
            x = aug.from_store(store, idx, bd) if store is not None else aug(images.index_select(0, idx), bd)
            yield x, labels.index_select(0, idx)

    def _iter_stream(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        slices = list(self.batch_slices())
        sampler = _SliceSampler(self.num_samples, [(lo, hi) for lo, hi, _, _ in slices],
                                self.generator if self.train else None)
        loader = DataLoader(self.source, batch_sampler=sampler, num_workers=self.num_workers,
                            generator=self.generator, pin_memory=self.device.type == "cuda",
                            persistent_workers=False, collate_fn=_collate_readable)
        for (lo, hi, g0, g1), (batch, lost) in zip(slices, loader):
            self.unreadable += lost
            # Every rank draws the whole global batch's augmentation (same stream in any process count) and
            # keeps its part; a batch that lost unreadable images keeps the first draws of its part.
            draws = self.augment.draws(g1 - g0, self.generator) if self.train else {}
            if batch is None:  # every image of this batch became unreadable after the scan
                continue
            x, y = batch
            draws = {k: v[lo - g0:hi - g0][:x.shape[0]].to(self.device, non_blocking=True) for k, v in draws.items()}
            x = x.to(self.device, non_blocking=True)
            yield self.augment(x, draws), torch.as_tensor(y, dtype=torch.int64).to(self.device, non_blocking=True)


class _SliceSampler(Sampler[list[int]]):
    """Index lists of a streaming epoch: the epoch's order (a permutation drawn from `generator` when the epoch
    starts, else the natural order) cut at the given positions."""

    def __init__(self, n: int, slices: list[tuple[int, int]], generator: torch.Generator | None) -> None:
        self.n, self.slices, self.generator = n, slices, generator

    def __len__(self) -> int:
        return len(self.slices)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist() if self.generator is not None else None
        for lo, hi in self.slices:
            yield order[lo:hi] if order is not None else list(range(lo, hi))


def _collate_readable(samples: list[Any]) -> tuple[Any, int]:
    """(default_collate over the samples a streaming source could decode — it gives None for the others — or None
    when none could be, and how many could not)."""
    kept = [s for s in samples if s is not None]
    return (default_collate(kept) if kept else None), len(samples) - len(kept)


def _source_shape(source: ImageSource) -> tuple[int, tuple[int, int]]:
    if isinstance(source, InMemoryImages):
        return source.channels, source.size
    if hasattr(source, "channels") and hasattr(source, "size"):
        return int(source.channels), tuple(source.size)
    x, _ = source[0]
    return int(x.shape[0]), (int(x.shape[1]), int(x.shape[2]))


def make_loader(source: ImageSource, *, batch_size: int, device: torch.device | str, train: bool,
                image_size: tuple[int, int] | int, channels: int, mean: Sequence[float], std: Sequence[float],
                crop_padding: int = 0, hflip: bool = False, channels_last: bool = False,
                generator: torch.Generator, max_batches: int | None = None, drop_last: bool = False,
                num_workers: int | None = None, shard: tuple[int, int] | None = None) -> BatchLoader:
    """A loader yielding normalised float batches on `device` (see module docstring).

    With `train=False` there is no shuffle and no augmentation, and `generator` is not consumed.
    `mean`/`std` (0..1 scale) may have one value or one per channel. `num_workers` is used by
    streaming sources only (default min(4, CPUs)). `shard=(rank, world)`: this process's part of every
    global batch of `batch_size` (see BatchLoader).
    """
    dev = torch.device(device)
    size = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    in_c, in_size = _source_shape(source)
    augment = DeviceAugment(in_channels=in_c, in_size=in_size, channels=channels, image_size=size, mean=mean,
                            std=std, device=dev, pad=crop_padding if train else 0, hflip=hflip and train,
                            channels_last=channels_last)
    return BatchLoader(source, batch_size=batch_size, device=dev, train=train, augment=augment,
                       generator=generator, max_batches=max_batches, drop_last=drop_last, num_workers=num_workers,
                       shard=shard)
