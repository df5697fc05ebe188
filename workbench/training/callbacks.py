"""Callback hooks the trainer calls, and a list that fans events out to several callbacks."""

from __future__ import annotations

from collections.abc import Iterable

from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics


class Callback:
    """Base class: override any hook. Hooks run on the training thread and should return quickly."""

    def on_fit_start(self, e: FitStart) -> None:
        """Called once before the first step."""

    def on_train_batch_end(self, e: StepMetrics) -> None:
        """Called ~10-20 times a second with running epoch metrics."""

    def on_epoch_end(self, e: EpochMetrics) -> None:
        """Called after each epoch's validation."""

    def on_fit_end(self, r: FitResult) -> None:
        """Called once when the run ends, however it ends."""

    def on_exception(self, message: str, details: str) -> None:
        """Called when the run fails: a one-line message and the traceback text."""


class CallbackList(Callback):
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks: list[Callback] = list(callbacks)

    def on_fit_start(self, e: FitStart) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(e)

    def on_train_batch_end(self, e: StepMetrics) -> None:
        for cb in self.callbacks:
            cb.on_train_batch_end(e)

    def on_epoch_end(self, e: EpochMetrics) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(e)

    def on_fit_end(self, r: FitResult) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(r)

    def on_exception(self, message: str, details: str) -> None:
        for cb in self.callbacks:
            cb.on_exception(message, details)
