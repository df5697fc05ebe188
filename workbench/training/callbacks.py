"""Callback hooks the trainer calls, and a list that fans events out to several callbacks."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics, ValidationSamples


class CallbackError(Exception):
    """A callback raised: the run stops with a checkpoint (resumable) instead of failing."""

    def __init__(self, callback: Callback, hook: str, error: BaseException) -> None:
        self.callback, self.hook, self.error = callback, hook, error
        super().__init__(f"{type(callback).__name__}.{hook} raised {type(error).__name__}: {error}")


class Callback:
    """Base class: override any hook. Hooks run on the training thread and should return quickly."""

    def on_fit_start(self, e: FitStart) -> None:
        """Called once before the first step."""

    def on_train_batch_end(self, e: StepMetrics) -> None:
        """Called ~10-20 times a second with running epoch metrics."""

    def on_epoch_end(self, e: EpochMetrics) -> None:
        """Called after each epoch's validation."""

    def on_validation_samples(self, e: ValidationSamples) -> None:
        """Called after each epoch's validation (before on_epoch_end) with every sample's prediction and loss."""

    def on_fit_end(self, r: FitResult) -> None:
        """Called once when the run ends, however it ends."""

    def on_exception(self, message: str, details: str) -> None:
        """Called when the run fails: a one-line message and the traceback text."""


class CallbackList(Callback):
    """Calls each hook on every callback in order. An exception in a callback becomes CallbackError, except in
    `on_exception` and `on_fit_end`: the run is already ending, so those are reported as warnings."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks: list[Callback] = list(callbacks)

    def _each(self, hook: str, event: Any, *, guard: bool = True) -> None:
        for cb in self.callbacks:
            method: Callable[..., None] = getattr(cb, hook)
            try:
                method(event)
            except Exception as exc:
                error = CallbackError(cb, hook, exc)
                if guard:
                    raise error from exc
                warnings.warn(f"{error} (the run's result is kept)", RuntimeWarning, stacklevel=2)

    def on_fit_start(self, e: FitStart) -> None:
        self._each("on_fit_start", e)

    def on_train_batch_end(self, e: StepMetrics) -> None:
        self._each("on_train_batch_end", e)

    def on_validation_samples(self, e: ValidationSamples) -> None:
        self._each("on_validation_samples", e)

    def on_epoch_end(self, e: EpochMetrics) -> None:
        self._each("on_epoch_end", e)

    def on_fit_end(self, r: FitResult) -> None:
        self._each("on_fit_end", r, guard=False)

    def on_exception(self, message: str, details: str) -> None:
        for cb in self.callbacks:
            try:
                cb.on_exception(message, details)
            except Exception as exc:
                warnings.warn(f"{CallbackError(cb, 'on_exception', exc)}", RuntimeWarning, stacklevel=2)
