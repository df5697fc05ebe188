"""Summaries in helper processes: equal to the engine's, errors with their meaning, helpers replaced when they die,
the calling thread's summarize when none can start, helpers that end with the app."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from workbench.errors import WorkbenchError
from workbench.models import summarize
from workbench.models.summary_process import (
    Cancellation,
    SummaryCancelled,
    SummaryProcessError,
    SummaryProcesses,
    serve,
)

# A helper that answers without torch (fast to start): "die" kills itself mid-request, "slow" waits for a line
# on a pipe named by its options, "bug" is answered with an unexpected error, anything else is answered with a user error naming the architecture.
STUB = r"""
import json, os, signal, sys
for line in sys.stdin:
    request = json.loads(line)
    if request["arch"] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if request["arch"] == "slow":
        with open(request["options"]["gate"]) as gate:
            gate.readline()
    bug = request["arch"] == "bug"
    print(json.dumps({"error": {"type": "ZeroDivisionError" if bug else "UnknownNameError",
                                "message": "stub " + request["arch"], "workbench_error": not bug,
                                "traceback": "Traceback (in the helper)" if bug else ""}}), flush=True)
"""


@pytest.fixture
def stubs() -> Iterator[SummaryProcesses]:
    helpers = SummaryProcesses(2, argv=[sys.executable, "-c", STUB])
    yield helpers
    helpers.shutdown()


def test_a_helper_computes_exactly_the_engines_summary_and_reports_user_errors_as_such() -> None:
    helpers = SummaryProcesses(1)
    try:
        helpers.warm()
        assert helpers.running == 1
        got = helpers.summarize("vgg", input_shape=(1, 32, 32), num_classes=7,
                                options={"block_info": ((1, 16), (1, 32))})
        assert got == summarize("vgg", input_shape=(1, 32, 32), num_classes=7,
                                options={"block_info": ((1, 16), (1, 32))})
        pid = helpers._idle[0].process.pid
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)  # background
        os.kill(pid, signal.SIGINT)                                       # Ctrl+C in the terminal: the app's business
        with pytest.raises(WorkbenchError) as too_small:
            helpers.summarize("vgg16", input_shape=(1, 8, 8))
        with pytest.raises(WorkbenchError) as here:
            summarize("vgg16", input_shape=(1, 8, 8))
        assert str(too_small.value) == str(here.value)                   # the same sentence as in the app's thread
        assert helpers.summarize("lenet") == summarize("lenet")          # the same helper, still alive
        assert (helpers.started, helpers.answered, helpers.broken) == (1, 3, None)
    finally:
        helpers.shutdown()
    assert helpers.running == 0


def test_an_unexpected_error_in_a_helper_carries_its_traceback(stubs: SummaryProcesses) -> None:
    import traceback

    with pytest.raises(SummaryProcessError, match=r"^ZeroDivisionError: stub bug$") as bug:
        stubs.summarize("bug")
    assert "Traceback (in the helper)" in "".join(traceback.format_exception(bug.value))  # the app's details


def test_a_helper_that_dies_is_reported_and_replaced(stubs: SummaryProcesses) -> None:
    with pytest.raises(SummaryProcessError, match=r"summary of die stopped unexpectedly \(exit code -9\); select"):
        stubs.summarize("die")
    assert stubs.running == 0 and stubs.broken is None
    with pytest.raises(WorkbenchError, match=r"^stub lenet$"):            # a new helper answers the next request
        stubs.summarize("lenet")
    assert (stubs.started, stubs.running) == (2, 1)


def test_a_helper_killed_while_idle_is_replaced_without_an_error(stubs: SummaryProcesses) -> None:
    stubs.warm()
    (helper,) = stubs._idle
    helper.process.kill()
    helper.process.wait(timeout=60)
    with pytest.raises(WorkbenchError, match="stub lenet"):              # answered by a new helper
        stubs.summarize("lenet")
    assert (stubs.started, stubs.running) == (2, 1)


def test_two_requests_at_once_get_two_helpers_and_later_ones_reuse_them(stubs: SummaryProcesses, tmp_path) -> None:
    gate = tmp_path / "gate"
    subprocess.run(["mkfifo", str(gate)], check=True)
    errors: list[str] = []

    def slow() -> None:
        try:
            stubs.summarize("slow", options={"gate": str(gate)})
        except WorkbenchError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=slow)
    thread.start()
    with open(gate, "w") as opened:                                       # the slow request is being served now
        with pytest.raises(WorkbenchError, match="stub resnet18"):
            stubs.summarize("resnet18")                                   # ... and this one did not wait for it
        opened.write("go\n")
    thread.join()
    assert errors == ["stub slow"] and stubs.started == 2
    for arch in ("a", "b", "c"):
        with pytest.raises(WorkbenchError):
            stubs.summarize(arch)
    assert stubs.started == 2 and stubs.running == 2


def test_with_one_helper_a_second_request_waits_for_it(tmp_path) -> None:
    helpers = SummaryProcesses(1, argv=[sys.executable, "-c", STUB])
    gate = tmp_path / "gate"
    subprocess.run(["mkfifo", str(gate)], check=True)
    answered: list[str] = []

    def ask(arch: str, options: dict) -> None:
        try:
            helpers.summarize(arch, options=options)
        except WorkbenchError as exc:
            answered.append(str(exc))

    slow = threading.Thread(target=ask, args=("slow", {"gate": str(gate)}))
    slow.start()
    with open(gate, "w") as opened:                                       # the helper is busy with "slow" now
        second = threading.Thread(target=ask, args=("second", {}))
        second.start()
        second.join(0.2)
        assert second.is_alive()                                          # waiting: no second helper to run it
        opened.write("go\n")
    slow.join()
    second.join()
    assert answered == ["stub slow", "stub second"] and helpers.started == 1
    helpers.shutdown()


def test_a_cancelled_summary_ends_its_helper_and_the_next_request_gets_a_new_one(stubs: SummaryProcesses,
                                                                                 tmp_path) -> None:
    gate = tmp_path / "gate"
    subprocess.run(["mkfifo", str(gate)], check=True)                    # never opened for writing: waits for ever
    cancellation = Cancellation()
    raised: list[BaseException] = []

    def slow() -> None:
        try:
            stubs.summarize("slow", options={"gate": str(gate)}, cancellation=cancellation)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    for _ in range(6000):                                                 # until the request is in a helper
        if cancellation._helper is not None:
            break
        thread.join(0.01)
    cancellation.cancel()
    thread.join(60)
    assert not thread.is_alive() and len(raised) == 1 and type(raised[0]) is SummaryCancelled
    assert str(raised[0]) == "The summary of slow was cancelled."
    assert stubs.running == 0 and stubs.broken is None
    with pytest.raises(WorkbenchError, match="stub lenet"):
        stubs.summarize("lenet")
    with pytest.raises(SummaryCancelled):                                 # cancelled before it was sent
        stubs.summarize("lenet", cancellation=cancellation)


@pytest.mark.parametrize("argv", [["/nonexistent/python"], [sys.executable, "-c", "import sys; sys.exit(3)"]])
def test_when_no_helper_can_start_summaries_are_computed_in_the_calling_thread(argv: list[str],
                                                                                capfd: pytest.CaptureFixture) -> None:
    helpers = SummaryProcesses(2, argv=argv)
    assert helpers.summarize("lenet") == summarize("lenet")
    assert helpers.broken and "summaries computed in the app" in capfd.readouterr().err
    assert helpers.summarize("alexnet") == summarize("alexnet")          # without trying to start one again
    assert helpers.started <= 1 and helpers.running == 0


def test_after_shutdown_summaries_are_computed_in_the_calling_thread(stubs: SummaryProcesses) -> None:
    stubs.warm()
    stubs.shutdown()
    assert stubs.running == 0
    assert stubs.summarize("lenet") == summarize("lenet")


def test_a_helper_exits_when_the_app_closes_its_input() -> None:
    helper = subprocess.Popen([sys.executable, "-m", "workbench.models.summary_process"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = helper.communicate(b"", timeout=120)                         # stdin closed at once, as at a crash
    assert helper.returncode == 0, err.decode()


def test_serve_answers_one_line_per_request_with_summaries_and_errors() -> None:
    requests = io.StringIO("\n".join(json.dumps(r) for r in [
        {"arch": "lenet", "input_shape": [1, 28, 28], "num_classes": 10, "options": {}},
        {"arch": "no_such_net", "input_shape": None, "num_classes": None, "options": {}},
        {"arch": "resnet18", "input_shape": [3, 32, 32], "num_classes": 10, "options": {"bogus": 1}},
    ]) + "\n")
    answers = io.StringIO()
    serve(requests, answers)
    lines = [json.loads(line) for line in answers.getvalue().splitlines()]
    assert len(lines) == 3 and "summary" in lines[0]
    assert lines[1]["error"]["workbench_error"] and "no_such_net" in lines[1]["error"]["message"]
    assert lines[2]["error"]["workbench_error"] and "bogus" in lines[2]["error"]["message"]
