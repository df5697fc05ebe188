"""Receptive field and cumulative stride ("jump") of every tensor in one forward pass, found without weights.

A `FieldTracker` is a torch-function mode: while it is active, every torch operation passes the (receptive
field, jump) of its tracked inputs on to its outputs, keyed by tensor identity. Convolutions and pools grow
the field by `(k_eff - 1) * jump` and multiply the jump by their stride; strided slicing (ResNet's option-A
shortcut) multiplies the jump; flattening or averaging a whole map widens the field to the whole map; every
other operation (ReLU, batch norm, additions, concatenation, ...) takes the largest field of its inputs, so
where branches meet (Inception, residual additions) the largest field counts. Fields are theoretical: they
are not clipped to the input size. Height and width are tracked apart; reports take the larger of the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

Pair = tuple[int, int]


@dataclass(frozen=True)
class Field:
    """The receptive field (in input pixels) and jump (input pixels between neighbouring outputs) of a tensor.

    `jump` is None once the spatial grid is gone (after a flatten).
    """

    rf: Pair
    jump: Pair | None

    @property
    def size(self) -> int:
        """The larger of the height and width fields."""
        return max(self.rf)

    @property
    def stride(self) -> int | None:
        """The larger of the height and width jumps (None without a spatial grid)."""
        return None if self.jump is None else max(self.jump)


INPUT_FIELD = Field((1, 1), (1, 1))

# Positional parameters of the functions whose window matters (torch builtins take no keywords in practice).
_CONV: dict[str, tuple[str, ...]] = {"conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups")}
_POOL: dict[str, tuple[str, ...]] = {
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "lp_pool2d": ("input", "norm_type", "kernel_size", "stride", "ceil_mode"),
}
_ADAPTIVE = ("adaptive_avg_pool2d", "adaptive_max_pool2d")
_SKIP = frozenset({"__get__", "__set__", "size", "dim", "numel", "nelement", "element_size", "is_floating_point",
                   "requires_grad_", "data_ptr", "untyped_storage", "storage"})  # fmt: skip


def _pair(value: Any, default: Pair = (1, 1)) -> Pair:
    if value is None:
        return default
    if isinstance(value, int):
        return (value, value)
    values = [int(v) for v in value]
    if not values:
        return default
    return (values[0], values[0]) if len(values) == 1 else (values[-2], values[-1])


def _arg(names: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any], name: str, default: Any) -> Any:
    i = names.index(name)
    if i < len(args):
        return args[i]
    return kwargs.get(name, default)


def _window(field: Field, kernel: Pair, stride: Pair, dilation: Pair = (1, 1)) -> Field:
    jump = field.jump or (1, 1)
    rf = tuple(r + (d * (k - 1)) * j for r, k, d, j in zip(field.rf, kernel, dilation, jump))
    return Field((rf[0], rf[1]), (jump[0] * stride[0], jump[1] * stride[1]))


def _adaptive_window(size_in: int, size_out: int) -> tuple[int, int]:
    """(largest window, stride) of PyTorch's adaptive pooling from size_in to size_out."""
    if size_out <= 0 or size_in <= 0:
        return 1, 1
    widest = max(-(-((k + 1) * size_in) // size_out) - (k * size_in) // size_out for k in range(size_out))
    return widest, max(1, size_in // size_out)


def _whole_map(field: Field, spatial: Pair) -> Field:
    """The field of a value that depends on the whole (H, W) map (flatten, global pooling)."""
    return _window(field, spatial, spatial)


def _merge(fields: list[Field]) -> Field:
    if len(fields) == 1:
        return fields[0]
    rf = (max(f.rf[0] for f in fields), max(f.rf[1] for f in fields))
    jumps = [f.jump for f in fields if f.jump is not None]
    jump = (max(j[0] for j in jumps), max(j[1] for j in jumps)) if jumps else None
    return Field(rf, jump)


def _spatial(t: Tensor) -> Pair | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if t.dim() >= 3 else None


def _tensors(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            if isinstance(v, Tensor):
                yield v
            elif isinstance(v, (tuple, list)):
                yield from (t for t in v if isinstance(t, Tensor))


class FieldTracker(TorchFunctionMode):
    """A torch-function mode recording the Field of every tensor derived from the marked input."""

    def __init__(self) -> None:
        super().__init__()
        # id -> (tensor, field); the tensor is kept so its id cannot be reused by another tensor in the pass.
        self._fields: dict[int, tuple[Tensor, Field]] = {}

    def mark(self, tensor: Tensor, field: Field = INPUT_FIELD) -> None:
        """Track `tensor` as an input with `field` (a one-pixel field by default)."""
        self._fields[id(tensor)] = (tensor, field)

    def field(self, value: Any) -> Field | None:
        """The Field of `value` (a tensor, or the first tracked tensor of a tuple/list/dict), or None."""
        if isinstance(value, dict):
            value = list(value.values())
        for t in _tensors(value):
            entry = self._fields.get(id(t))
            if entry is not None and entry[0] is t:
                return entry[1]
        if hasattr(value, "_fields"):  # namedtuple outputs (torchvision's GoogLeNet)
            return self.field(list(value))
        return None

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _SKIP or not isinstance(out, (Tensor, tuple, list)):
            return out
        fields: list[Field] = []
        first: Tensor | None = None
        for t in (*_tensors(args), *_tensors(list(kwargs.values()))):
            entry = self._fields.get(id(t))
            if entry is not None and entry[0] is t:
                fields.append(entry[1])
                first = t if first is None else first
        if first is None:
            return out
        result = self._rule(name, args, kwargs, first, fields, out)
        for t in _tensors(out):
            self._fields[id(t)] = (t, result)
        return out

    def _rule(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], first: Tensor,
              fields: list[Field], out: Any) -> Field:  # fmt: skip
        field = fields[0] if len(fields) == 1 else _merge(fields)
        result = next(_tensors(out), None)
        if name in _CONV and first.dim() == 4:
            names = _CONV[name]
            weight = _arg(names, args, kwargs, "weight", None)
            kernel = _pair(tuple(weight.shape[-2:])) if isinstance(weight, Tensor) else (1, 1)
            return _window(field, kernel, _pair(_arg(names, args, kwargs, "stride", 1)),
                           _pair(_arg(names, args, kwargs, "dilation", 1)))  # fmt: skip
        if name in _POOL and first.dim() >= 3:
            names = _POOL[name]
            kernel = _pair(_arg(names, args, kwargs, "kernel_size", 1))
            stride = _pair(_arg(names, args, kwargs, "stride", None), default=kernel)
            dilation = _pair(_arg(names, args, kwargs, "dilation", 1)) if "dilation" in names else (1, 1)
            return _window(field, kernel, stride, dilation)
        if name in _ADAPTIVE and result is not None and first.dim() >= 3:
            (kh, sh), (kw, sw) = (_adaptive_window(i, o) for i, o in zip(first.shape[-2:], result.shape[-2:]))
            return _window(field, (kh, kw), (sh, sw))
        if name == "__getitem__" and len(args) > 1 and field.jump is not None:
            return _sliced(field, args[1], first.dim())
        if result is None:
            return field
        size_in = _spatial(first)
        if size_in is not None and field.jump is not None:
            # Unknown operations that drop the grid (flatten, view, mean over H and W) or shrink it to 1x1
            # (x.mean((2, 3), keepdim=True)) see the whole map.
            if result.dim() < 3:
                whole = _whole_map(field, size_in)
                return Field(whole.rf, None)
            if _spatial(result) == (1, 1) and size_in != (1, 1) and result.dim() == first.dim():
                return _merge([_whole_map(field, size_in), *fields[1:]])
        return field


def _sliced(field: Field, key: Any, ndim: int) -> Field:
    """x[..., ::s, ::s] and x[:, :, ::s, ::s]: a step on H or W multiplies that jump."""
    items = list(key) if isinstance(key, tuple) else [key]
    if any(i is None for i in items):
        return field
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + [slice(None)] * (ndim - len(items) + 1) + items[at + 1:]
    if len(items) < ndim:
        items += [slice(None)] * (ndim - len(items))
    if len(items) != ndim or ndim < 3:
        return field
    jump = field.jump or (1, 1)
    steps = [(i.step or 1) if isinstance(i, slice) else 1 for i in items[-2:]]
    return Field(field.rf, (jump[0] * steps[0], jump[1] * steps[1]))


@contextmanager
def track_fields(model: nn.Module) -> Iterator[dict[int, list[Field | None]]]:
    """While active, forward passes of `model` record, per module id, the Field of the module's output for each
    call, in call order (the yielded dict fills as the model runs). The model's input (the first tensor of its
    first call) is the one-pixel field everything is measured from."""
    tracker = FieldTracker()
    calls: dict[int, list[Field | None]] = {}

    def mark_input(module: nn.Module, args: Any) -> None:
        x = next(_tensors(args), None)
        if x is not None and tracker.field(x) is None:
            tracker.mark(x)

    def record(module: nn.Module, args: Any, output: Any) -> None:
        calls.setdefault(id(module), []).append(tracker.field(output))

    handles = [model.register_forward_pre_hook(mark_input)]
    handles += [m.register_forward_hook(record) for m in model.modules()]
    try:
        with tracker:
            yield calls
    finally:
        for h in handles:
            h.remove()
