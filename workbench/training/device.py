"""Device selection, mixed precision, memory format, and the process-wide torch settings of a run."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from workbench.errors import InvalidOptionError, WorkbenchError
from workbench.training.config import TrainConfig


class DeviceUnavailableError(WorkbenchError):
    """The requested device does not exist on this machine."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device must exist (DeviceUnavailableError)."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InvalidOptionError(f"device must be auto, cpu, cuda, cuda:N or mps; got {name!r}.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"Device {name!r} is not available: no CUDA GPU was found; use --device cpu or auto.")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceUnavailableError(f"Device {name!r} is not available: this machine has {count} CUDA GPU(s) "
                                         f"(cuda:0..cuda:{count - 1}).")
    elif dev.type == "mps" and not _mps_available():
        raise DeviceUnavailableError(f"Device {name!r} is not available on this machine; use --device cpu or auto.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InvalidOptionError(f"device must be auto, cpu, cuda, cuda:N or mps; got {name!r}.")
    return dev


@dataclass(frozen=True)
class Precision:
    """Resolved mixed-precision and memory-format settings for one device."""

    amp: str                    # "off" | "bf16" | "fp16"
    channels_last: bool

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)

    @property
    def needs_scaler(self) -> bool:
        return self.amp == "fp16"

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """torch.autocast for the device, or a no-op context when AMP is off."""
        if self.amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def cuda_native_bf16(device: torch.device) -> bool:
    """True when this CUDA GPU computes in bf16 natively (compute capability 8.0+, Ampere and later).

    torch.cuda.is_bf16_supported() also answers True for GPUs that only emulate bf16 (slowly), so the
    capability of the chosen device itself decides.
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, _minor = torch.cuda.get_device_capability(index)
    return major >= 8


def resolve_precision(config: TrainConfig, device: torch.device) -> Precision:
    """auto AMP: bf16 on CUDA GPUs with native bf16, else fp16 (with a GradScaler); off elsewhere.

    auto channels-last: on for CUDA and CPU, off for MPS.
    """
    amp = config.amp
    if amp == "auto":
        amp = ("bf16" if cuda_native_bf16(device) else "fp16") if device.type == "cuda" else "off"
    elif amp == "fp16" and device.type == "cpu":
        raise InvalidOptionError("amp 'fp16' needs a GPU; use amp 'bf16' or 'off' on the CPU.")
    cl = config.channels_last
    # Channels-last pays on CPUs too: oneDNN's NHWC convolutions (backward above all) trained every native
    # model 1.1-1.5x faster on a 2-core x86 box (LeNet 1.5x); MPS stays off, unmeasured.
    channels_last = device.type in ("cuda", "cpu") if cl == "auto" else cl == "on"
    return Precision(amp=amp, channels_last=channels_last)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or a RuntimeError saying "out of memory" (MPS, older back ends)."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def device_label(device: torch.device) -> str:
    """Human-readable device, e.g. 'cuda:0 (NVIDIA H100)' or 'cpu'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


@contextlib.contextmanager
def determinism(config: TrainConfig, device: torch.device) -> Iterator[None]:
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


def seed_everything(seed: int) -> None:
    """Seed Python's, torch's and NumPy's global generators."""
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed)
