"""The summary worker: results off the GUI thread, stale results dropped, errors reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import InputTooSmallError
from workbench.ui.summary_worker import SummaryWorker


def test_stale_result_is_dropped_and_the_newest_request_goes_next(qtbot: Any) -> None:
    """A computes; B and then C are requested meanwhile: B is replaced by C, A's result is dropped, C is shown."""
    release_a = threading.Event()
    seen: list[tuple[str, str]] = []

    def compute(arch: str, shape: Any, classes: Any, options: dict, _cancellation: Any) -> dict:
        seen.append((arch, threading.current_thread().name))
        if arch == "A":
            assert release_a.wait(10), "test never released A"
        return {"arch": arch}

    worker = SummaryWorker(compute)
    delivered: list[tuple[int, Any]] = []
    dropped: list[int] = []
    worker.finished.connect(lambda rid, result: delivered.append((rid, result)))
    worker.dropped.connect(dropped.append)
    rid_a = worker.request("A")
    rid_b = worker.request("B")                   # waits: one summary at a time
    with qtbot.waitSignal(worker.finished, timeout=10_000) as c_done:
        rid_c = worker.request("C")               # replaces B
        release_a.set()
    assert c_done.args[0] == rid_c and c_done.args[1] == {"arch": "C"}
    assert dropped == [rid_b, rid_a] and delivered == [(rid_c, {"arch": "C"})]
    assert [arch for arch, _ in seen] == ["A", "C"] and worker.computations == 2
    assert threading.main_thread().name not in {thread for _, thread in seen}  # computed off the GUI thread
    assert worker.shutdown(5000)


def test_error_of_latest_request_is_reported(qtbot: Any) -> None:
    def compute(arch: str, shape: Any, classes: Any, options: dict, _cancellation: Any) -> dict:
        raise InputTooSmallError("The input 3×8×8 is too small for alexnet: use at least 63×63.")

    worker = SummaryWorker(compute)
    with qtbot.waitSignal(worker.failed, timeout=10_000) as failed:
        rid = worker.request("alexnet", input_shape=(3, 8, 8))
    assert failed.args[0] == rid
    assert "too small" in failed.args[1] and failed.args[2] == ""  # the sentence says it all: no traceback
    assert failed.args[3] is True  # a user-fixable error
    assert worker.shutdown(5000)


def _gated_worker(gate: threading.Event) -> tuple[SummaryWorker, list[Any]]:
    """A worker whose summaries (the architecture's name) wait for `gate`, and the list of what it delivers."""

    def compute(arch: str, shape: Any, classes: Any, options: dict, _cancellation: Any) -> str:
        gate.wait(10)
        return arch

    worker = SummaryWorker(compute)
    got: list[Any] = []
    worker.finished.connect(lambda rid, r: got.append(r))
    return worker, got


def test_invalidate_drops_in_flight_result(qtbot: Any) -> None:
    gate = threading.Event()
    worker, got = _gated_worker(gate)
    rid = worker.request("x")
    worker.invalidate()
    with qtbot.waitSignal(worker.dropped, timeout=10_000) as dropped:
        gate.set()
    assert dropped.args == [rid] and got == []
    assert worker.shutdown(5000)


def test_cached_summary_is_delivered_at_once_without_a_computation(qtbot: Any) -> None:
    computed: list[str] = []
    cache = {"lenet": {"arch": "lenet"}}

    def compute(arch: str, shape: Any, classes: Any, options: dict, _cancellation: Any) -> dict:
        computed.append(arch)
        result = cache[arch] = {"arch": arch}
        return result

    def lookup(arch: str, shape: Any, classes: Any, options: dict) -> dict | None:
        return cache.get(arch)

    worker = SummaryWorker(compute, lookup=lookup)
    delivered: list[tuple[int, Any]] = []
    worker.finished.connect(lambda rid, result: delivered.append((rid, result)))
    rid = worker.request("lenet")
    assert delivered == [(rid, {"arch": "lenet"})] and not worker.is_busy()  # before request() returned
    assert worker.cache_hits == 1 and worker.computations == 0
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.request("vgg")
    assert computed == ["vgg"] and worker.computations == 1
    worker.request("vgg")                                                      # now cached
    assert computed == ["vgg"] and worker.cache_hits == 2 and len(delivered) == 3
    assert worker.shutdown(5000)


def test_shutdown_abandons_a_summary_that_runs_too_long(qtbot: Any) -> None:
    gate = threading.Event()
    worker, got = _gated_worker(gate)
    dropped: list[int] = []
    worker.dropped.connect(dropped.append)
    worker.request("slow")
    assert worker.shutdown(50) is False                 # gave up waiting: abandoned, nothing delivered
    gate.set()
    qtbot.waitUntil(lambda: not worker._running, timeout=10_000)
    # An abandoned task delivers nothing at all: not even the result that a merely invalidated one would hand in
    # (and the worker would then report as dropped).
    assert got == [] and dropped == []


@pytest.fixture
def stub_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The app's shared helper replaced by a torch-free stub (tests/test_summary_process.py) and a FIFO its "slow"
    request waits on; the stub is ended whatever the test's outcome."""
    from tests.test_summary_process import make_gate, stub_processes
    from workbench.models import summary_process

    helpers = stub_processes(1)
    monkeypatch.setattr(summary_process, "_shared", helpers)
    yield helpers, make_gate(tmp_path)
    helpers.shutdown()


def test_with_the_helper_busy_the_newest_request_goes_next(qtbot: Any, stub_helper: tuple[Any, Path]) -> None:
    from tests.test_summary_process import open_gate

    helpers, gate = stub_helper
    worker = SummaryWorker()                                   # the app's: the engine's summaries, in the helper
    dropped: list[int] = []
    worker.dropped.connect(dropped.append)
    slow = worker.request("slow", options={"gate": str(gate)})
    qtbot.waitUntil(lambda: helpers.running == 1, timeout=60_000)
    second = worker.request("second")                          # waits for the helper ...
    with qtbot.waitSignal(worker.failed, timeout=60_000) as answered:
        newest = worker.request("newest")                      # ... and is replaced by the newest request
        open_gate(gate)                                        # the stale slow summary ends
    assert answered.args[0] == newest and answered.args[1] == "stub newest"
    assert dropped == [second, slow] and worker.computations == 2 and helpers.started == 1
    assert worker.shutdown(10_000)


def test_shutdown_ends_the_helper_process_computing_a_summary_instead_of_waiting(
        qtbot: Any, stub_helper: tuple[Any, Path]) -> None:
    helpers, gate = stub_helper                                # the gate is never opened: the helper waits for ever
    worker = SummaryWorker()                                   # the app's: the engine's summaries, in the helper
    failed: list[str] = []
    worker.failed.connect(lambda rid, message, details, user: failed.append(message))
    with qtbot.waitSignal(worker.started, timeout=10_000):
        worker.request("slow", options={"gate": str(gate)})
    qtbot.waitUntil(lambda: helpers.running == 1, timeout=60_000)
    assert worker.shutdown(60_000)                             # the gate never opens: only ending the helper
    assert helpers.running == 0 and failed == []               # lets the thread return; nothing was reported


def test_the_engine_import_starts_the_summary_helper(stub_helper: tuple[Any, Path]) -> None:
    from workbench.ui.startup import engine_import_task
    from workbench.ui.tasks import RecordingSink

    helpers, _gate = stub_helper
    assert helpers.running == 0
    engine_import_task(RecordingSink())               # it imports torch while the user looks at the first summary
    assert helpers.started == 1 and helpers.running == 1
