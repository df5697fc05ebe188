"""The layer tree at launch, before torch has loaded: the shipped summary of the architecture the window will
select, read as plain data.

The engine's ModelSummary lives in a module that imports torch (two seconds and more on a small machine), so
this reads `resources/summaries.json` (written by scripts/make_summary_cache.py; see
workbench/models/summary_cache.py for the format) with the json module alone and gives the views objects with
the same attributes as ModelSummary, LayerRow, ParamRow and Totals. The window replaces the preview with the
engine's own (cached) summary as soon as the engine has loaded, so a stale file can at worst show for those
seconds; the engine itself never uses a file made by other code.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from workbench.json_tags import untag
from workbench.paths import resource

if TYPE_CHECKING:
    from workbench.models.summary import ModelSummary

DEFAULT_ARCH = "lenet"         # the first-run architecture (trains in seconds on a CPU)
DEFAULT_INPUT = (1, 28, 28)    # ... on the bundled digits
DEFAULT_CLASSES = 10


def _rows(fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[SimpleNamespace, ...]:
    return tuple(SimpleNamespace(**dict(zip(fields, row))) for row in rows)


def _same_option(text: object, value: Any) -> bool:
    """Whether an options-form text (as QSettings keeps it) means `value`."""
    if not isinstance(text, str):
        return False
    if isinstance(value, str) and text == value:
        return True
    try:
        return bool(ast.literal_eval(text) == value)
    except (ValueError, SyntaxError):
        return False


def preview_request(state: Mapping[str, Any]) -> tuple[str, tuple[int, int, int], int, dict[str, str]]:
    """(architecture, input, classes, option texts) the window will select, from the architecture panel's saved
    state ({} on a first run: LeNet on the digits)."""
    if not state.get("arch"):
        return DEFAULT_ARCH, DEFAULT_INPUT, DEFAULT_CLASSES, {}
    arch = str(state["arch"])
    try:
        c, h, w = (int(v) for v in state.get("input") or ())
        classes = int(state.get("classes") or 0)
    except (TypeError, ValueError):
        c, h, w, classes = 0, 0, 0, 0
    texts = (state.get("options") or {}).get(arch) or {}
    return arch, (c, h, w), classes, dict(texts) if isinstance(texts, dict) else {}


def find_preview(state: Mapping[str, Any], path: Path | None = None) -> ModelSummary | None:
    """The shipped summary of the selection `state` describes, as plain data; None when the file lacks it (other
    options, input or classes) or cannot be read."""
    from workbench import __version__

    arch, shape, classes, texts = preview_request(state)
    try:
        payload = json.loads((path or resource("summaries.json")).read_text(encoding="utf-8"))
        if not str(payload.get("version", "")).startswith(f"{__version__}/"):
            return None
        for data in payload.get("summaries", []):
            if (data["arch"] != arch or list(data["input_shape"]) != list(shape)
                    or data["num_classes"] != classes):
                continue
            options = untag(data["options"])
            if all(_same_option(text, options.get(name)) for name, text in texts.items()):
                return _summary(data, options)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def _summary(data: Mapping[str, Any], options: dict[str, Any]) -> ModelSummary:
    preview = SimpleNamespace(
        arch=data["arch"], options=options, input_shape=list(data["input_shape"]), num_classes=data["num_classes"],
        layers=_rows(data["layer_fields"], data["layers"]),
        parameters=_rows(data["param_fields"], data["parameters"]),
        totals=SimpleNamespace(**data["totals"]), notes=tuple(data["notes"]),
    )
    return cast("ModelSummary", preview)  # the same attributes; the views read nothing else
