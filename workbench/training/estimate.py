"""What a run will cost before it starts: memory on the device, time per epoch, the largest batch that fits.

Memory is arithmetic on the model summary's totals (`workbench.models.summary.Totals`, torchinfo's counts at a
batch of one image), in bytes, fp32:

- weights: `Totals.params_mb` (every parameter, 4 bytes each);
- gradients: one fp32 value per trainable parameter;
- optimizer state: SGD with momentum keeps one buffer per trainable parameter, SGD without momentum none,
  Adam/AdamW two (first and second moments);
- activations: batch × `Totals.forward_backward_mb` (torchinfo: the outputs of every layer with weights, ×2 for
  their gradients). Outputs of weightless layers (ReLU, pooling), autograd's own saved tensors and the
  framework's workspace are not counted, so the real peak is higher; a 10 % reserve is kept when sizing a batch;
- the input batch: batch × `Totals.input_size_mb`.

Time comes from measuring: a few real training steps (forward, loss, backward, optimizer step) of the
architecture at the chosen input on the chosen device (`measure_step_time`, cached per architecture, options,
input, batch, device and precision). On a CPU a large network is timed at a smaller batch (at most
`CPU_STEP_MACS` Mult-Adds per step) and scaled per image. An epoch is its training images × the measured
seconds per image, plus validation counted as a third of that per image (a forward pass without backward).

Only `measure_step_time`, `free_memory` and `device_name` import torch (inside the functions).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.models.summary import Totals
    from workbench.training.config import TrainConfig

MB = 1_000_000                 # torchinfo's megabyte
FLOAT_BYTES = 4
RESERVE = 0.10                 # share of free memory kept back when sizing the largest batch
VAL_COST = 1 / 3               # a validation image costs a third of a training image (forward only)
# A timed CPU step does at most this many Mult-Adds (then per-image scaling): about a second of a 2-core CPU. Small
# batches are inefficient on a CPU (ResNet-18 at 32x32 ran 5-9x slower per image at batch 3 than at 32), so the
# cap is only there to keep a VGG-sized network's timing within seconds.
CPU_STEP_MACS = 20_000_000_000
WARMUP_STEPS = 1
TIMED_STEPS = 3                # at least this many timed steps ...
MIN_TIMED_SECONDS = 0.5        # ... and more until they took this long (a busy machine's noise averages out)
MAX_TIMED_STEPS = 50

Clock = Callable[[], float]
# Held by whoever trains or times steps on the device in this process (the app's run, its timing, the LR finder):
# a timing taken beside a run would be wrong, and building a model draws from torch's global generator, which two
# threads must not interleave (a run's weights would no longer follow its seed).
DEVICE_LOCK = threading.Lock()


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training step holds on the device at `batch_size` (see the module docstring for what counts)."""

    batch_size: int
    weights: int
    gradients: int
    optimizer_state: int
    activations_per_image: int
    input_per_image: int

    @property
    def fixed(self) -> int:
        """What does not grow with the batch: weights, gradients, optimizer state."""
        return self.weights + self.gradients + self.optimizer_state

    @property
    def per_image(self) -> int:
        """What each image of the batch adds: its activations and its input."""
        return self.activations_per_image + self.input_per_image

    @property
    def activations(self) -> int:
        return self.batch_size * self.activations_per_image

    @property
    def inputs(self) -> int:
        return self.batch_size * self.input_per_image

    @property
    def total(self) -> int:
        return self.fixed + self.batch_size * self.per_image


def optimizer_buffers(optimizer: str, momentum: float = 0.0) -> int:
    """fp32 buffers per trainable parameter the optimizer keeps: Adam/AdamW 2, SGD with momentum 1, plain SGD 0."""
    if optimizer in ("adam", "adamw"):
        return 2
    return 1 if momentum > 0 else 0


