"""Typed reads of per-data-set options (`--data-option KEY=VALUE`): a wrong type is bad input, not a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.errors import InvalidOptionError


def _whole(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


# Limits that keep a data set's memory finite (a typo such as image_size=64000 must not exhaust the machine).
MAX_IMAGE_SIDE = 4096               # pixels per side of a stored image
MAX_IN_MEMORY_BYTES = 8 * 1024**3   # decoded uint8 bytes of a generated (fake) data set


def int_option(options: Mapping[str, Any], key: str, default: int, dataset: str, high: int | None = None) -> int:
    """options[key] (or default) as a whole number, at most `high` when given."""
    value = options.get(key, default)
    if not _whole(value):
        raise InvalidOptionError(f"{dataset} option {key} must be a whole number, got {value!r}.")
    if high is not None and int(value) > high:
        raise InvalidOptionError(f"{dataset} option {key} must be at most {high:,}, got {int(value):,}.")
    return int(value)


def bool_option(options: Mapping[str, Any], key: str, default: bool, dataset: str) -> bool:
    """options[key] (or default) as True/False (1/0 accepted)."""
    value = options.get(key, default)
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise InvalidOptionError(f"{dataset} option {key} must be True or False, got {value!r}.")


def ints_option(options: Mapping[str, Any], key: str, default: tuple[int, ...], dataset: str,
                length: int, high: int | None = None) -> tuple[int, ...]:
    """options[key] (or default) as `length` whole numbers (each at most `high`), e.g. image_shape=1,28,28."""
    value = options.get(key, default)
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) != length or not all(_whole(v) for v in items):
        raise InvalidOptionError(f"{dataset} option {key} must be {length} whole numbers separated by commas "
                                 f"(e.g. {key}={','.join(str(v) for v in default)}), got {value!r}.")
    if high is not None and max(int(v) for v in items) > high:
        raise InvalidOptionError(f"{dataset} option {key} allows at most {high:,} per value, got {value!r}.")
    return tuple(int(v) for v in items)
