"""What the training curves draw, without Qt: series buffers, the stored metrics of a run turned into curve points,
labels for GoogLeNet's auxiliary losses, and the y-range that keeps a diverged loss from flattening the rest.

The engine's StepMetrics carry the *running mean of the epoch so far*. The loss curve is rebuilt from consecutive
running means: the mean loss of the batches between two events is (L2 * b2 - L1 * b1) / (b2 - b1), b being the
batch count of the epoch; that per-interval loss is drawn faintly and EMA-smoothed (`StepLossTracker`). Stored step
rows (`step_loss`, `step_accuracy`, `step_lr` at a global step) are the same running means, so a stored run's history
goes through the same tracker (`history_points`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

EMA_ALPHA = 0.1          # smoothing of the per-interval training loss
# A loss value is treated as diverged (drawn clipped, marked) when it exceeds both HEAD_FACTOR times the largest
# first value of a curve (a run starts near its highest loss) and CLIP_FACTOR times the median of the plot's values.
CLIP_FACTOR = 10.0
HEAD_FACTOR = 3.0
PERCENT_SERIES = frozenset({"step_accuracy", "train_accuracy", "val_accuracy"})
EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
AUX_PATTERN = re.compile(r"^(train_main_loss|(train|val)_aux\d+_loss)$")
MAX_AUX_HEADS = 4        # aux-loss metric names asked of the store for overlays (GoogLeNet has 2)


@dataclass(frozen=True)
class RunCurves:
    """A stored run's metrics: name -> [(epoch, step, value)] as `RunStore.metrics` returns them.

    `aux_weight` is the run's configured auxiliary-loss weight (0: none), `epochs` its planned epochs and
    `batches_per_epoch` its batches per epoch when known (a live run's FitStart; else estimated from the rows).
    """

    run_id: str
    label: str
    metrics: Mapping[str, Sequence[tuple[int, int, float]]]
    aux_weight: float = 0.0
    epochs: int | None = None
    batches_per_epoch: int | None = None
    running: bool = False


def overlay_metric_names() -> list[str]:
    """The metric names an overlay reads from the store (epoch curves, aux-head losses included)."""
    aux = [f"{split}_aux{i}_loss" for split in ("train", "val") for i in range(1, MAX_AUX_HEADS + 1)]
    return [*EPOCH_METRICS, "lr", "images_per_second", "train_main_loss", *aux]


def is_aux_metric(name: str) -> bool:
    """True for `train_main_loss`, `train_auxN_loss` and `val_auxN_loss`."""
    return bool(AUX_PATTERN.match(name))


def aux_count(names: Iterable[str]) -> int:
    """How many auxiliary heads the metric names describe (train_aux1_loss, train_aux2_loss → 2)."""
    found = [int(m.group(1)) for n in names if (m := re.match(r"^(?:train|val)_aux(\d+)_loss$", n))]
    return max(found, default=0)


def total_loss_formula(aux_weight: float, heads: int) -> str:
    """How the training loss of a model with auxiliary heads is made: "main + 0.3·(aux1 + aux2)"."""
    terms = " + ".join(f"aux{i}" for i in range(1, heads + 1))
    return f"main + {aux_weight:g}·({terms})" if heads > 1 else f"main + {aux_weight:g}·{terms}"


def metric_label(name: str) -> str:
    """A stored metric's legend text: "val loss", "train aux1 loss", "learning rate", "images/s"."""
    return {"lr": "learning rate", "images_per_second": "images/s"}.get(name, name.replace("_", " "))


def interval_mean(prev_mean: float, prev_batches: int, mean: float, batches: int) -> float | None:
    """Mean over the batches between two running means of the same epoch (None when none were added)."""
    if batches <= prev_batches:
        return None
    return (mean * batches - prev_mean * prev_batches) / (batches - prev_batches)


def finite(value: float | None) -> float | None:
    """`value` when it is a finite number, else None."""
    return value if value is not None and math.isfinite(value) else None


class Series:
    """An append-only (x, y) buffer backed by numpy arrays that double when full; x never goes back."""

    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        """Add a point; points at or after `x` are dropped first (a resumed run's live data wins over history)."""
        while self.size and self._x[self.size - 1] >= x:
            self.size -= 1
        if self.size == len(self._x):
            self._x = np.resize(self._x, 2 * self.size)
            self._y = np.resize(self._y, 2 * self.size)
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1

    def prepend(self, xs: Sequence[float], ys: Sequence[float]) -> int:
        """Put the points of `xs` that come before the first buffered x in front; returns how many were added."""
        first = self._x[0] if self.size else math.inf
        keep = [(x, y) for x, y in zip(xs, ys) if x < first]
        if not keep:
            return 0
        x_new = np.concatenate([np.array([p[0] for p in keep], dtype=float), self.x])
        y_new = np.concatenate([np.array([p[1] for p in keep], dtype=float), self.y])
        self._x = np.resize(x_new, max(256, 2 * len(x_new)))
        self._y = np.resize(y_new, max(256, 2 * len(y_new)))
        self.size = len(x_new)
        return len(keep)

    def clear(self) -> None:
        self.size = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]


class StepLossTracker:
    """Turns running epoch means into per-interval losses and their EMA (see the module docstring)."""

    def __init__(self) -> None:
        self.last: tuple[int, int, float] | None = None   # (epoch, batches, running mean)
        self.ema: float | None = None

    def add(self, epoch: int, batch: int, mean: float) -> tuple[float, float] | None:
        """(interval loss, smoothed) for a running mean after `batch` batches of `epoch`; None if nothing new."""
        prev_batches, prev_mean = 0, 0.0
        if self.last is not None and self.last[0] == epoch and self.last[1] <= batch:
            prev_batches, prev_mean = self.last[1], self.last[2]
        interval = interval_mean(prev_mean, prev_batches, mean, batch)
        self.last = (epoch, batch, mean)
        if interval is None or not math.isfinite(interval):
            return None
        self.ema = interval if self.ema is None else EMA_ALPHA * interval + (1 - EMA_ALPHA) * self.ema
        return interval, self.ema


