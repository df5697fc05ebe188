"""Cooperative stop / pause / resume of a training run, safe to call from any thread."""

from __future__ import annotations

import threading


class TrainControl:
    """Flags the trainer checks between steps. `stop()` also releases a paused run."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()  # set while not paused
        self._running.set()

    def stop(self) -> None:
        """Ask the run to stop after the current step (it saves a checkpoint first)."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Block the run between steps until `resume()` or `stop()`."""
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._running.set()

    @property
    def stopped(self) -> bool:
        """True once `stop()` was called."""
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        """True while paused (and not stopped)."""
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block (without spinning) while paused; returns True when the run may continue."""
        return self._running.wait(timeout)
