"""Exports: a run's model as ONNX, a torch.export program (.pt2) or safetensors weights, and its metrics as
TensorBoard logs. Optional extras: `onnx`, `safetensors`, `tensorboard` (pt2 needs only torch).

Importing the package does not import torch; the torch-side names load on first use.
"""

from __future__ import annotations

from typing import Any

from workbench.export.common import (
    EXTRAS,
    FORMATS,
    MODEL_FORMATS,
    ExportError,
    ExportResult,
    MissingExtraError,
    ModelMetadata,
    require_extra,
)
from workbench.export.run import export_run

_LAZY = {
    "export_model": "workbench.export.formats", "trace": "workbench.export.formats",
    "load_safetensors": "workbench.export.formats", "read_safetensors_metadata": "workbench.export.formats",
    "read_pt2_metadata": "workbench.export.formats", "export_tensorboard": "workbench.export.tensorboard",
    "run_hparams": "workbench.export.tensorboard",
}

__all__ = [
    "EXTRAS", "FORMATS", "MODEL_FORMATS", "ExportError", "ExportResult", "MissingExtraError", "ModelMetadata",
    "export_model", "export_run", "export_tensorboard", "load_safetensors", "read_pt2_metadata",
    "read_safetensors_metadata", "require_extra", "run_hparams", "trace",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