def estimate_batches_per_epoch(rows: Sequence[tuple[int, int, float]]) -> int | None:
    """Batches per epoch from stored step rows (epoch, global step): a step s of epoch e lies in ((e-1)·B, e·B],
    so B >= s/e; the smallest B the rows allow (exact once a row falls on an epoch's last batches)."""
    low = max((math.ceil(step / epoch) for epoch, step, _ in rows if epoch >= 1 and step >= 1), default=0)
    return low or None


def step_x(epoch: int, step: int, batches_per_epoch: int) -> tuple[float, int]:
    """(fractional epoch, batch within the epoch) of a stored step row."""
    batch = min(max(1, step - (epoch - 1) * batches_per_epoch), batches_per_epoch)
    return (epoch - 1) + batch / batches_per_epoch, batch


@dataclass
class History:
    """A run's stored metrics as live-series points: series name -> (xs, ys), plus the loss tracker's state."""

    points: dict[str, tuple[list[float], list[float]]]
    tracker: StepLossTracker
    aux_weight: float
    aux_heads: int


def history_points(curves: RunCurves) -> History:
    """The live series (`step_loss`, `step_loss_ema`, `step_accuracy`, `lr`, `images_per_second`, the epoch
    curves and aux losses) of a stored run, accuracies in percent, x in (fractional) epochs."""
    points: dict[str, tuple[list[float], list[float]]] = {}

    def put(name: str, x: float, y: float | None) -> None:
        if y is None:
            return
        xs, ys = points.setdefault(name, ([], []))
        if xs and x <= xs[-1]:
            return  # a repeated row (a step logged twice around a resume): the first one stands
        xs.append(x)
        ys.append(100.0 * y if name in PERCENT_SERIES else y)

    metrics = curves.metrics
    tracker = StepLossTracker()
    step_rows = metrics.get("step_loss") or metrics.get("step_accuracy") or metrics.get("step_lr") or []
    bpe = curves.batches_per_epoch or estimate_batches_per_epoch(step_rows)
    if bpe:
        for epoch, step, value in metrics.get("step_loss", ()):
            x, batch = step_x(epoch, step, bpe)
            if (mean := finite(value)) is not None and (pair := tracker.add(epoch, batch, mean)) is not None:
                put("step_loss", x, pair[0])
                put("step_loss_ema", x, pair[1])
        for stored, name in (("step_accuracy", "step_accuracy"), ("step_lr", "lr")):
            for epoch, step, value in metrics.get(stored, ()):
                put(name, step_x(epoch, step, bpe)[0], finite(value))
    if "lr" not in points:
        for epoch, _step, value in metrics.get("lr", ()):
            put("lr", float(epoch), finite(value))
    for name, rows in metrics.items():
        if name in EPOCH_METRICS or name == "images_per_second" or is_aux_metric(name):
            for epoch, _step, value in rows:
                put(name, float(epoch), finite(value))
    heads = aux_count(metrics)
    return History(points, tracker, curves.aux_weight if heads else 0.0, heads)


@dataclass(frozen=True)
class YRange:
    """A plot's y range; `clipped` when values above `hi` (a diverged loss) are left out and marked."""

    lo: float
    hi: float
    clipped: bool = False
    peak: float = math.nan          # the largest value (when clipped)


def robust_y_range(arrays: Sequence[np.ndarray], *, log: bool = False, clip: bool = True,
                   floor_zero: bool = False) -> YRange | None:
    """The y range that shows `arrays` (finite values only). With `clip`, values far above the rest (see
    CLIP_FACTOR/HEAD_FACTOR) are left out so a diverged loss does not flatten the readable part. `log`: the range of
    log10(values > 0), never clipped. `floor_zero`: the range starts at 0 for non-negative data. None: no data.

    Cheap in the usual case (a min and a max per array, no copy): the buffers hold finite values already; other
    values, and a top far above the start, take the slower path over all values."""
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return None
    lows, highs = [float(a.min()) for a in arrays], [float(a.max()) for a in arrays]
    lo, hi = min(lows), max(highs)
    if not (math.isfinite(lo) and math.isfinite(hi)):   # NaN or inf somewhere: keep the finite values
        arrays = [f for a in arrays if (f := a[np.isfinite(a)]).size]
        if not arrays:
            return None
        lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    if log:
        if lo <= 0:
            arrays = [p for a in arrays if (p := a[a > 0]).size]
            if not arrays:
                return None
            lo = min(float(a.min()) for a in arrays)
        lo, hi = math.log10(lo), math.log10(hi)
        span = max(hi - lo, 0.1)
        return YRange(lo - 0.05 * span, hi + 0.1 * span)
    clipped, peak = False, math.nan
    if clip and sum(a.size for a in arrays) >= 3:
        limit = HEAD_FACTOR * max(float(a[0]) for a in arrays)
        if hi > limit > 0:   # far above the start: is it far above most of the curve too?
            values = np.concatenate(arrays)
            limit = max(limit, CLIP_FACTOR * float(np.median(values)))
            if hi > limit:
                clipped, peak, hi = True, hi, float(values[values <= limit].max())
    span = max(hi - lo, abs(hi) * 0.1, 1e-6)
    bottom = 0.0 if floor_zero and lo >= 0 else lo - 0.05 * span
    return YRange(bottom, hi + 0.1 * span, clipped, peak)
