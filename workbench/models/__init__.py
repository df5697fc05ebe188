"""Model zoo: the registry, the lecture's architectures, torchvision's models, and layer summaries."""

from workbench.models.registry import (
    FAMILY_ORDER,
    ArchSpec,
    OptionSpec,
    build_model,
    get_spec,
    list_families,
    list_models,
    register_deferred,
    register_model,
    resolve_options,
    split_outputs,
)

# Importing the family modules registers their architectures (display order follows FAMILY_ORDER).
from workbench.models import classic, googlenet, nin, resnet, vgg  # noqa: F401  isort: skip

register_deferred("tv:", "workbench.models.tv")
from workbench.models.summary import (  # noqa: E402
    LayerRow,
    ModelSummary,
    ParamRow,
    Totals,
    summarize,
    summarize_module,
)

__all__ = [
    "FAMILY_ORDER",
    "ArchSpec",
    "LayerRow",
    "ModelSummary",
    "OptionSpec",
    "ParamRow",
    "Totals",
    "build_model",
    "get_spec",
    "list_families",
    "list_models",
    "register_deferred",
    "register_model",
    "resolve_options",
    "split_outputs",
    "summarize",
    "summarize_module",
]
