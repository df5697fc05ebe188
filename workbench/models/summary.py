"""Layer summaries computed by torchinfo on the `meta` device: shapes and counts, no weights, no compute.

The result is plain data (no live modules) so it can cross thread boundaries and be serialised.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from workbench.json_tags import plain
from workbench.models.dryrun import dry_forward, layer_watch, set_summary_mode
from workbench.models.receptive import Field, track_fields
from workbench.models.registry import construct, get_spec

META = torch.device("meta")


@dataclass(frozen=True)
class LayerRow:
    """One module in the summary (depth-first, in execution order as torchinfo lists them)."""

    index: int
    parent: int | None
    depth: int
    depth_index: str
    name: str
    type: str
    kernel: list[int] | None
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int  # all parameters of the module, its children included
    trainable_params: int
    mult_adds: int  # of the module and all its descendants
    param_share: float
    is_leaf: bool
    # Theoretical receptive field (input pixels, the larger of height and width) and cumulative stride at the
    # layer's output; jump is None once the spatial grid is gone (after a flatten). See models/receptive.py.
    receptive_field: int | None = None
    jump: int | None = None


@dataclass(frozen=True)
class ParamRow:
    """One parameter tensor."""

    name: str
    shape: list[int]
    count: int
    trainable: bool
    layer: str


@dataclass(frozen=True)
class Totals:
    """Model totals, with torchinfo's memory estimates in MB."""

    total_params: int
    trainable_params: int
    non_trainable_params: int
    mult_adds: int
    input_size_mb: float
    forward_backward_mb: float
    params_mb: float
    total_mb: float


@dataclass(frozen=True)
class ModelSummary:
    """A model's layer table, parameter table and totals."""

    arch: str
    options: dict
    input_shape: list[int]
    num_classes: int
    layers: tuple[LayerRow, ...]
    parameters: tuple[ParamRow, ...]
    totals: Totals
    notes: tuple[str, ...] = ()  # one sentence each where the lecture's slide differs (see models/notes.py)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (tuples become lists)."""
        return plain(asdict(self))

    def format_table(self, depth: int = 3) -> str:
        """A torchinfo-style text table showing layers down to `depth`."""
        from workbench.models.table import format_table

        return format_table(self, depth)


def summarize(
    arch: str,
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    options: dict[str, Any] | None = None,
) -> ModelSummary:
    """Summarise a registered architecture on the meta device (no weights are allocated)."""
    with META:
        module, shape, classes, resolved = construct(
            arch, num_classes=num_classes, input_shape=input_shape, options=options
        )
        # Receptive fields ride along the dry forward that materialises the lazy layers (no extra pass).
        with track_fields(module) as fields:
            dry_forward(module, shape, batch=1, arch=arch, hint=get_spec(arch).small_input_hint(resolved))
    summary = _summarize_meta(module, shape, fields, arch=arch, options=resolved, num_classes=classes)
    from workbench.models.notes import lecture_notes

    notes = lecture_notes(summary)
    return dataclasses.replace(summary, notes=notes) if notes else summary


def summarize_module(module: nn.Module, input_shape: tuple[int, ...]) -> ModelSummary:
    """Summarise any module for a (C, H, W) input; it is copied onto the meta device, never run for real."""
    shape = tuple(int(v) for v in input_shape)
    meta_copy = _meta_copy(module)
    arch = type(module).__name__
    with META, track_fields(meta_copy) as fields:
        dry_forward(meta_copy, shape, batch=1, arch=arch)  # type: ignore[arg-type]
    summary = _summarize_meta(meta_copy, shape, fields, arch=arch, options={}, num_classes=0)
    out = summary.layers[0].output_shape if summary.layers else None
    classes = out[-1] if out and len(out) == 2 else 0
    return dataclasses.replace(summary, input_shape=list(shape), num_classes=classes)


