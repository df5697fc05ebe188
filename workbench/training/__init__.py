"""Training engine: config, callbacks, control, the Trainer loop and run_training (no Qt).

Names are imported lazily so `workbench.training.config` (and the CLI parser) load without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config", "TrainJob": "config",
    "FitStart": "events", "StepMetrics": "events", "EpochMetrics": "events", "FitResult": "events",
    "Callback": "callbacks", "CallbackList": "callbacks",
    "TrainControl": "control",
    "Trainer": "trainer",
    "run_training": "job", "RunCompletedError": "job",
    "ConsoleProgress": "console",
    "resolve_device": "device", "resolve_precision": "device", "DeviceUnavailableError": "device",
    "build_optimizer": "optim", "build_scheduler": "optim",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"workbench.training.{module}"), name)
