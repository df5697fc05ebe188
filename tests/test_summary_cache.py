"""The summary cache: an exactly equal JSON round trip, keys that normalise a request as summarize does, the
session cache computing once, and the shipped file matching what the code computes now (a stale file fails)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.models import summarize
from workbench.models import summary_cache as sc

REGENERATE = "the shipped summaries are stale: run python scripts/make_summary_cache.py and commit resources/summaries.json"
SAMPLE = [("lenet", (1, 28, 28), 10), ("vgg16", (3, 224, 224), 1000), ("googlenet", (1, 32, 32), 10),
          ("resnet20", (3, 32, 32), 10)]


def _json_round_trip(summary: sc.ModelSummary) -> sc.ModelSummary:
    return sc.summary_from_json(json.loads(json.dumps(sc.summary_to_json(summary))))


@pytest.mark.parametrize("arch, kwargs", [
    ("lenet", {}),
    ("vgg16", {}),                                                        # with a lecture note
    ("vgg", {"options": {"block_info": ((1, 16), (1, 32))}}),              # tuples in the options
    ("googlenet", {"input_shape": (1, 32, 32), "num_classes": 10}),        # None jumps after the flatten
])
def test_json_round_trip_is_exactly_equal(arch: str, kwargs: dict) -> None:
    summary = summarize(arch, **kwargs)
    back = _json_round_trip(summary)
    assert back == summary
    assert type(back.layers) is tuple and type(back.notes) is tuple
    assert all(type(a.param_share) is type(b.param_share) for a, b in zip(back.layers, summary.layers))
    if arch == "vgg":
        assert back.options["block_info"] == ((1, 16), (1, 32))


def test_rows_written_for_other_fields_are_refused() -> None:
    data = sc.summary_to_json(summarize("lenet"))
    data["layer_fields"] = data["layer_fields"][:-1]
    with pytest.raises(ValueError):
        sc.summary_from_json(data)


def test_session_cache_computes_once_and_normalises_requests() -> None:
    cache = sc.SummaryCache()
    first = cache.summarize("lenet")
    assert cache.computed == 1
    # The same network asked for differently: defaults spelled out, the natural input given.
    again = cache.summarize("lenet", input_shape=(1, 28, 28), num_classes=10,
                            options=dict(first.options))
    assert again is first and cache.computed == 1 and cache.hits == 1
    assert cache.lookup("lenet", input_shape=(1, 32, 32)) is None        # another input is another summary
    assert cache.lookup("lenet", options={"no_such_option": 1}) is None  # invalid: never cached, never raises
    cache.clear()
    assert cache.lookup("lenet") is None


def test_memory_cache_is_bounded() -> None:
    cache = sc.SummaryCache(max_entries=2)
    for classes in (2, 3, 4):
        cache.summarize("lenet", num_classes=classes)
    assert cache.lookup("lenet", num_classes=2) is None
    assert cache.lookup("lenet", num_classes=4) is not None


def test_key_contains_the_version_and_resolved_options() -> None:
    key = sc.normalized_key("vgg16", None, None, None)
    assert sc.cache_version() in key and '"vgg16"' in key
    assert key == sc.key_of(summarize("vgg16"))


def test_shipped_file_is_current() -> None:
    """The file was made by this code (fingerprint, version) and covers every lecture architecture."""
    payload = json.loads(sc.shipped_path().read_text(encoding="utf-8"))
    assert payload["version"] == sc.cache_version(), REGENERATE
    assert payload["fingerprint"] == sc.fingerprint(), REGENERATE
    shipped = sc.load_shipped(sc.shipped_path())
    wanted = {sc.normalized_key(arch, None, shape, classes) for arch, shape, classes in sc.shipped_requests()}
    assert set(shipped) == wanted, REGENERATE
    assert {"lenet", "vgg16", "googlenet", "resnet18", "nin"} <= {s.arch for s in shipped.values()}


@pytest.mark.parametrize("arch, shape, classes", SAMPLE)
def test_shipped_entries_equal_a_fresh_summary(arch: str, shape: tuple[int, int, int], classes: int) -> None:
    shipped = sc.load_shipped(sc.shipped_path())
    fresh = summarize(arch, input_shape=shape, num_classes=classes)
    assert shipped[sc.key_of(fresh)] == fresh, REGENERATE


@pytest.mark.slow
def test_every_shipped_entry_equals_a_fresh_summary() -> None:
    shipped = sc.load_shipped(sc.shipped_path())
    for arch, shape, classes in sc.shipped_requests():
        fresh = summarize(arch, input_shape=shape, num_classes=classes)
        assert shipped[sc.key_of(fresh)] == fresh, f"{arch} {shape} {classes}: {REGENERATE}"


def test_a_file_made_by_other_code_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "summaries.json"
    sc.write_shipped(path, [summarize("lenet")])
    assert len(sc.load_shipped(path)) == 1
    payload = json.loads(path.read_text())
    payload["fingerprint"] = "0" * 16
    path.write_text(json.dumps(payload))
    assert sc.load_shipped(path) == {}
    assert sc.SummaryCache(path).lookup("lenet") is None
    path.write_text("{ not json")
    assert sc.load_shipped(path) == {}
