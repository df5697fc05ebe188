"""Summaries computed in helper processes, so that a window's event loop never waits for the GIL.

A summary is mostly Python (torchinfo's hooks on every layer): computed in a thread of the app, it holds the GIL
for long stretches and the window stutters. `SummaryProcesses` keeps up to `max_processes` helper processes,
started on first use (or `warm()`) and reused; a request made while all are busy waits for one. A request is one
JSON line on the helper's stdin, the answer one JSON object on a line of its stdout (`summary_to_json`); the
calling thread only waits on a pipe. The helper moves its stdout to stderr before importing anything (`HELPER_CODE`)
and the app skips any line that is not an answer, so a library printing at import cannot garble the exchange. A
helper exits when its stdin closes (the app quit, however abruptly).

Errors keep their meaning: a `WorkbenchError` raised in the helper is raised again with its class and sentence;
anything else becomes `SummaryProcessError`, with the helper's traceback as its cause. A helper that dies while
summarising is replaced and the request sent once more. When helpers cannot be started at all (a frozen app, no
interpreter, or one that fails to import the engine), summaries are computed in the calling thread instead: slower
for the window, never broken. After `shutdown()` (the app is closing) requests fail with SummaryProcessError.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from typing import IO, Any

from workbench.errors import WorkbenchError
from workbench.json_tags import tag, untag
from workbench.models.summary import ModelSummary

Shape = tuple[int, int, int]
# Run with `python -c`: fd 1 becomes stderr before any import (torch, MKL and site hooks may print), answers go to
# a duplicate of the original stdout.
HELPER_CODE = ("import os, sys; answers = os.fdopen(os.dup(1), 'w', encoding='utf-8'); os.dup2(2, 1); "
               "from workbench.models.summary_process import main; main(answers)")
_STDERR_TAIL = 2000  # characters of a dead helper's stderr quoted in the error
_WAIT_POLL_S = 0.25  # how often a request waiting for a busy helper looks at its cancellation


class SummaryProcessError(RuntimeError):
    """A summary failed in a helper process with an error that is not the user's (a bug, or the helper died)."""


class SummaryCancelled(SummaryProcessError):
    """The summary was cancelled (its helper was ended) before it was answered."""


class _RemoteTraceback(Exception):
    """Carries the helper's traceback text, so that it shows as the cause of the error raised here."""


class _HelperDied(Exception):
    """The helper's pipe closed: it exited or was killed."""


class Cancellation:
    """Lets another thread abandon a summary: `cancel()` ends the helper computing it at once (a new one replaces
    it), so the waiting thread returns instead of waiting for an answer nobody wants."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helper: _Helper | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """Abandon the summary (from any thread); the call waiting for it raises SummaryCancelled."""
        with self._lock:  # the kill under the lock: once _attach(None) has returned, no helper is killed by this
            self.cancelled = True
            if self._helper is not None:
                self._helper.kill()

    def _attach(self, helper: _Helper | None) -> bool:
        with self._lock:
            self._helper = helper
            return not self.cancelled


class _Helper:
    """One helper process and its pipes; used by one thread at a time."""

    def __init__(self, argv: list[str]) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the helper)
        self._stderr_text = ""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=self._stderr, env=env, text=True, encoding="utf-8", bufsize=1)
        except BaseException:
            self._stderr.close()
            raise

    def call(self, line: str) -> dict[str, Any]:
        """Send one request line, return the answer; lines that are not an answer (stray output) are skipped."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(line + "\n")
            stdin.flush()
            while True:
                reply = stdout.readline()
                if not reply:
                    raise _HelperDied("")
                answer = _parse_answer(reply)
                if answer is not None:
                    return answer
                print(f"workbench summary helper: {reply.rstrip()}", file=sys.stderr)
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed by close()
            raise _HelperDied(str(exc)) from exc

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def stderr_tail(self) -> str:
        """The end of what it wrote to stderr (kept when it is closed)."""
        if self._stderr.closed:
            return self._stderr_text
        try:
            self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, self._stderr.tell() - _STDERR_TAIL))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """End it (nothing to save) and close its pipes; a thread waiting on it then reads the end of its output."""
        self.kill()
        self.exit_code()
        for pipe in (self.process.stdin, self.process.stdout):  # stdout after the kill: a reader holds its lock
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        self._stderr_text = self.stderr_tail()
        self._stderr.close()


def _parse_answer(line: str) -> dict[str, Any] | None:
    """The answer on this line, or None for anything else."""
    if not line.startswith("{"):
        return None
    try:
        answer = json.loads(line)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and ("summary" in answer or "error" in answer) else None


