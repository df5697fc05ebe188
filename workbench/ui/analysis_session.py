"""The Analysis tab's background work, Qt-free: restore a run, evaluate it, cut thumbnails, explain one image.

Task functions here run in worker threads (through `LatestTask`) and return plain data only: the engine's
`Evaluation` (NumPy arrays), uint8 image arrays and strings. The restored model stays in a `SessionCache` that
only worker threads touch; each session's `lock` serialises every use of its model (evaluation, Grad-CAM), so
one model never runs in two threads at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.errors import InvalidOptionError

if TYPE_CHECKING:
    from workbench.analysis.evaluate import Evaluation
    from workbench.analysis.features import Filters
    from workbench.data.sources import DataSplits
    from workbench.training.restore import RestoredRun
    from workbench.ui.tasks import TaskSink

SORT_MODES = ("loss", "learned last", "forgotten most")
MAX_SESSIONS = 2          # restored runs kept in memory (the one shown and the one before)


class Cancelled(Exception):
    """A newer request replaced this one (its answer would be dropped anyway)."""


@dataclass
class Session:
    """One restored run and its data; `lock` guards every use of the model."""

    restored: RestoredRun
    splits: DataSplits
    lock: threading.Lock
    evaluation: Evaluation | None = None


class SessionCache:
    """Restored runs by (run id, checkpoint), the `MAX_SESSIONS` most recently used; thread-safe."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = Path(workspace)
        self._sessions: OrderedDict[tuple[str, str], Session] = OrderedDict()
        self._lock = threading.Lock()

    def session(self, run_id: str, checkpoint: str = "best") -> Session:
        """The run restored at `checkpoint` with its data (loaded on first use; WorkbenchError when it cannot)."""
        from workbench.training.restore import restore_run

        key = (run_id, checkpoint)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                restored = restore_run(run_id, workspace=self.workspace, checkpoint=checkpoint, device="cpu")
                splits = next((s.splits for (rid, _c), s in self._sessions.items() if rid == run_id), None)
                found = Session(restored, splits or restored.load_splits(), threading.Lock())
                self._sessions[key] = found
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
            return found

    def forget(self, run_id: str) -> None:
        """Drop a run's sessions (e.g. after it was resumed: its checkpoints changed)."""
        with self._lock:
            for key in [k for k in self._sessions if k[0] == run_id]:
                del self._sessions[key]


# --- plain results ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RunAnalysis:
    """A run evaluated at a checkpoint, with what the tab shows beside the matrix."""

    run_id: str
    checkpoint: str
    evaluation: Evaluation
    first_correct: np.ndarray | None   # int64 [N]: first correct epoch per sample, -1 = never; None: no history
    forgotten: np.ndarray | None       # int64 [N]: right → wrong flips per sample; None: no history
    conv_layers: tuple[str, ...]       # convolutions of the run's model (aux heads included)
    default_layer: str                 # the last convolution (Grad-CAM's default)

    @property
    def history_epochs(self) -> tuple[int, ...]:
        """The epochs the run recorded per-sample history for (empty without history)."""
        history = self.evaluation.history
        return tuple(history.epochs) if history is not None else ()


@dataclass(frozen=True, eq=False)
class Thumbnails:
    """Stored images of some samples of a split (uint8 [n, H, W, C])."""

    indices: tuple[int, ...]
    images: np.ndarray


@dataclass(frozen=True, eq=False)
class Inspection:
    """One image seen by the run's model: top-k, Grad-CAM over the image, the layer's maps, the first filters."""

    caption: str
    true_class: str | None             # known for a validation sample
    view: np.ndarray                   # uint8 [H, W, C]: what the model sees
    top: tuple[tuple[str, float], ...]  # (class, probability), most probable first
    layer: str                         # the layer Grad-CAM and the feature maps are of
    class_name: str                    # the class Grad-CAM explains (the predicted one)
    overlay: np.ndarray                # uint8 [H', W', 3]: the heat map blended over the image
    features: np.ndarray               # uint8 [h, w, 3]: the layer's feature maps in a grid
    feature_count: int                 # feature maps the layer has (the grid shows at most 64)
    filters: np.ndarray | None         # uint8 [h, w, 3]: the first convolution's filters
    filters_layer: str
    note: str = ""                     # e.g. why another layer than the one asked for is shown


# --- task functions ---------------------------------------------------------------------------------------------

