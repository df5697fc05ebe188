"""Summaries computed once: a session cache in memory and a shipped cache for the lecture's architectures.

A summary is fully determined by (architecture, resolved options, input shape, classes) and the code that
computes it, so it is cached under that key plus `cache_version()`. `SummaryCache.summarize` is the engine's
`summarize` through the cache; `SummaryCache.lookup` answers from the cache only (cheap: the app calls it in
the GUI thread before sending work to a thread).

The shipped cache (`resources/summaries.json`, written by `scripts/make_summary_cache.py`) holds the lecture's
architectures at their natural input and at the bundled digits' input (1 channel, 10 classes), so the app
shows them at once. It records a fingerprint of the code that made it (`fingerprint()`: this package's model
sources and the torchinfo version); a file whose fingerprint differs from the running code is ignored, and a
test fails CI until the file is regenerated.

JSON form (`summary_to_json` / `summary_from_json`, an exactly equal round trip): the summary's fields, with
layer and parameter rows as lists under the field names of `LayerRow`/`ParamRow` ("layer_fields",
"param_fields"), and tuples in options tagged as {"__tuple__": [...]}.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.json_tags import tag, untag
from workbench.models.summary import LayerRow, ModelSummary, ParamRow, Totals, summarize

SUMMARY_FORMAT = 1               # bump when the JSON form changes
SHIPPED_NAME = "summaries.json"
LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(LayerRow))
PARAM_FIELDS = tuple(f.name for f in dataclasses.fields(ParamRow))
_NOT_FINGERPRINTED = frozenset({"summary_cache.py", "summary_process.py", "tv.py"})  # none changes a shipped summary
SummarizeFn = Callable[..., ModelSummary]  # summarize(arch, *, input_shape, num_classes, options)
DIGITS_INPUT = (1, 10)           # channels and classes of the bundled digits (the app's first data set)


def cache_version() -> str:
    """The app version and JSON format a cached summary belongs to."""
    from workbench import __version__

    return f"{__version__}/{SUMMARY_FORMAT}"


def fingerprint() -> str:
    """A hash of what computes a summary: the model sources (this package's *.py, and the JSON tagging it is stored
    with) and torchinfo's version."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in [*sorted(package.glob("*.py")), package.parent / "json_tags.py"]:
        if path.name not in _NOT_FINGERPRINTED:
            digest.update(path.name.encode())
            digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
    try:
        digest.update(metadata.version("torchinfo").encode())
    except metadata.PackageNotFoundError:
        pass
    return digest.hexdigest()[:16]


# --- JSON form -----------------------------------------------------------------------------------------------
def summary_to_json(summary: ModelSummary) -> dict[str, Any]:
    """A JSON-ready dict that `summary_from_json` turns back into an equal ModelSummary."""
    return {
        "arch": summary.arch,
        "options": tag(summary.options),
        "input_shape": list(summary.input_shape),
        "num_classes": summary.num_classes,
        "layer_fields": list(LAYER_FIELDS),
        "layers": [[getattr(row, name) for name in LAYER_FIELDS] for row in summary.layers],
        "param_fields": list(PARAM_FIELDS),
        "parameters": [[getattr(row, name) for name in PARAM_FIELDS] for row in summary.parameters],
        "totals": dataclasses.asdict(summary.totals),
        "notes": list(summary.notes),
    }


def summary_from_json(data: Mapping[str, Any]) -> ModelSummary:
    """Inverse of `summary_to_json`; ValueError when the rows were written for other LayerRow/ParamRow fields."""
    if tuple(data["layer_fields"]) != LAYER_FIELDS or tuple(data["param_fields"]) != PARAM_FIELDS:
        raise ValueError("the cached rows were written with other fields")
    return ModelSummary(
        arch=str(data["arch"]),
        options=untag(data["options"]),
        input_shape=[int(v) for v in data["input_shape"]],
        num_classes=int(data["num_classes"]),
        layers=tuple(LayerRow(**dict(zip(LAYER_FIELDS, row))) for row in data["layers"]),
        parameters=tuple(ParamRow(**dict(zip(PARAM_FIELDS, row))) for row in data["parameters"]),
        totals=Totals(**data["totals"]),
        notes=tuple(data["notes"]),
    )


