"""Evaluate a run at a checkpoint on its validation (or training) split: per-sample results and what they add up to.

The model runs exactly as in the run's validation: the run's `make_loader(train=False)` pipeline, batch size,
memory format and AMP setting, in `torch.inference_mode()`, with one preallocated logits buffer filled per batch
and every per-sample figure computed afterwards in a few whole-array ops. So `best.pt` on the validation split
reproduces the accuracy the run recorded, and the loss is the trainer's: cross-entropy of the main output,
mean over samples. The result is plain NumPy (safe to hand from a worker thread to the GUI).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.analysis.inference import prepare_model, resolve_run
from workbench.analysis.metrics import ClassMetrics, class_metrics, confusion_matrix
from workbench.errors import InvalidOptionError
from workbench.runs.history import SampleHistory
from workbench.training.restore import RestoredRun

SPLITS = ("val", "train")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One checkpoint evaluated on one split. Arrays are indexed by sample (the split's loader order)."""

    run_id: str
    checkpoint: str                  # "best" | "last"
    split: str                       # "val" | "train"
    epoch: int                       # completed epochs when the checkpoint was written
    arch: str
    dataset: str
    classes: tuple[str, ...]         # one name per model output (K)
    labels: np.ndarray               # int64 [N] true class
    predictions: np.ndarray          # int64 [N] argmax of the main output
    top_classes: np.ndarray          # int64 [N, k] most probable classes, descending (k = min(top, K))
    top_probabilities: np.ndarray    # float32 [N, k] their softmax probabilities
    losses: np.ndarray               # float32 [N] cross-entropy of each sample
    sources: tuple[str, ...]         # file path (image folders) or "name[index]" (packaged sets)
    confusion: np.ndarray            # int64 [K, K] rows = true class, columns = predicted
    history: SampleHistory | None = None     # the run's per-sample validation history (val split only)
    recorded_accuracy: float | None = None   # the val accuracy the run recorded for these weights, if known
    seconds: float = 0.0             # wall time of the evaluation (data already loaded)

    @property
    def num_samples(self) -> int:
        """N."""
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        """K."""
        return len(self.classes)

    @property
    def correct(self) -> np.ndarray:
        """bool [N]: prediction == true class."""
        return self.predictions == self.labels

    @property
    def accuracy(self) -> float:
        """Fraction of samples classified correctly (NaN for an empty split)."""
        return float(np.trace(self.confusion)) / self.num_samples if self.num_samples else math.nan

    @property
    def loss(self) -> float:
        """Mean cross-entropy over samples (the trainer's validation loss)."""
        return float(self.losses.astype(np.float64).mean()) if self.num_samples else math.nan

    @property
    def probabilities(self) -> np.ndarray:
        """float32 [N]: the softmax probability of each sample's predicted class."""
        return self.top_probabilities[:, 0] if self.top_probabilities.size else np.zeros(0, np.float32)

    @cached_property
    def per_class(self) -> ClassMetrics:
        """Support, recall (= per-class accuracy) and precision per class, from the confusion matrix."""
        return class_metrics(self.confusion)

    def top_losses(self, n: int = 20) -> np.ndarray:
        """Indices of the `n` samples with the highest loss, highest first."""
        order = np.argsort(-self.losses, kind="stable")
        return order[: max(0, n)]

    def cell(self, true_class: int, predicted_class: int) -> np.ndarray:
        """Indices of the samples in one confusion-matrix cell, highest loss first."""
        idx = np.flatnonzero((self.labels == true_class) & (self.predictions == predicted_class))
        return idx[np.argsort(-self.losses[idx], kind="stable")]

    def first_correct_epoch(self) -> list[int | None] | None:
        """Per sample, the first epoch it was classified correctly (None: never); None without history."""
        return self.history.first_correct_epoch(self.labels) if self.history is not None else None

    def forgotten(self) -> list[int] | None:
        """Per sample, how often it flipped from right to wrong; None without history."""
        return self.history.forgotten(self.labels) if self.history is not None else None

    def to_dict(self, top_losses: int = 20) -> dict[str, Any]:
        """JSON-ready summary (the `workbench evaluate --json` object); NaN becomes None."""
        pc = self.per_class
        names = self.classes

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        history = None
        if self.history is not None:
            history = {"epochs": list(self.history.epochs), "first_correct_epoch": self.first_correct_epoch(),
                       "forgotten": self.forgotten()}
        return {
            "run_id": self.run_id, "checkpoint": self.checkpoint, "split": self.split,
            "num_samples": self.num_samples, "accuracy": num(self.accuracy), "loss": num(self.loss),
            "classes": list(names), "confusion": self.confusion.tolist(),
            "per_class": [{"class": names[k], "support": int(pc.support[k]), "recall": num(pc.recall[k]),
                           "precision": num(pc.precision[k])} for k in range(self.num_classes)],
            "top_losses": [{"index": int(i), "source": self.sources[i], "true": names[self.labels[i]],
                            "predicted": names[self.predictions[i]], "probability": num(self.probabilities[i]),
                            "loss": num(self.losses[i])} for i in self.top_losses(top_losses)],
            "history": history,
        }


def _source(splits: Any, split: str) -> Any:
    if split not in SPLITS:
        raise InvalidOptionError(f"--split must be val or train, got {split!r}.")
    return splits.val if split == "val" else splits.train