class SummaryProcesses:
    """Up to `max_processes` helper processes computing summaries; thread-safe, one request per helper at a time."""

    def __init__(self, max_processes: int = 1, *, argv: list[str] | None = None) -> None:
        self._argv = argv or [sys.executable or "", "-c", HELPER_CODE]
        self._max = max(1, max_processes)
        self._idle: list[_Helper] = []
        self._busy: set[_Helper] = set()
        self._cond = threading.Condition()
        self._closed = False
        self.broken: str | None = None  # why helpers could not be started (summaries then run in the caller)
        if argv is None and getattr(sys, "frozen", False):
            self.broken = "a frozen app cannot start a Python helper"
        self.started = 0                 # helpers started so far
        self.answered = 0                # requests answered by helpers

    @property
    def running(self) -> int:
        """Helper processes alive now."""
        with self._cond:
            return len(self._idle) + len(self._busy)

    def warm(self) -> None:
        """Start one helper now, if none is running (it imports torch while the user is still looking)."""
        with self._cond:
            if self._idle or self._busy or self.broken or self._closed:
                return
            helper = self._start_locked()
            if helper is not None:
                self._idle.append(helper)

    def summarize(self, arch: str, *, input_shape: Shape | None = None, num_classes: int | None = None,
                  options: dict[str, Any] | None = None, cancellation: Cancellation | None = None) -> ModelSummary:
        """`workbench.models.summarize` in a helper process (blocks the calling thread, not its GIL);
        `cancellation.cancel()` from another thread abandons it (SummaryCancelled). A helper that dies on the request
        (killed from outside, out of memory) is replaced and the request sent once more."""
        line = json.dumps({"arch": arch, "input_shape": list(input_shape) if input_shape is not None else None,
                           "num_classes": num_classes, "options": tag(dict(options or {}))})
        for attempt in (1, 2):
            helper = self._checkout(arch, cancellation)
            if helper is None:
                return self._summarize_here(arch, input_shape, num_classes, options)
            try:
                answer = self._ask(helper, arch, line, cancellation)
            except _HelperDied:
                code, tail = helper.exit_code(), helper.stderr_tail()
                if not self.answered and code is not None and code > 0 and tail:  # it failed to start (a traceback)
                    self._mark_broken(f"the summary process exited at start: {tail[-300:]}")
                    return self._summarize_here(arch, input_shape, num_classes, options)
                if attempt == 2:
                    raise SummaryProcessError(
                        f"The process computing the summary of {arch} stopped unexpectedly twice (last exit code "
                        f"{code}; e.g. out of memory). Ask for this summary again to retry; the details have the "
                        "process's last output."
                    ) from _RemoteTraceback(tail)
                continue
            return _answer_to_summary(answer, arch)
        raise AssertionError("unreachable")

    def _ask(self, helper: _Helper, arch: str, line: str, cancellation: Cancellation | None) -> dict[str, Any]:
        """One request to a checked-out helper; it is checked in again, or discarded (_HelperDied) when it died."""
        if cancellation is not None and not cancellation._attach(helper):
            self._checkin(helper)
            raise SummaryCancelled(f"The summary of {arch} was cancelled.")
        try:
            answer = helper.call(line)
        except _HelperDied:
            self._discard(helper)
            if cancellation is not None and cancellation.cancelled:
                raise SummaryCancelled(f"The summary of {arch} was cancelled.") from None
            if self._closed:
                raise SummaryProcessError("The summary was abandoned because the app is closing.") from None
            raise
        except BaseException:
            self._discard(helper)
            raise
        finally:
            if cancellation is not None:
                cancellation._attach(None)
        with self._cond:
            self.answered += 1
        if cancellation is not None and cancellation.cancelled:
            self._discard(helper)  # it may have been killed after answering
        else:
            self._checkin(helper)
        return answer

    def shutdown(self) -> None:
        """Stop every helper (a thread waiting on one gets SummaryProcessError); requests after this fail too."""
        with self._cond:
            self._closed = True
            helpers = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
            self._cond.notify_all()
        for helper in helpers:
            helper.close()

    # --- helpers in and out ---
    def _start_locked(self) -> _Helper | None:
        try:
            helper = _Helper(self._argv)
        except (OSError, ValueError, TypeError) as exc:  # no such file; an empty or odd sys.executable
            self._mark_broken(f"could not start {self._argv[0]!r}: {exc}")
            return None
        self.started += 1
        return helper

    def _checkout(self, arch: str, cancellation: Cancellation | None) -> _Helper | None:
        """An idle (or new) helper; None when summaries are to be computed here. Waits while all are busy."""
        with self._cond:
            while True:
                if self._closed:
                    raise SummaryProcessError("The summary was abandoned because the app is closing.")
                if cancellation is not None and cancellation.cancelled:
                    raise SummaryCancelled(f"The summary of {arch} was cancelled.")
                if self.broken:
                    return None
                if self._idle:
                    helper = self._idle.pop()
                    if helper.process.poll() is not None:  # it died while idle (killed from outside): replace it
                        helper.close()
                        continue
                elif len(self._busy) < self._max:
                    started = self._start_locked()
                    if started is None:
                        return None
                    helper = started
                else:
                    self._cond.wait(_WAIT_POLL_S)
                    continue
                self._busy.add(helper)
                return helper

    def _checkin(self, helper: _Helper) -> None:
        with self._cond:
            if helper in self._busy:  # not when shutdown() took it away meanwhile
                self._busy.discard(helper)
                self._idle.append(helper)
            self._cond.notify()

    def _discard(self, helper: _Helper) -> None:
        with self._cond:
            self._busy.discard(helper)
            self._cond.notify()
        helper.close()

    def _mark_broken(self, why: str) -> None:
        self.broken = why
        print(f"workbench: summaries computed in the app ({why})", file=sys.stderr)

    def _summarize_here(self, arch: str, input_shape: Shape | None, num_classes: int | None,
                        options: dict[str, Any] | None) -> ModelSummary:
        from workbench.models.summary import summarize

        return summarize(arch, input_shape=input_shape, num_classes=num_classes, options=dict(options or {}))


