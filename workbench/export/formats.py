"""Model files: ONNX (torch.onnx's torch.export-based exporter), pt2 (torch.export) and safetensors (weights only).

TorchScript is not offered: `torch.jit` is deprecated in the torch this project uses and warns on every call.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.export.common import (
    MODEL_FORMATS,
    SUFFIXES,
    ExportError,
    ExportResult,
    ModelMetadata,
    atomic_file,
    check_format,
    require_extra,
    resolve_out,
)

EXAMPLE_BATCH = 2            # traced with 2 so the batch dimension stays symbolic (1 would be specialised)
INPUT_NAME, OUTPUT_NAME = "input", "logits"
PT2_METADATA = "workbench.json"          # extra file inside a .pt2 archive
SAFETENSORS_METADATA = "workbench"       # key of the JSON metadata in a .safetensors header
ONNX_SIZE_LIMIT = 2 * 1024**3 - 64 * 1024**2   # protobuf's 2 GiB ceiling for a single-file model


def trace(model: nn.Module, input_shape: tuple[int, int, int], arch: str = "model") -> torch.export.ExportedProgram:
    """`torch.export` the eval-mode graph of `model` for (batch, *input_shape) inputs, batch dynamic (>= 1).

    The module's train/eval mode is restored afterwards. ExportError when torch.export cannot trace it.
    """
    was_training = model.training
    model.eval()
    try:
        example = torch.zeros(EXAMPLE_BATCH, *input_shape, device=_device_of(model))
        batch = torch.export.Dim("batch", min=1)
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"torch.export could not trace {arch} ({first}); export it with --format safetensors "
                          "instead.") from exc
    finally:
        model.train(was_training)


def _device_of(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def write_pt2(program: torch.export.ExportedProgram, path: Path, meta: ModelMetadata) -> dict[str, Any]:
    """Save `program` with `torch.export.save`, the metadata as the extra file `workbench.json`."""
    torch.export.save(program, path, extra_files={PT2_METADATA: json.dumps(meta.to_dict())})
    return {"torch": torch.__version__.split("+")[0], "dynamic_batch": True}


def read_pt2_metadata(path: Path | str) -> dict[str, Any]:
    """The workbench metadata stored in a .pt2 file (loads the program; needs only torch)."""
    extra = {PT2_METADATA: ""}
    torch.export.load(str(path), extra_files=extra)
    return dict(json.loads(extra[PT2_METADATA]))


def write_onnx(program: torch.export.ExportedProgram, path: Path, meta: ModelMetadata) -> dict[str, Any]:
    """Convert `program` with torch.onnx's exporter (dynamic batch kept) and save it with the metadata as
    `metadata_props`. Needs the `onnx` extra."""
    require_extra("onnx", "ONNX export")
    size = sum(t.numel() * t.element_size() for t in program.state_dict.values())
    if size > ONNX_SIZE_LIMIT:
        raise ExportError(f"{meta.arch} has {size / 1024**3:.1f} GiB of weights, more than one ONNX file can hold "
                          "(2 GiB); export it with --format pt2 or safetensors instead.")
    example = torch.zeros(EXAMPLE_BATCH, *meta.input_shape)
    try:
        onnx_program = torch.onnx.export(program, (example,), dynamo=True, input_names=[INPUT_NAME],
                                         output_names=[OUTPUT_NAME], verbose=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"torch.onnx could not convert {meta.arch} ({first}); export it with --format pt2 or "
                          "safetensors instead.") from exc
    assert onnx_program is not None
    model = onnx_program.model
    model.metadata_props.update(meta.to_strings())
    model.doc_string = (f"{meta.arch} exported by CNN Workbench: input float32 [batch, "
                        f"{', '.join(map(str, meta.input_shape))}], normalised with mean/std (see metadata_props); "
                        f"output [batch, {meta.num_classes}] logits.")
    onnx_program.save(str(path), external_data=False)
    opset = model.opset_imports.get("", None)
    return {"opset": opset, "ir_version": model.ir_version, "dynamic_batch": True,
            "input_name": INPUT_NAME, "output_name": OUTPUT_NAME}


def write_safetensors(model: nn.Module, path: Path, meta: ModelMetadata) -> dict[str, Any]:
    """Save the weights (`state_dict`, shared tensors once) with the metadata as a JSON header entry."""
    require_extra("safetensors", "safetensors export")
    from safetensors.torch import save_model

    save_model(model, str(path), metadata={"format": "pt", SAFETENSORS_METADATA: json.dumps(meta.to_dict())})
    return {"tensors": len(model.state_dict())}


def read_safetensors_metadata(path: Path | str) -> dict[str, Any]:
    """The workbench metadata in a .safetensors header (reads the header only)."""
    require_extra("safetensors", "Reading safetensors")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except Exception as exc:  # OSError, or safetensors' own error for a damaged header
        raise ExportError(f"Cannot read {path} as safetensors ({exc}); check the file.") from None
    if SAFETENSORS_METADATA not in header:
        raise ExportError(f"{path} was not written by CNN Workbench (no {SAFETENSORS_METADATA!r} metadata); load "
                          "it with safetensors.torch.load_file instead.")
    return dict(json.loads(header[SAFETENSORS_METADATA]))


def load_safetensors(path: Path | str, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the architecture recorded in a workbench .safetensors file and load its weights (eval mode)."""
    from safetensors.torch import load_model

    from workbench.models import build_model

    meta = ModelMetadata.from_dict(read_safetensors_metadata(path))
    model = build_model(meta.arch, num_classes=meta.num_classes, input_shape=meta.input_shape,
                        options=meta.arch_options, device=device, initialize_weights=False)
    try:
        load_model(model, str(path), strict=True, device=str(device))
    except RuntimeError as exc:
        raise ExportError(f"{path} does not fit {meta.arch} ({str(exc).splitlines()[0]}).") from None
    return model.eval()