def memory_estimate(totals: Totals, batch_size: int, optimizer: str = "sgd", momentum: float = 0.9,
                    area_scale: float = 1.0, input_shape: tuple[int, ...] | None = None) -> MemoryEstimate:
    """Memory of one training step from a summary's totals (computed at one image). `area_scale` scales the
    activations when training runs at another input size than the summary's (new area / summary area); with
    `input_shape` (C, H, W) the input batch is counted exactly (the summary rounds it to 10 kB)."""
    trainable = int(totals.trainable_params) * FLOAT_BYTES
    image = FLOAT_BYTES * math.prod(input_shape) if input_shape else round(totals.input_size_mb * MB * area_scale)
    return MemoryEstimate(
        batch_size=max(1, int(batch_size)),
        weights=round(totals.params_mb * MB),
        gradients=trainable,
        optimizer_state=optimizer_buffers(optimizer, momentum) * trainable,
        activations_per_image=round(totals.forward_backward_mb * MB * area_scale),
        input_per_image=image,
    )


def max_batch_size(estimate: MemoryEstimate, free_bytes: int, reserve: float = RESERVE) -> int:
    """The largest batch whose step fits in `free_bytes` less the reserve (0: not even one image fits)."""
    budget = free_bytes * (1.0 - reserve) - estimate.fixed
    if budget < max(1, estimate.per_image):
        return 0
    return int(budget // max(1, estimate.per_image))


# --- the device --------------------------------------------------------------------------------------------


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_ram() -> int | None:
    """Bytes of RAM available to a new allocation (MemAvailable on Linux, free pages elsewhere), None if unknown."""
    found = _meminfo_available()
    if found is not None:
        return found
    import os

    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def resolve_device_name(name: str) -> str:
    """"auto" as the engine resolves it ("cuda:0", "mps" or "cpu"); other names as given."""
    from workbench.training.device import resolve_device

    dev = resolve_device(name)
    if dev.type == "cuda":
        import torch

        return f"cuda:{dev.index if dev.index is not None else torch.cuda.current_device()}"
    return str(dev)


def free_memory(device: str) -> int | None:
    """Free bytes on a resolved device: CUDA `torch.cuda.mem_get_info`, CPU available RAM; None when unknown (MPS)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if device == "cpu":
        return available_ram()
    return None


def device_name(device: str) -> str:
    """"this CPU", "this GPU (NVIDIA H200)", "this Mac's GPU"."""
    if device.startswith("cuda"):
        import torch

        return f"this GPU ({torch.cuda.get_device_name(torch.device(device))})"
    return "this Mac's GPU" if device == "mps" else "this CPU"


# --- time --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepTiming:
    """Timed training steps: `steps` steps of `batch_size` images took `seconds` in all (warm-up excluded)."""

    device: str
    batch_size: int
    steps: int
    seconds: float
    peak_bytes: int | None = None   # CUDA: the allocator's peak during the timed steps

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(1, self.steps)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds_per_step / max(1, self.batch_size)


@dataclass(frozen=True)
class EpochEstimate:
    """One epoch's time from a measured step: training images × s/image, plus validation at VAL_COST."""

    train_steps: int
    train_images: int
    val_images: int
    train_seconds: float
    val_seconds: float

    @property
    def seconds(self) -> float:
        return self.train_seconds + self.val_seconds


def measurement_batch(batch_size: int, mult_adds_per_image: int, device: str) -> int:
    """The batch to time: the run's own on an accelerator; on a CPU at most CPU_STEP_MACS Mult-Adds per step."""
    batch = max(1, int(batch_size))
    if device != "cpu" or mult_adds_per_image <= 0:
        return batch
    return max(1, min(batch, CPU_STEP_MACS // int(mult_adds_per_image)))


def epoch_estimate(timing: StepTiming, train_size: int, val_size: int, batch_size: int,
                   max_batches: int | None = None) -> EpochEstimate:
    """Time of one epoch of `train_size` training and `val_size` validation images at the run's batch size."""
    batch = max(1, int(batch_size))
    steps = math.ceil(max(0, train_size) / batch)
    if max_batches:
        steps = min(steps, int(max_batches))
    images = min(max(0, train_size), steps * batch)
    per_image = timing.seconds_per_image
    return EpochEstimate(steps, images, max(0, val_size), images * per_image, max(0, val_size) * per_image * VAL_COST)


def format_duration(seconds: float) -> str:
    """"under a second", "about 12 s", "about 40 min", "about 3.5 h"."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def format_bytes(n: float) -> str:
    """Decimal units as torchinfo prints them: "850 kB", "12.3 MB", "1.52 GB"."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n:.0f} B"


TimingKey = tuple[Any, ...]
_cache: dict[TimingKey, StepTiming] = {}
_cache_lock = threading.Lock()


def timing_key(arch: str, options: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int,
               batch_size: int, config: TrainConfig) -> TimingKey:
    """What a step's time depends on: architecture, options, input, classes, batch, device and precision."""
    return (arch, repr(sorted(options.items())), tuple(input_shape), int(num_classes), int(batch_size),
            config.device, config.optimizer, config.amp, config.channels_last, config.compile)


def cached_timing(key: TimingKey) -> StepTiming | None:
    """A measurement made earlier in this process for the same key."""
    with _cache_lock:
        return _cache.get(key)


def clear_timing_cache() -> None:
    with _cache_lock:
        _cache.clear()


def measure_step_time(arch: str, options: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int,
                      batch_size: int, config: TrainConfig, *, warmup_steps: int = WARMUP_STEPS,
                      steps: int = TIMED_STEPS, min_seconds: float = MIN_TIMED_SECONDS,
                      max_steps: int = MAX_TIMED_STEPS, clock: Clock = time.perf_counter,
                      cancelled: Callable[[], bool] | None = None, use_cache: bool = True) -> StepTiming:
    """Time training steps of `arch` on random images of `input_shape` at `batch_size`, on `config.device` with the
    run's optimizer, precision and memory format: `warmup_steps` untimed, then at least `steps` timed ones and
    more until they took `min_seconds` in all (at most `max_steps`). The clock is read before and after each timed
    step (after the device finished it). Cached per `timing_key` (pass the batch from `measurement_batch`)."""
    key = timing_key(arch, options, input_shape, num_classes, batch_size, config)
    if use_cache and (hit := cached_timing(key)) is not None:
        return hit
    import torch
    from torch import nn

    from workbench.models import build_model, split_outputs
    from workbench.training.device import resolve_device, resolve_precision, seed_everything
    from workbench.training.optim import build_optimizer

    device = resolve_device(config.device)
    precision = resolve_precision(config, device)
    seed_everything(config.seed)
    model = build_model(arch, num_classes=num_classes, input_shape=input_shape, options=options, device=device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    gen = torch.Generator().manual_seed(config.seed)
    x = torch.randn((batch_size, *input_shape), generator=gen).to(device)
    if precision.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen).to(device)
    loss_fn = nn.CrossEntropyLoss()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elif device.type == "mps":
            torch.mps.synchronize()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast(device):
            main, aux = split_outputs(model(x))
            loss = loss_fn(main, y)
            for head in aux:  # GoogLeNet's auxiliary heads, weighted as the trainer weights them
                loss = loss + config.aux_weight * loss_fn(head, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        sync()

    for _ in range(max(0, warmup_steps)):
        if cancelled is not None and cancelled():
            break
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    total, done, wanted = 0.0, 0, max(1, steps)
    while done < wanted or (total < min_seconds and done < max_steps):
        if cancelled is not None and cancelled() and done:
            break
        start = clock()
        step()
        total += clock() - start
        done += 1
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    label = f"cuda:{device.index or 0}" if device.type == "cuda" else str(device)
    timing = StepTiming(label, int(batch_size), done, total, peak)
    if use_cache and not (cancelled is not None and cancelled()):
        with _cache_lock:
            _cache[key] = timing
    return timing