def _answer_to_summary(answer: dict[str, Any], arch: str) -> ModelSummary:
    from workbench import errors
    from workbench.models.summary_cache import summary_from_json

    if "summary" in answer:
        return summary_from_json(answer["summary"])
    error = answer.get("error", {})
    message, kind = str(error.get("message", "unknown error")), str(error.get("type", "Error"))
    if error.get("workbench_error"):
        cls = getattr(errors, kind, WorkbenchError)   # the same class as in the app's thread (InputTooSmallError …)
        raise (cls if isinstance(cls, type) and issubclass(cls, WorkbenchError) else WorkbenchError)(message)
    raise SummaryProcessError(f"Computing the summary of {arch} failed with {kind}: {message}") from _RemoteTraceback(
        str(error.get("traceback", "")))


_shared: SummaryProcesses | None = None
_shared_lock = threading.Lock()


def shared_processes() -> SummaryProcesses:
    """The app's helper (stopped at exit): one, as each costs a Python with torch imported (about 375 MB of its
    own); a request waits for the one before it (about 1 s at most, for the largest torchvision models)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SummaryProcesses(1)
            atexit.register(_shared.shutdown)
        return _shared


def summarize_in_helper(arch: str, *, input_shape: Shape | None = None, num_classes: int | None = None,
                        options: dict[str, Any] | None = None, cancellation: Cancellation | None = None
                        ) -> ModelSummary:
    """`summarize` through the session cache, computed (when not cached) by the app's helper: what the app's
    threads call, so that they wait on a pipe instead of holding the GIL."""
    from workbench.models.summary_cache import session_cache

    compute = functools.partial(shared_processes().summarize, cancellation=cancellation)
    return session_cache().summarize(arch, input_shape=input_shape, num_classes=num_classes, options=options,
                                     compute=compute)


# --- the helper's side ---------------------------------------------------------------------------------------
def _answer(request: dict[str, Any]) -> dict[str, Any]:
    from workbench.models.registry import check_input_shape
    from workbench.models.summary import summarize
    from workbench.models.summary_cache import summary_to_json

    try:
        shape = request.get("input_shape")
        summary = summarize(str(request["arch"]), input_shape=check_input_shape(shape) if shape else None,
                            num_classes=request.get("num_classes"), options=untag(request.get("options") or {}))
        return {"summary": summary_to_json(summary)}
    except Exception as exc:  # every error goes back to the app, which raises it there
        return _error_answer(exc)


def _error_answer(exc: Exception) -> dict[str, Any]:
    return {"error": {"type": type(exc).__name__, "message": str(exc),
                      "workbench_error": isinstance(exc, WorkbenchError),
                      "traceback": "".join(traceback.format_exception(exc))}}


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer one JSON line per request line until `requests` ends."""
    for line in requests:
        if line.strip():
            try:
                text = json.dumps(_answer(json.loads(line)))
            except Exception as exc:  # an unreadable request, an unwritable answer: still one answer per line
                text = json.dumps(_error_answer(exc))
            answers.write(text + "\n")
            answers.flush()


def main(answers: IO[str]) -> None:
    """The helper (started by `HELPER_CODE`, with stdout already moved to stderr): answers on `answers`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in the app's terminal is the app's to handle
    if hasattr(os, "nice"):
        os.nice(10)  # background work: on a busy machine the window's thread gets the core first
    import torch

    torch.set_num_threads(1)  # summaries run on the meta device: a second thread would only take the app's core
    try:
        serve(sys.stdin, answers)
    except BrokenPipeError:  # the app is gone: nobody to answer
        pass