def _check(sink: TaskSink) -> None:
    if sink.cancelled():
        raise Cancelled()


def load_task(cache: SessionCache, run_id: str, checkpoint: str) -> Callable[[TaskSink], RunAnalysis]:
    """A task: restore `run_id` (once) and evaluate it at `checkpoint` on its validation split ("best" falls
    back to "last" for a run without a best checkpoint)."""

    def task(sink: TaskSink) -> RunAnalysis:
        from workbench.analysis.evaluate import evaluate_run
        from workbench.analysis.gradcam import conv_layer_names, default_layer
        from workbench.errors import CheckpointError

        sink.progress("Loading the run…", -1.0)
        used = checkpoint
        try:
            session = cache.session(run_id, checkpoint)
        except CheckpointError:
            if checkpoint != "best":
                raise
            used = "last"   # e.g. stopped before its first epoch ended: the last checkpoint is all there is
            session = cache.session(run_id, used)
        _check(sink)

        def progress(done: int, total: int) -> None:
            _check(sink)
            sink.progress("Evaluating…", done / max(1, total))

        with session.lock:
            if session.evaluation is None:
                session.evaluation = evaluate_run(session.restored, splits=session.splits, progress=progress)
            evaluation = session.evaluation
            model = session.restored.model
            convs = tuple(conv_layer_names(model))
            last = default_layer(model) if convs else ""
        first = evaluation.first_correct_epoch()
        forgotten = evaluation.forgotten()
        return RunAnalysis(
            run_id=run_id, checkpoint=used, evaluation=evaluation,
            first_correct=None if first is None else np.array([-1 if e is None else e for e in first], np.int64),
            forgotten=None if forgotten is None else np.asarray(forgotten, dtype=np.int64),
            conv_layers=convs, default_layer=last)

    return task


def thumbnails_task(cache: SessionCache, run_id: str, checkpoint: str,
                    indices: Sequence[int]) -> Callable[[TaskSink], Thumbnails]:
    """A task: the stored validation images of `indices` (for the gallery)."""
    wanted = tuple(int(i) for i in indices)

    def task(sink: TaskSink) -> Thumbnails:
        from workbench.analysis.evaluate import sample_images

        session = cache.session(run_id, checkpoint)
        _check(sink)
        return Thumbnails(wanted, sample_images(session.splits, "val", wanted))

    return task


def inspect_sample_task(cache: SessionCache, run_id: str, checkpoint: str, index: int,
                        layer: str | None) -> Callable[[TaskSink], Inspection]:
    """A task: explain validation sample `index` at `layer` (None or unknown: the last convolution)."""

    def task(sink: TaskSink) -> Inspection:
        from workbench.analysis.evaluate import sample_images

        session = cache.session(run_id, checkpoint)
        _check(sink)
        image = sample_images(session.splits, "val", [index])[0].transpose(2, 0, 1)
        evaluation = session.evaluation
        true = session.restored.classes[int(evaluation.labels[index])] if evaluation is not None else None
        source = evaluation.sources[index] if evaluation is not None else f"sample {index}"
        return inspect_image(session, image, caption=source, true_class=true, layer=layer)

    return task


def inspect_file_task(cache: SessionCache, run_id: str, checkpoint: str, path: Path | str,
                      layer: str | None) -> Callable[[TaskSink], Inspection]:
    """A task: explain an image file through the run's preprocessing (UnreadableImageError names a bad file)."""

    def task(sink: TaskSink) -> Inspection:
        from workbench.analysis.inference import load_images

        session = cache.session(run_id, checkpoint)
        _check(sink)
        (image,) = load_images(session.restored, [path])
        return inspect_image(session, image, caption=Path(path).name, true_class=None, layer=layer)

    return task


