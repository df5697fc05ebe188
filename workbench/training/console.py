"""Console progress for the CLI: a live bar on a terminal, one line per epoch, a closing status line."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from workbench.training.callbacks import Callback
from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics


def format_duration(seconds: float) -> str:
    """1:05 or 1:02:03; '?' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _pct(value: float | None) -> str:
    return "  n/a" if value is None or not math.isfinite(value) else f"{100 * value:5.1f}%"


class ConsoleProgress(Callback):
    """Writes progress to `stream` (stderr by default). The live bar is drawn only on a terminal and at most
    ~5 times a second; epoch lines and the final line are always written."""

    def __init__(self, stream: TextIO | None = None, width: int = 24, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.live = self.stream.isatty() if live is None else live
        self._last_draw = 0.0
        self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed or broken stream: progress is best effort
            pass

    def _clear(self) -> None:
        if self._drawn:
            self._write("\r\033[K")
            self._drawn = False

    def on_fit_start(self, e: FitStart) -> None:
        start = f", resuming at epoch {e.start_epoch + 1}" if e.start_epoch else ""
        skipped = f", {e.skipped} unreadable file(s) skipped" if e.skipped else ""
        self._write(f"run {e.run_id}: {e.arch} on {e.dataset} ({e.train_size} train / {e.val_size} val images"
                    f"{skipped}, "
                    f"{e.num_classes} classes), {e.epochs} epochs of {e.batches_per_epoch} batches on {e.device}, "
                    f"amp {e.amp}{start}\n")

    def on_train_batch_end(self, e: StepMetrics) -> None:
        now = time.monotonic()
        if not self.live or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        done = int(self.width * e.batch / max(1, e.batches))
        bar = "#" * done + "." * (self.width - done)
        self._write(f"\r\033[Kepoch {e.epoch} [{bar}] {e.batch}/{e.batches} loss {e.loss:.4f} "
                    f"acc {_pct(e.accuracy)} {e.images_per_second:,.0f} img/s ETA {format_duration(e.eta_seconds)}")
        self._drawn = True

    def on_epoch_end(self, e: EpochMetrics) -> None:
        self._clear()
        best = "  *best" if e.is_best else ""
        self._write(f"epoch {e.epoch:>3}/{e.epochs}  train loss {e.train_loss:.4f} acc {_pct(e.train_accuracy)}  "
                    f"val loss {e.val_loss:.4f} acc {_pct(e.val_accuracy)}  lr {e.lr:.3g}  "
                    f"{e.images_per_second:,.0f} img/s  {e.epoch_seconds:.1f}s{best}\n")

    def on_fit_end(self, r: FitResult) -> None:
        self._clear()
        where = f" (checkpoint {r.checkpoint})" if r.checkpoint else ""
        self._write(f"{r.status}: {r.message}{where}\n")

    def on_exception(self, message: str, details: str) -> None:
        self._clear()