# --- keys ----------------------------------------------------------------------------------------------------
def summary_key(arch: str, options: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> str:
    """The cache key of a summary (resolved options; `cache_version()` included)."""
    return json.dumps([cache_version(), arch, tag(dict(options)), [int(v) for v in input_shape], int(num_classes)],
                      sort_keys=True, separators=(",", ":"))


def key_of(summary: ModelSummary) -> str:
    """The key a computed summary is stored under."""
    return summary_key(summary.arch, summary.options, summary.input_shape, summary.num_classes)


def normalized_key(arch: str, options: Mapping[str, Any] | None, input_shape: Sequence[int] | None,
                   num_classes: int | None) -> str:
    """The key `summarize(arch, ...)` with these arguments will be stored under (defaults filled in the same way);
    the registry's InvalidOptionError/UnknownNameError when the request is not valid."""
    from workbench.models.registry import check_input_shape, get_spec, resolve_options

    spec = get_spec(arch)
    resolved = resolve_options(arch, dict(options or {}))
    shape = check_input_shape(spec.natural_input_for(resolved) if input_shape is None else input_shape)
    return summary_key(arch, resolved, shape, spec.default_classes if num_classes is None else num_classes)


# --- the cache -----------------------------------------------------------------------------------------------
class SummaryCache:
    """Thread-safe summaries by key: the shipped file (read on first use) below a bounded in-memory LRU."""

    def __init__(self, shipped: Path | None = None, *, max_entries: int = 256) -> None:
        self._shipped_path = shipped
        self._shipped: dict[str, ModelSummary] | None = None if shipped is not None else {}
        self._memory: OrderedDict[str, ModelSummary] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.hits = 0
        self.computed = 0

    def preload(self) -> int:
        """Read the shipped file now (e.g. in a background thread); returns its number of usable entries."""
        return len(self._shipped_entries())

    def _shipped_entries(self) -> dict[str, ModelSummary]:
        with self._lock:
            if self._shipped is None:
                assert self._shipped_path is not None
                self._shipped = load_shipped(self._shipped_path)
            return self._shipped

    def get(self, key: str) -> ModelSummary | None:
        """The summary stored under `key`, or None."""
        shipped = self._shipped_entries()
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
            else:
                found = shipped.get(key)
            if found is not None:
                self.hits += 1
            return found

    def put(self, summary: ModelSummary) -> None:
        """Remember `summary` (under `key_of(summary)`)."""
        with self._lock:
            key = key_of(summary)
            self._memory[key] = summary
            self._memory.move_to_end(key)
            while len(self._memory) > self._max:
                self._memory.popitem(last=False)

    def clear(self) -> None:
        """Forget the session's summaries (the shipped ones stay)."""
        with self._lock:
            self._memory.clear()

    def lookup(self, arch: str, *, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
               options: Mapping[str, Any] | None = None) -> ModelSummary | None:
        """The cached summary for these `summarize` arguments, or None (also for an invalid request)."""
        try:
            key = normalized_key(arch, options, input_shape, num_classes)
        except Exception:  # an invalid request is never cached: summarize will report it
            return None
        return self.get(key)

    def summarize(self, arch: str, *, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                  options: Mapping[str, Any] | None = None, compute: SummarizeFn | None = None) -> ModelSummary:
        """`workbench.models.summarize` (or `compute`, called the same way) through the cache."""
        found = self.lookup(arch, input_shape=input_shape, num_classes=num_classes, options=options)
        if found is not None:
            return found
        from workbench.models.registry import check_input_shape

        shape = check_input_shape(input_shape) if input_shape is not None else None
        summary = (compute or summarize)(arch, input_shape=shape, num_classes=num_classes, options=dict(options or {}))
        with self._lock:
            self.computed += 1
        self.put(summary)
        return summary


_session: SummaryCache | None = None
_session_lock = threading.Lock()


def session_cache() -> SummaryCache:
    """The process's cache (the shipped file below it, unless $WORKBENCH_NO_SHIPPED_SUMMARIES is set)."""
    global _session
    with _session_lock:
        if _session is None:
            shipped = None if os.environ.get("WORKBENCH_NO_SHIPPED_SUMMARIES") else shipped_path()
            _session = SummaryCache(shipped)
        return _session


# --- the shipped file ----------------------------------------------------------------------------------------
def shipped_path() -> Path:
    """resources/summaries.json (in a checkout or the installed package)."""
    from workbench.paths import resource

    return resource(SHIPPED_NAME)


def shipped_requests() -> list[tuple[str, tuple[int, int, int], int]]:
    """(arch, input shape, classes) of every shipped summary: each lecture architecture (the registry's own, not
    torchvision's) at its natural input and classes, and at the bundled digits' channels and 10 classes."""
    from workbench.models.registry import get_spec, list_models

    requests: list[tuple[str, tuple[int, int, int], int]] = []
    for name in list_models():
        if name.startswith("tv:"):
            continue
        spec = get_spec(name)
        natural = tuple(spec.natural_input_for(spec.defaults()))
        channels, classes = DIGITS_INPUT
        for shape, n in ((natural, spec.default_classes), ((channels, *natural[1:]), classes)):
            entry = (name, (int(shape[0]), int(shape[1]), int(shape[2])), int(n))
            if entry not in requests:
                requests.append(entry)
    return requests


def write_shipped(path: Path, summaries: Iterable[ModelSummary]) -> int:
    """Write `summaries` as a shipped cache file (version and fingerprint of the running code); returns the count."""
    entries = [summary_to_json(s) for s in summaries]
    payload = {"version": cache_version(), "fingerprint": fingerprint(), "summaries": entries}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(path)
    return len(entries)


def read_shipped(path: Path) -> dict[str, Any] | None:
    """The shipped file as JSON, or None when it is missing, unreadable or made for another version or code."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("version") != cache_version():
        return None
    if payload.get("fingerprint") != fingerprint():
        return None
    return payload


def load_shipped(path: Path) -> dict[str, ModelSummary]:
    """The usable summaries of a shipped file by key (none when it is stale; a damaged entry is skipped)."""
    payload = read_shipped(path)
    found: dict[str, ModelSummary] = {}
    for data in (payload or {}).get("summaries", []):
        try:
            summary = summary_from_json(data)
        except (KeyError, TypeError, ValueError):
            continue
        found[key_of(summary)] = summary
    return found