def inspect_image(session: Session, image: np.ndarray, *, caption: str, true_class: str | None,
                  layer: str | None, top: int = 5) -> Inspection:
    """Explain a stored-format image (uint8 [C, h, w]) and render the pictures (holds the model's lock)."""
    from workbench.analysis import render
    from workbench.analysis.explain import explain_array
    from workbench.analysis.gradcam import default_layer, layer_names

    restored = session.restored
    with session.lock:
        model = restored.model
        last, first = default_layer(model), default_layer(model, last=False)
        note = ""
        chosen = layer or last
        if chosen not in set(layer_names(model)):
            note = f"Layer {chosen} is not in this run's {restored.arch}; showing its last convolution {last}."
            chosen = last
        try:
            exp = explain_array(restored, image, caption=caption, layer=chosen, top=top, filters_layer=first)
        except InvalidOptionError as exc:
            if chosen == last:
                raise
            note = f"{exc} Showing the last convolution {last} instead."
            chosen = last
            exp = explain_array(restored, image, caption=caption, layer=chosen, top=top, filters_layer=first)
    pred = exp.prediction
    return Inspection(
        caption=caption, true_class=true_class, view=exp.view,
        top=tuple(zip(pred.classes, pred.probabilities)), layer=chosen, class_name=exp.class_name,
        overlay=render.overlay(exp.view, exp.gradcam.heatmap, min_side=96),
        features=render.features_picture(exp.features, max_maps=64, min_tile=24),
        feature_count=int(exp.features.maps.shape[0]),
        filters=filters_picture(exp.filters) if exp.filters is not None else None,
        filters_layer=first, note=note)


def filters_picture(filters: Filters) -> np.ndarray:
    """The filters as tiles: colour ones for RGB inputs; for one input channel a square grid of grey tiles
    (the engine's layout, one row per filter, would make a one-tile-wide strip); else a row per filter."""
    from workbench.analysis import render

    if filters.rgb or filters.weight.shape[1] != 1:
        return render.filters_picture(filters, max_filters=64, max_inputs=8, min_tile=24)
    grey = np.rint(filters.images()[:64, 0] * 255).astype(np.uint8)
    return render.tile_grid(np.repeat(grey[..., None], 3, axis=3), min_tile=24)


# --- the gallery's order ----------------------------------------------------------------------------------------

def gallery_order(indices: np.ndarray, losses: np.ndarray, mode: str, first_correct: np.ndarray | None = None,
                  forgotten: np.ndarray | None = None) -> np.ndarray:
    """`indices` sorted for the gallery: "loss" (highest first), "learned last" (first-correct epoch, latest
    first, never-learned before all), "forgotten most" (most flips first); ties by loss, highest first."""
    idx = np.asarray(indices, dtype=np.int64)
    by_loss = idx[np.argsort(-np.asarray(losses, dtype=np.float64)[idx], kind="stable")]
    if mode == "loss" or (mode == "learned last" and first_correct is None) or (
            mode == "forgotten most" and forgotten is None):
        return by_loss
    if mode == "learned last":
        assert first_correct is not None
        key = first_correct[by_loss].astype(np.float64)
        key[key < 0] = np.inf   # never learned: the latest of all
    elif mode == "forgotten most":
        assert forgotten is not None
        key = forgotten[by_loss].astype(np.float64)
    else:
        raise InvalidOptionError(f"Unknown gallery order {mode!r}; use one of {', '.join(SORT_MODES)}.")
    return by_loss[np.argsort(-key, kind="stable")]


def gallery_captions(analysis: RunAnalysis, order: np.ndarray, predictions: np.ndarray, losses: np.ndarray,
                     at_checkpoint: bool) -> tuple[list[str], list[str]]:
    """(caption, tooltip) per sample of `order`: true → predicted and the probability (at the checkpoint) or the
    loss (at a recorded epoch, whose probabilities were not kept); the tooltip adds the source and history."""
    ev = analysis.evaluation
    names = ev.classes
    captions, tips = [], []
    for i in np.asarray(order, dtype=np.int64).tolist():
        t, p = names[int(ev.labels[i])], names[int(predictions[i])]
        value = f"{100 * float(ev.probabilities[i]):.0f} %" if at_checkpoint else f"loss {float(losses[i]):.2f}"
        captions.append(f"{t} → {p}\n{value}")
        tip = f"{ev.sources[i]}\ntrue {t}, predicted {p}, loss {float(losses[i]):.4f}"
        if analysis.first_correct is not None and analysis.forgotten is not None:
            first = int(analysis.first_correct[i])
            tip += f"\nfirst correct at epoch {first}" if first >= 0 else "\nnever classified correctly"
            tip += f", forgotten {int(analysis.forgotten[i])} time(s)"
        tips.append(tip)
    return captions, tips


def describe_missing_history(analysis: RunAnalysis) -> str:
    """Why the epoch slider is off (empty when the run has history)."""
    if analysis.evaluation.history is not None:
        return ""
    return ("This run has no per-sample history (runs trained before it was recorded, or whose validation set "
            "changed), so the confusion matrix cannot be replayed by epoch.")
