"""Option validators: each returns the normalised value or raises ValueError."""

from __future__ import annotations

from typing import Any


def positive_int(value: Any) -> int:
    """An integer >= 1 (booleans rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(value)
    return value


def fraction(value: Any) -> float:
    """A probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(value)
    return float(value)


def pairs(value: Any) -> tuple[tuple[int, int], ...]:
    """A non-empty tuple of (count >= 1, channels >= 1) pairs, e.g. ((1, 64), (2, 128))."""
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(value)
    result = []
    for item in value:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(value)
        result.append((positive_int(item[0]), positive_int(item[1])))
    return tuple(result)
