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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workbench.errors import InputTooSmallError, UnknownNameError, WorkbenchError
from workbench.models import summarize
from workbench.models.summary_process import (
    HELPER_CODE,
    Cancellation,
    SummaryCancelled,
    SummaryProcessError,
    SummaryProcesses,
    serve,
)

# A helper that answers without torch (fast to start): "die" writes to stderr and kills itself mid-request ("die_once"
# only the first time, as a helper killed from outside), "slow"
# waits for a line on the FIFO named by its options, "noisy" prints stray lines before its answer, "bug" is answered
# with an unexpected error, anything else with a user error naming the architecture.
STUB = r"""
import json, os, signal, sys
for line in sys.stdin:
    request = json.loads(line)
    if request["arch"] == "die_once" and not os.path.exists(request["options"]["marker"]):
        open(request["options"]["marker"], "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if request["arch"] == "die":
        sys.stderr.write("dying on purpose\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if request["arch"] == "slow":
        with open(request["options"]["gate"]) as gate:
            gate.readline()
    if request["arch"] == "noisy":
        print("UserWarning: something a library printed", flush=True)
        print('{"not": "an answer"}', flush=True)
    bug = request["arch"] == "bug"
    print(json.dumps({"error": {"type": "ZeroDivisionError" if bug else "UnknownNameError",
                                "message": "stub " + request["arch"], "workbench_error": not bug,
                                "traceback": "Traceback (in the helper)" if bug else ""}}), flush=True)
"""


def stub_processes(max_processes: int) -> SummaryProcesses:
    """A pool of STUB helpers."""
    return SummaryProcesses(max_processes, argv=[sys.executable, "-c", STUB])


@pytest.fixture
def stubs() -> Iterator[SummaryProcesses]:
    helpers = stub_processes(2)
    yield helpers
    helpers.shutdown()  # also ends a stub still waiting on its gate


def make_gate(folder: Path) -> Path:
    """A FIFO a "slow" request waits on until `open_gate` writes to it."""
    gate = folder / "gate"
    os.mkfifo(gate)
    return gate


def open_gate(gate: Path) -> None:
    """Release the "slow" request: once its helper has the FIFO open (fails after 60 s if it never does)."""
    for _ in range(6000):
        try:
            fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until the reader is there
        except OSError:
            threading.Event().wait(0.01)
            continue
        os.write(fd, b"go\n")
        os.close(fd)
        return
    pytest.fail("the slow request never opened its gate")


def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(6000):
        if condition():
            return
        threading.Event().wait(0.01)
    pytest.fail("condition not reached in 60 s")


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
        with pytest.raises(InputTooSmallError) as too_small:           # the same class, for callers that catch it
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

    with pytest.raises(SummaryProcessError, match=r"^Computing the summary of bug failed with ZeroDivisionError: stub bug$"
                       ) as bug:
        stubs.summarize("bug")
    assert "Traceback (in the helper)" in "".join(traceback.format_exception(bug.value))  # the app's details


def test_a_helper_that_dies_is_replaced_and_the_request_sent_again(stubs: SummaryProcesses, tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match=r"^stub die_once$"):        # answered by the second helper
        stubs.summarize("die_once", options={"marker": str(tmp_path / "died")})
    assert (stubs.started, stubs.running, stubs.broken) == (2, 1, None)


def test_a_request_that_kills_its_helper_twice_is_reported_with_its_stderr(stubs: SummaryProcesses) -> None:
    with pytest.raises(SummaryProcessError, match=r"summary of die stopped unexpectedly twice \(last exit code -9;"
                       ) as died:
        stubs.summarize("die")
    assert str(died.value.__cause__) == "dying on purpose"               # shown in the error's details
    assert stubs.running == 0 and stubs.broken is None and stubs.started == 2
    with pytest.raises(UnknownNameError, match=r"^stub lenet$"):          # a new helper answers the next request
        stubs.summarize("lenet")
    assert (stubs.started, stubs.running) == (3, 1)


def test_a_helper_killed_while_idle_is_replaced_without_an_error(stubs: SummaryProcesses) -> None:
    stubs.warm()
    (helper,) = stubs._idle
    helper.process.kill()
    helper.process.wait(timeout=60)
    with pytest.raises(WorkbenchError, match="stub lenet"):              # answered by a new helper
        stubs.summarize("lenet")
    assert (stubs.started, stubs.running) == (2, 1)


def test_two_requests_at_once_get_two_helpers_and_later_ones_reuse_them(stubs: SummaryProcesses,
                                                                         tmp_path: Path) -> None:
    gate = make_gate(tmp_path)
    errors: list[str] = []

    def slow() -> None:
        try:
            stubs.summarize("slow", options={"gate": str(gate)})
        except WorkbenchError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=slow)
    thread.start()
    wait_until(lambda: stubs.running == 1)
    with pytest.raises(WorkbenchError, match="stub resnet18"):
        stubs.summarize("resnet18")                                       # did not wait for the slow one
    assert thread.is_alive()
    open_gate(gate)
    thread.join(60)
    assert errors == ["stub slow"] and stubs.started == 2
    for arch in ("a", "b", "c"):
        with pytest.raises(WorkbenchError):
            stubs.summarize(arch)
    assert stubs.started == 2 and stubs.running == 2


