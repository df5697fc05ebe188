"""Dry forward passes: materialise lazy layers and turn a vanishing feature map into a clear error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from workbench.errors import InputTooSmallError, WorkbenchError

# Messages PyTorch raises when a spatial size drops below a kernel / to zero.
_SIZE_PATTERNS = re.compile(
    r"too small|Kernel size can't be greater|non-positive|negative|Given input size|"
    r"output size is too small|Output size is too small|pad should be|Expected .* spatial|"
    r"must be divisible|"
    r"Wrong image height|Wrong image width|Expected \(batch_size",
    re.IGNORECASE,
)


def set_summary_mode(model: nn.Module) -> None:
    """Containers in train mode, leaf layers in eval mode.

    Train-only branches (GoogLeNet's aux heads) then run, while batch norm uses running statistics (no
    batch-of-one failure, no statistics update) and dropout draws no random numbers.
    """
    model.train()
    for m in model.modules():
        if not any(True for _ in m.children()):
            m.training = False


def _spatial(x: Any) -> list[int] | None:
    return list(x.shape) if isinstance(x, torch.Tensor) else None


@contextmanager
def layer_watch(model: nn.Module, arch: str, input_shape: tuple[int, ...], hint: str = "") -> Iterator[None]:
    """Convert a failure inside the model into a WorkbenchError naming the failing layer.

    `hint` (the architecture's advice, e.g. AlexNet's small stem) ends an "input too small" message.
    """
    names = {id(m): n for n, m in model.named_modules()}
    stack: list[tuple[str, str, list[int] | None]] = []
    handles = []

    def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        stack.append((names.get(id(mod), "?"), type(mod).__name__, _spatial(args[0]) if args else None))

    def post(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        name, kind, shape_in = stack.pop() if stack else ("?", type(mod).__name__, None)
        outs = out if isinstance(out, (tuple, list)) else [out]
        for o in outs:
            if isinstance(o, torch.Tensor) and o.dim() >= 3 and 0 in o.shape[2:]:
                stack.append((name, kind, shape_in))
                raise InputTooSmallError(_too_small(arch, input_shape, name, kind, shape_in, hint))

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        yield
    except WorkbenchError:
        raise
    except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
        name, kind, shape_in = stack[-1] if stack else ("", type(model).__name__, None)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _SIZE_PATTERNS.search(str(exc)) or isinstance(exc, AssertionError):
            raise InputTooSmallError(_too_small(arch, input_shape, name, kind, shape_in, hint)) from exc
        raise WorkbenchError(
            f"{arch} cannot process a {_fmt(input_shape)} input: layer {name or '(model)'!r} ({kind}) failed"
            f" with: {message}"
        ) from exc
    finally:
        for h in handles:
            h.remove()


def _fmt(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(v) for v in shape)


def _too_small(
    arch: str, input_shape: tuple[int, ...], name: str, kind: str, shape_in: list[int] | None, hint: str = ""
) -> str:
    where = f" (its input is {_fmt(shape_in[1:])})" if shape_in else ""
    advice = hint.strip().rstrip(".") or "use a larger input or a small-input variant"
    return (
        f"Input {_fmt(input_shape)} is too small for {arch}: the feature map vanishes at layer "
        f"{name or '(model)'!r} ({kind}){where}; {advice}."
    )


def dry_forward(
    model: nn.Module, input_shape: tuple[int, int, int], *, batch: int, arch: str, hint: str = ""
) -> None:
    """Run one forward pass without gradients (on the model's device) to materialise lazy layers.

    `hint` ends an "input too small" message (see `ArchSpec.small_input_hint`).
    """
    device = _device_of(model)
    x = torch.zeros((batch, *input_shape), device=device)
    set_summary_mode(model)
    try:
        with torch.no_grad(), layer_watch(model, arch, input_shape, hint):
            model(x)
    finally:
        model.train()


def _device_of(model: nn.Module) -> torch.device:
    for t in model.parameters():
        if not isinstance(t, nn.parameter.UninitializedParameter):
            return t.device
    for t in model.parameters():
        return t.device
    return torch.get_default_device()
