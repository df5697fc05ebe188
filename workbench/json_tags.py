"""Values through JSON. Tuples tagged as {"__tuple__": [...]} on the way out, turned back into tuples on the way in.

Torch-free on purpose: the launch preview (ui/summary_preview.py) reads the shipped summaries before torch loads.
"""

from __future__ import annotations

from typing import Any


def tag(value: Any) -> Any:
    """`value` with every tuple (at any depth) replaced by its tagged form and dict keys as strings."""
    if isinstance(value, tuple):
        return {"__tuple__": [tag(v) for v in value]}
    if isinstance(value, list):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {str(k): tag(v) for k, v in value.items()}
    return value


def untag(value: Any) -> Any:
    """The inverse of `tag`: tagged tuples back to tuples, at any depth."""
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(untag(v) for v in value["__tuple__"])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """`value` as JSON writes it: tuples become lists, dict keys strings (at any depth); not reversible."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