def test_stray_lines_on_a_helpers_stdout_are_skipped(stubs: SummaryProcesses, capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(WorkbenchError, match=r"^stub noisy$"):
        stubs.summarize("noisy")
    with pytest.raises(WorkbenchError, match=r"^stub next$"):              # the exchange is still in step
        stubs.summarize("next")
    assert "something a library printed" in capfd.readouterr().err and stubs.started == 1


def test_with_one_helper_a_second_request_waits_for_it_unless_cancelled(tmp_path: Path) -> None:
    helpers = stub_processes(1)
    gate = make_gate(tmp_path)
    answered: list[str] = []

    def ask(arch: str, options: dict, cancellation: Cancellation | None = None) -> None:
        try:
            helpers.summarize(arch, options=options, cancellation=cancellation)
        except (WorkbenchError, SummaryCancelled) as exc:
            answered.append(str(exc))

    try:
        slow = threading.Thread(target=ask, args=("slow", {"gate": str(gate)}))
        slow.start()
        wait_until(lambda: helpers.running == 1)
        cancellation = Cancellation()
        given_up = threading.Thread(target=ask, args=("given_up", {}, cancellation))
        given_up.start()
        second = threading.Thread(target=ask, args=("second", {}))
        second.start()
        second.join(0.2)
        assert second.is_alive()                                          # waiting: no second helper to run it
        cancellation.cancel()
        given_up.join(60)
        assert not given_up.is_alive() and slow.is_alive()               # it stopped waiting at once
        open_gate(gate)
        slow.join(60)
        second.join(60)
        assert answered == ["The summary of given_up was cancelled.", "stub slow", "stub second"]
        assert helpers.started == 1
    finally:
        helpers.shutdown()


def test_a_cancelled_summary_ends_its_helper_and_the_next_request_gets_a_new_one(stubs: SummaryProcesses,
                                                                                 tmp_path: Path) -> None:
    gate = make_gate(tmp_path)                                            # never opened: the helper waits for ever
    cancellation = Cancellation()
    raised: list[BaseException] = []

    def slow() -> None:
        try:
            stubs.summarize("slow", options={"gate": str(gate)}, cancellation=cancellation)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    wait_until(lambda: cancellation._helper is not None)                  # the request is in a helper
    cancellation.cancel()
    thread.join(60)
    assert not thread.is_alive() and len(raised) == 1 and type(raised[0]) is SummaryCancelled
    assert str(raised[0]) == "The summary of slow was cancelled."
    assert stubs.running == 0 and stubs.broken is None
    with pytest.raises(WorkbenchError, match="stub lenet"):
        stubs.summarize("lenet")
    with pytest.raises(SummaryCancelled):                                 # cancelled before it was sent
        stubs.summarize("lenet", cancellation=cancellation)


@pytest.mark.parametrize("argv, why", [
    (["/nonexistent/python"], "could not start '/nonexistent/python'"),
    ([sys.executable, "-c", "import sys; sys.exit('ImportError: no torch here')"], "ImportError: no torch here"),
])
def test_when_no_helper_can_start_summaries_are_computed_in_the_calling_thread(argv: list[str], why: str,
                                                                                capfd: pytest.CaptureFixture) -> None:
    helpers = SummaryProcesses(2, argv=argv)
    assert helpers.summarize("lenet") == summarize("lenet")
    assert helpers.broken and why in helpers.broken and "summaries computed in the app" in capfd.readouterr().err
    assert helpers.summarize("alexnet") == summarize("alexnet")          # without trying to start one again
    assert helpers.started <= 1 and helpers.running == 0


def test_a_frozen_app_computes_summaries_in_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    helpers = SummaryProcesses()
    assert helpers.summarize("lenet") == summarize("lenet") and helpers.started == 0 and "frozen" in helpers.broken


def test_after_shutdown_requests_fail_instead_of_computing(stubs: SummaryProcesses) -> None:
    stubs.warm()
    stubs.shutdown()
    assert stubs.running == 0
    with pytest.raises(SummaryProcessError, match="app is closing"):
        stubs.summarize("lenet")


def test_a_helper_exits_when_the_app_closes_its_input_and_keeps_import_noise_off_its_answers() -> None:
    noisy = HELPER_CODE.replace("from workbench", "print('noise while importing'); from workbench", 1)
    helper = subprocess.Popen([sys.executable, "-c", noisy], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    out, err = helper.communicate(b"", timeout=120)                       # stdin closed at once, as at a crash
    assert helper.returncode == 0, err.decode()
    assert out == b"" and b"noise while importing" in err                # printed after the switch: on stderr


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


def test_serve_answers_even_a_request_it_cannot_read() -> None:
    answers = io.StringIO()
    serve(io.StringIO("not json\n" + json.dumps({"arch": "lenet"}) + "\n"), answers)
    first, second = (json.loads(line) for line in answers.getvalue().splitlines())
    assert first["error"]["type"] == "JSONDecodeError" and not first["error"]["workbench_error"]
    assert "summary" in second                                           # the exchange is still in step