def _meta_copy(module: nn.Module) -> nn.Module:
    """Deep copy with every parameter and buffer replaced by a meta tensor (no data is copied)."""
    memo: dict[int, Any] = {}
    for t in itertools.chain(module.parameters(), module.buffers()):
        if isinstance(t, (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)):
            lazy: Any = type(t)  # a fresh uninitialised tensor on meta (lazy batch norm's buffers too)
            memo[id(t)] = lazy(requires_grad=t.requires_grad, device=META)
            continue
        empty = torch.empty_like(t, device=META)
        memo[id(t)] = nn.Parameter(empty, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else empty
    return copy.deepcopy(module, memo)


def _summarize_meta(
    module: nn.Module,
    shape: tuple[int, ...],
    fields: dict[int, list[Field | None]],
    *,
    arch: str,
    options: dict[str, Any],
    num_classes: int,
) -> ModelSummary:
    """The torchinfo pass; `fields` (from `track_fields` around the dry forward, in the same call order) gives
    each row's receptive field."""
    import torchinfo
    from torchinfo import torchinfo as ti_impl

    handle = module.register_forward_pre_hook(lambda m, args: set_summary_mode(m))
    try:
        with layer_watch(module, arch, shape):
            stats = torchinfo.summary(
                module, input_data=torch.zeros((1, *shape), device=META), device=META, mode="train", verbose=0,
                depth=64,
                col_names=("input_size", "output_size", "num_params", "kernel_size", "mult_adds"),
            )  # fmt: skip
    finally:
        handle.remove()
        ti_impl.clear_cached_forward_pass()  # torchinfo caches the layer list (and live modules) globally
    layers = _layer_rows(module, stats.summary_list, stats.total_params, fields)
    params = _param_rows(module)
    to_mb = stats.to_megabytes
    input_mb, fb_mb, params_mb = (to_mb(stats.total_input), to_mb(stats.total_output_bytes),
                                  to_mb(stats.total_param_bytes))  # fmt: skip
    totals = Totals(
        total_params=int(stats.total_params),
        trainable_params=int(stats.trainable_params),
        non_trainable_params=int(stats.total_params - stats.trainable_params),
        mult_adds=int(stats.total_mult_adds),
        input_size_mb=round(input_mb, 2),
        forward_backward_mb=round(fb_mb, 2),
        params_mb=round(params_mb, 2),
        total_mb=round(to_mb(stats.total_input + stats.total_output_bytes + stats.total_param_bytes), 2),
    )
    return ModelSummary(arch, dict(options), list(shape), num_classes, tuple(layers), tuple(params), totals)


def _kernel(value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _layer_rows(
    module: nn.Module, infos: list[Any], total_params: int, fields: dict[int, list[Field | None]]
) -> list[LayerRow]:
    names = {id(m): n for n, m in module.named_modules(remove_duplicate=False)}
    calls: dict[int, int] = {}  # a module called several times has one row (and one recorded Field) per call
    # torchinfo lists layers depth-first: a row's parent is the closest earlier row one level up.
    parents: list[int | None] = []
    open_rows: dict[int, int] = {}
    for i, info in enumerate(infos):
        parents.append(open_rows.get(info.depth - 1) if info.depth > 0 else None)
        open_rows[info.depth] = i
    # A container's Mult-Adds are its leaves' (torchinfo's own container figure double-counts nested params).
    macs = [int(info.macs) if info.is_leaf_layer else 0 for info in infos]
    for i in range(len(infos) - 1, -1, -1):
        parent = parents[i]
        if parent is not None and not infos[i].is_recursive:
            macs[parent] += macs[i]
    rows = []
    for i, info in enumerate(infos):
        depth_index = f"{info.depth}-{info.depth_index}" if info.depth > 0 else ""
        call = calls[info.layer_id] = calls.get(info.layer_id, -1) + 1
        recorded = fields.get(info.layer_id, [])
        field = recorded[call] if call < len(recorded) else None
        rows.append(
            LayerRow(
                index=i,
                parent=parents[i],
                depth=int(info.depth),
                depth_index=depth_index,
                name=names.get(info.layer_id, info.var_name if info.depth else ""),
                type=info.class_name,
                kernel=_kernel(info.kernel_size),
                input_shape=[int(v) for v in info.input_size] if info.input_size else None,
                output_shape=[int(v) for v in info.output_size] if info.output_size else None,
                params=int(info.num_params),
                trainable_params=int(info.trainable_params),
                mult_adds=macs[i],
                param_share=(info.num_params / total_params) if total_params else 0.0,
                is_leaf=bool(info.is_leaf_layer),
                receptive_field=field.size if field is not None else None,
                jump=field.stride if field is not None else None,
            )
        )
    return rows


def _param_rows(module: nn.Module) -> list[ParamRow]:
    rows = []
    for name, p in module.named_parameters():
        layer = name.rpartition(".")[0]
        rows.append(ParamRow(name, [int(v) for v in p.shape], int(p.numel()), bool(p.requires_grad), layer))
    return rows