def recorded_accuracy(restored: RestoredRun) -> float | None:
    """The validation accuracy the run recorded for the checkpoint's weights (None after a mid-epoch stop)."""
    state = restored.state
    if int(state.get("batch", 0) or 0) > 0:
        return None
    value = state.get("best_val_accuracy") if restored.checkpoint == "best" else (state.get("last") or {}).get(
        "val_accuracy")
    return None if value is None else float(value)


def run_history(restored: RestoredRun, num_samples: int) -> SampleHistory | None:
    """The run's per-sample history when it has one that lines up with `num_samples` validation samples."""
    from workbench.runs.history import read_history

    if restored.workspace is None:
        return None
    history = read_history(restored.workspace, restored.run_id)
    return history if history is not None and history.num_samples == num_samples else None


def infer_split(restored: RestoredRun, source: Any, *, batch_size: int | None = None,
                progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(float32 logits [N, K], int64 labels [N]) of the main output over `source`, on the run's device."""
    from workbench.data import make_loader
    from workbench.models import split_outputs

    precision = prepare_model(restored)
    p, dev, model = restored.preprocessing, restored.device, restored.model
    loader = make_loader(source, batch_size=batch_size or restored.config.batch_size, device=dev, train=False,
                         image_size=p.image_size, channels=p.channels, mean=p.mean, std=p.std,
                         channels_last=precision.channels_last, generator=torch.Generator())
    n = loader.num_samples
    logits = torch.empty((n, restored.num_classes), dtype=torch.float32, device=dev)
    labels = torch.empty(n, dtype=torch.int64, device=dev)
    pos = 0
    with torch.inference_mode(), precision.autocast(dev):
        for x, y in loader:
            main, _ = split_outputs(model(x))
            b = y.shape[0]
            logits[pos:pos + b] = main
            labels[pos:pos + b] = y
            pos += b
            if progress is not None:
                progress(pos, n)
    return logits[:pos], labels[:pos]


def summarise(restored: RestoredRun, logits: torch.Tensor, labels: torch.Tensor, *, split: str,
              sources: Sequence[str], top: int = 5, history: SampleHistory | None = None,
              seconds: float = 0.0) -> Evaluation:
    """Per-sample losses, predictions and top-k from logits, and the confusion matrix: an `Evaluation`."""
    with torch.inference_mode():
        log_probs = torch.log_softmax(logits, dim=1)
        losses = -log_probs.gather(1, labels.view(-1, 1)).view(-1)
        preds = logits.argmax(dim=1)
        k = max(1, min(int(top), logits.shape[1]))
        top_lp, top_idx = log_probs.topk(k, dim=1)
    y, p = labels.cpu().numpy(), preds.cpu().numpy()
    src = tuple(sources) if len(sources) == y.size else tuple(f"{restored.dataset}[{i}]" for i in range(y.size))
    return Evaluation(
        run_id=restored.run_id, checkpoint=restored.checkpoint, split=split, epoch=restored.epoch,
        arch=restored.arch, dataset=restored.dataset, classes=restored.classes, labels=y, predictions=p,
        top_classes=top_idx.cpu().numpy(), top_probabilities=top_lp.exp().cpu().numpy(),
        losses=losses.cpu().numpy(), sources=src, confusion=confusion_matrix(y, p, restored.num_classes),
        history=history, recorded_accuracy=recorded_accuracy(restored) if split == "val" else None,
        seconds=seconds)


def evaluate_run(run: str | RestoredRun, *, workspace: Path | str | None = None, checkpoint: str = "best",
                 split: str = "val", device: str | torch.device | None = None, progress: Progress | None = None,
                 splits: Any | None = None, batch_size: int | None = None, top: int = 5) -> Evaluation:
    """Evaluate run `run` (an id, or a `RestoredRun` to reuse) at `checkpoint` on `split` ("val" | "train").

    `device` None: the CPU. `splits`: the run's `DataSplits` when already loaded (else `restored.load_splits()`).
    `progress(done, total)` is called per batch. `batch_size` None: the run's (validation used it).
    Raises WorkbenchError subclasses for an unknown run or workspace, a missing checkpoint, or absent data.
    """
    from workbench.data.sources import sample_sources

    if split not in SPLITS:
        raise InvalidOptionError(f"--split must be val or train, got {split!r}.")
    restored = resolve_run(run, workspace=workspace, checkpoint=checkpoint, device=device)
    if splits is None:
        splits = restored.load_splits()
    source = _source(splits, split)
    started = time.perf_counter()
    logits, labels = infer_split(restored, source, batch_size=batch_size, progress=progress)
    history = run_history(restored, int(labels.shape[0])) if split == "val" else None
    result = summarise(restored, logits, labels, split=split, sources=sample_sources(source, restored.dataset),
                       top=top, history=history)
    return replace(result, seconds=time.perf_counter() - started)


def sample_images(splits: Any, split: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """uint8 [n, H, W, C] of split samples as stored (for a gallery; not normalised)."""
    source = _source(splits, split)
    idx = [int(i) for i in np.asarray(indices).ravel()]
    images = getattr(source, "images", None)
    if images is not None:
        batch = images[torch.as_tensor(idx, dtype=torch.long)] if idx else images[:0]
    else:  # streaming: decode each one (a file unreadable since the scan shows black)
        blank = torch.zeros((splits.channels, *splits.size), dtype=torch.uint8)
        frames = [item[0] if item is not None else blank for item in (source[i] for i in idx)]
        batch = torch.stack(frames) if frames else blank[None][:0]
    return batch.permute(0, 2, 3, 1).contiguous().numpy()
