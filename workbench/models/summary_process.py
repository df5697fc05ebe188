"""Summaries computed in helper processes, so that a window's event loop never waits for the GIL.

A summary is mostly Python (torchinfo's hooks on every layer): computed in a thread of the app, it holds the GIL
for long stretches and the window stutters. `SummaryProcesses` keeps up to `max_processes` helper processes
(`python -m workbench.models.summary_process`), started on first use (or `warm()`) and reused; a request made
while all are busy waits for one. A request is one JSON line on
the helper's stdin, the answer one JSON line on its stdout (`summary_to_json`); the calling thread only waits on
a pipe. A helper exits when its stdin closes (the app quit, however abruptly).

Errors keep their meaning: a `WorkbenchError` raised in the helper is raised again with the same sentence;
anything else becomes `SummaryProcessError`, with the helper's traceback as its cause. A helper that dies while
summarising is replaced on the next request. When helpers cannot be started at all (no interpreter to run, or
one that fails to import the engine), summaries are computed in the calling thread instead: slower for the
window, never broken.
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
from collections.abc import Callable
from typing import IO, Any

from workbench.errors import WorkbenchError
from workbench.json_tags import tag, untag
from workbench.models.summary import ModelSummary

Shape = tuple[int, int, int]
MODULE = "workbench.models.summary_process"
_STDERR_TAIL = 2000  # characters of a dead helper's stderr quoted in the error


class SummaryProcessError(RuntimeError):
    """A summary failed in a helper process with an error that is not the user's (a bug, or the helper died)."""


class _RemoteTraceback(Exception):
    """Carries the helper's traceback text, so that it shows as the cause of the error raised here."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SummaryCancelled(SummaryProcessError):
    """The summary was cancelled (its helper was ended) before it was answered."""


class Cancellation:
    """Lets another thread abandon a summary that a helper is computing: `cancel()` ends that helper at once (a
    new one replaces it), so the waiting thread returns instead of waiting for an answer nobody wants."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helper: _Helper | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """Abandon the summary (from any thread); the call waiting for it raises SummaryCancelled."""
        with self._lock:
            self.cancelled = True
            helper = self._helper
        if helper is not None and helper.process.poll() is None:
            helper.process.kill()

    def _attach(self, helper: _Helper | None) -> bool:
        with self._lock:
            self._helper = helper
            return not self.cancelled


class _HelperDied(Exception):
    """The helper's pipe closed: it exited or was killed."""


class _Helper:
    """One helper process and its pipes; used by one thread at a time."""

    def __init__(self, argv: list[str]) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the helper)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                        env=env, text=True, encoding="utf-8", bufsize=1)

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
            line = stdout.readline()
        except (BrokenPipeError, OSError, ValueError) as exc:  # ValueError: the pipe was closed by close()
            raise _HelperDied(str(exc)) from exc
        if not line:
            raise _HelperDied("")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stderr_tail(self) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - _STDERR_TAIL))
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
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (self.process.stdin, self.process.stdout):  # stdout after the kill: a reader holds its lock
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        self._stderr.close()