def default_name(meta: ModelMetadata, fmt: str) -> str:
    """`<run_id>-<checkpoint>.<suffix>`, or `<arch>.<suffix>` for a model that is not a run's."""
    stem = f"{meta.run_id}-{meta.checkpoint}" if meta.run_id and meta.checkpoint else (meta.run_id or meta.arch)
    return stem.replace(":", "_") + SUFFIXES[fmt]


def export_model(model: nn.Module, meta: ModelMetadata, *, format: str, out: Path | str | None = None,
                 overwrite: bool = False, program: torch.export.ExportedProgram | None = None) -> ExportResult:
    """Write `model` (any module taking `meta.input_shape` images) as `format`: onnx | pt2 | safetensors.

    The file appears complete or not at all (temporary file + rename). `program`: an already traced
    `trace(model, ...)`, reused for onnx/pt2. ExportError / MissingExtraError for what the user can fix.
    """
    check_format(format, MODEL_FORMATS)
    if format == "onnx":
        require_extra("onnx", "ONNX export")
    elif format == "safetensors":
        require_extra("safetensors", "safetensors export")
    path = resolve_out(out, default_name(meta, format), overwrite=overwrite)
    start = time.perf_counter()
    with atomic_file(path, SUFFIXES[format]) as tmp:
        if format == "safetensors":
            details = write_safetensors(model, tmp, meta)
        else:
            prog = program if program is not None else trace(model, meta.input_shape, meta.arch)
            details = (write_onnx if format == "onnx" else write_pt2)(prog, tmp, meta)
    if meta.run_id:
        details["epoch"] = meta.epoch
    return ExportResult(format=format, path=path, files=(path,), arch=meta.arch, input_shape=meta.input_shape,
                        num_classes=meta.num_classes, bytes=path.stat().st_size, seconds=time.perf_counter() - start,
                        run_id=meta.run_id, checkpoint=meta.checkpoint or None, details=details)
