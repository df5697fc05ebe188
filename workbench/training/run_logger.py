"""The run store's side of a training run: metrics, the best epoch and each sample's history, as they happen."""

from __future__ import annotations

import math
from typing import Any

from workbench.training.callbacks import Callback
from workbench.training.events import EpochMetrics, StepMetrics, ValidationSamples


def epoch_metric_values(e: EpochMetrics) -> dict[str, float]:
    """The metric rows an epoch adds to the store (aux-head losses only for models that have them)."""
    values = {"train_loss": e.train_loss, "train_accuracy": e.train_accuracy, "val_loss": e.val_loss,
              "val_accuracy": e.val_accuracy, "lr": e.lr, "images_per_second": e.images_per_second}
    if e.train_main_loss is not None:
        values["train_main_loss"] = e.train_main_loss
    for i, loss in enumerate(e.train_aux_losses, start=1):
        values[f"train_aux{i}_loss"] = loss
    for i, loss in enumerate(e.val_aux_losses, start=1):
        values[f"val_aux{i}_loss"] = loss
    return values


class RunLogger(Callback):
    """Writes thinned step metrics, epoch metrics, the best epoch and the validation history to the run store."""

    def __init__(self, store: Any, run_id: str) -> None:
        from workbench.runs import MetricBuffer

        self.store, self.run_id = store, run_id
        self.buffer = MetricBuffer(store, run_id, flush_every_s=5.0, step_interval_s=0.5)

    def on_train_batch_end(self, e: StepMetrics) -> None:
        self.buffer.add_step(e.epoch, e.step, {"step_loss": e.loss, "step_accuracy": e.accuracy, "step_lr": e.lr})

    def on_validation_samples(self, e: ValidationSamples) -> None:
        from workbench.runs.history import record_samples

        record_samples(self.store, self.run_id, e.epoch, e.predictions, e.losses)

    def on_epoch_end(self, e: EpochMetrics) -> None:
        values = epoch_metric_values(e)
        self.buffer.add_epoch(e.epoch, 0, values)
        best = e.best_val_accuracy if math.isfinite(e.best_val_accuracy) else None
        self.store.update_run(self.run_id, epochs_completed=e.epoch, best_val_accuracy=best,
                              best_metrics={"epoch": e.epoch, **values} if e.is_best else None)

    def close(self) -> None:
        """Write what is still buffered."""
        self.buffer.close()