class SummaryProcesses:
    """Up to `max_processes` helper processes computing summaries; thread-safe, one request per helper at a time."""

    def __init__(self, max_processes: int = 2, *, argv: list[str] | None = None,
                 fallback: Callable[..., ModelSummary] | None = None) -> None:
        self._argv = argv or [sys.executable, "-m", MODULE]
        self._max = max(1, max_processes)
        self._idle: list[_Helper] = []
        self._busy: set[_Helper] = set()
        self._cond = threading.Condition()
        self._fallback = fallback
        self._closed = False
        self.broken: str | None = None  # why helpers could not be started (summaries then run in the caller)
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
        `cancellation.cancel()` from another thread abandons it (SummaryCancelled)."""
        helper = self._checkout()
        if helper is None:
            return self._summarize_here(arch, input_shape, num_classes, options)
        if cancellation is not None and not cancellation._attach(helper):
            self._checkin(helper)
            raise SummaryCancelled(f"The summary of {arch} was cancelled.")
        request = {"arch": arch, "input_shape": list(input_shape) if input_shape is not None else None,
                   "num_classes": num_classes, "options": tag(dict(options or {}))}
        try:
            answer = helper.call(request)
        except _HelperDied:
            self._discard(helper)
            if cancellation is not None and cancellation.cancelled:
                raise SummaryCancelled(f"The summary of {arch} was cancelled.") from None
            if self._closed:
                raise SummaryProcessError("The summary was abandoned because the app is closing.") from None
            code = helper.exit_code()
            if not self.answered and code is not None and code > 0:  # it exited with an error before any answer
                self._mark_broken(f"the summary process exited at start: {helper.stderr_tail()[-300:]}")
                return self._summarize_here(arch, input_shape, num_classes, options)
            raise SummaryProcessError(
                f"The process computing the summary of {arch} stopped unexpectedly (exit code {code}); select the "
                f"architecture again to retry.") from _RemoteTraceback(helper.stderr_tail())
        finally:
            if cancellation is not None:
                cancellation._attach(None)
        with self._cond:
            self.answered += 1
        self._checkin(helper)
        return _answer_to_summary(answer)

    def shutdown(self) -> None:
        """Stop every helper (a thread waiting on one gets SummaryProcessError); requests after this are computed in
        the calling thread."""
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
        except OSError as exc:
            self._mark_broken(f"could not start {self._argv[0]}: {exc}")
            return None
        self.started += 1
        return helper

    def _checkout(self) -> _Helper | None:
        with self._cond:
            while True:
                if self.broken or self._closed:
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
                    self._cond.wait()
                    continue
                self._busy.add(helper)
                return helper

    def _checkin(self, helper: _Helper) -> None:
        with self._cond:
            if helper in self._busy:  # not when close() took it away meanwhile
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
        if self._fallback is not None:
            return self._fallback(arch, input_shape=input_shape, num_classes=num_classes, options=options)
        from workbench.models.summary import summarize

        return summarize(arch, input_shape=input_shape, num_classes=num_classes, options=dict(options or {}))


def _answer_to_summary(answer: dict[str, Any]) -> ModelSummary:
    from workbench.models.summary_cache import summary_from_json

    if "summary" in answer:
        return summary_from_json(answer["summary"])
    error = answer.get("error", {})
    message = str(error.get("message", "unknown error"))
    if error.get("workbench_error"):
        raise WorkbenchError(message)
    raise SummaryProcessError(f"{error.get('type', 'Error')}: {message}") from _RemoteTraceback(
        str(error.get("traceback", "")))


_shared: SummaryProcesses | None = None
_shared_lock = threading.Lock()


def shared_processes() -> SummaryProcesses:
    """The app's helper (stopped at exit): one, as each costs a Python with torch imported (about 375 MB of its
    own), and a request waits at most one summary (about 1 s for the largest torchvision models) behind another."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SummaryProcesses(1)
            atexit.register(_shared.shutdown)
        return _shared


def summarize_in_helper(arch: str, *, input_shape: Shape | None = None, num_classes: int | None = None,
                        options: dict[str, Any] | None = None, cancellation: Cancellation | None = None
                        ) -> ModelSummary:
    """`summarize` through the session cache, computed (when not cached) by the shared helpers: what the app's
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
        return {"error": {"type": type(exc).__name__, "message": str(exc),
                          "workbench_error": isinstance(exc, WorkbenchError),
                          "traceback": "".join(traceback.format_exception(exc))}}


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer one JSON line per request line until `requests` ends."""
    for line in requests:
        if line.strip():
            answers.write(json.dumps(_answer(json.loads(line))) + "\n")
            answers.flush()


def main() -> None:
    """The helper: answers on the real stdout; anything else printed goes to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in the app's terminal is the app's to handle
    if hasattr(os, "nice"):
        os.nice(10)  # background work: on a busy machine the window's thread gets the core first
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    import torch

    torch.set_num_threads(1)  # summaries run on the meta device: a second thread would only take the app's core
    try:
        serve(sys.stdin, answers)
    except BrokenPipeError:  # the app is gone: nobody to answer
        pass


if __name__ == "__main__":
    main()
