"""The pre-launch estimate beside the Train button: memory on the device, time per epoch, the largest batch.

Memory is arithmetic on the layer summary's totals (`workbench.training.estimate`), shown at once. Time per epoch
comes from a few real training steps timed off the GUI thread (cached per architecture, options, input, batch and
device); the timing starts by itself a moment after the choice settles, while the panel is on screen and no run
trains, or at once through `measure()`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QWidget

from workbench.training import estimate as est
from workbench.ui.latest_task import LatestTask
from workbench.ui.tasks import Task, TaskSink

if TYPE_CHECKING:
    from workbench.models.summary import Totals
    from workbench.training.config import TrainConfig

SETTLE_MS = 1000   # quiet time after the last change before timing starts by itself
WARN_COLOR = "#c0392b"


@dataclass(frozen=True)
class EstimateInputs:
    """What the next run will train: architecture, input, classes, settings and the data set's split sizes."""

    arch: str
    options: dict[str, Any]
    input_shape: tuple[int, int, int]
    num_classes: int
    config: TrainConfig
    train_size: int | None
    val_size: int | None


@dataclass(frozen=True)
class Measured:
    """A timing and the device it ran on (what `measure_task` returns)."""

    timing: est.StepTiming
    device: str            # "cpu", "cuda:0"
    device_text: str       # "this CPU"
    free_bytes: int | None


def measure_task(inputs: EstimateInputs, batch: int) -> Task:
    """Time a few training steps of `inputs` at `batch` images (Qt-free; the device lock keeps it off a run)."""

    def task(sink: TaskSink) -> Measured:
        from workbench.errors import WorkbenchError

        if not est.DEVICE_LOCK.acquire(blocking=False):
            raise WorkbenchError("A run is using the device; the time is measured once it ends.")
        try:
            device = est.resolve_device_name(inputs.config.device)
            sink.progress("Timing a few training steps", -1.0)
            timing = est.measure_step_time(inputs.arch, inputs.options, inputs.input_shape, inputs.num_classes,
                                           batch, inputs.config, cancelled=sink.cancelled)
            return Measured(timing, device, est.device_name(device), est.free_memory(device))
        finally:
            est.DEVICE_LOCK.release()

    return task


def memory_text(memory: est.MemoryEstimate, optimizer: str, free: int | None, device_text: str) -> tuple[str, str]:
    """(one line, the breakdown for the tooltip) of a step's memory on the device."""
    largest = est.max_batch_size(memory, free) if free is not None else None
    line = f"Memory ≈ {est.format_bytes(memory.total)} on {device_text}"
    if largest is not None:
        too_big = largest < memory.batch_size
        fit = f"largest batch that fits: {largest:,}" if largest else "not even one image fits"
        fit = f'<span style="color:{WARN_COLOR}">⚠ {fit}</span>' if too_big else fit
        line += f" · {fit}"
    state = {"adam": "Adam moments (2 per weight)", "adamw": "AdamW moments (2 per weight)"}.get(
        optimizer, "SGD momentum (1 per weight)" if memory.optimizer_state else "no SGD state (momentum 0)")
    tip = (f"Weights {est.format_bytes(memory.weights)} + gradients {est.format_bytes(memory.gradients)} + "
           f"{state} {est.format_bytes(memory.optimizer_state)} + activations {memory.batch_size:,} × "
           f"{est.format_bytes(memory.activations_per_image)} + inputs {memory.batch_size:,} × "
           f"{est.format_bytes(memory.input_per_image)}, fp32.\nActivations are the summary's forward/backward "
           "size (outputs of layers with weights, and their gradients); ReLU/pooling outputs and framework "
           "workspace are not counted, so the real peak is higher.")
    if free is not None:
        tip += f"\nFree now: {est.format_bytes(free)}; {100 * est.RESERVE:.0f} % is kept in reserve."
    return line, tip


def time_text(epoch: est.EpochEstimate, timing: est.StepTiming, device_text: str, batch: int) -> tuple[str, str]:
    """(one line, how it was measured) of an epoch's time."""
    line = f"Time: {est.format_duration(epoch.seconds)} per epoch on {device_text}"
    steps = f"{epoch.train_steps:,} step{'s' if epoch.train_steps != 1 else ''}"
    tip = (f"{timing.steps} training steps of {timing.batch_size} image(s) took {timing.seconds:.3g} s "
           f"({1000 * timing.seconds_per_image:.3g} ms per image). An epoch is {epoch.train_images:,} training "
           f"images in {steps} of {batch:,} ({est.format_duration(epoch.train_seconds)}) and "
           f"{epoch.val_images:,} validation images at a third of that cost per image "
           f"({est.format_duration(epoch.val_seconds)}).")
    return line, tip


class EstimateView(QLabel):
    """`estimateLabel`: two lines (memory, time) with the arithmetic in the tooltip; `updated` after each change."""

    updated = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("estimateLabel")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.inputs: EstimateInputs | None = None
        self.totals: Totals | None = None
        self.area_scale = 1.0
        self.memory: est.MemoryEstimate | None = None
        self.measured: Measured | None = None
        self.epoch: est.EpochEstimate | None = None
        self.blocked = ""            # why no estimate (invalid settings, a run in progress)
        self._time_note = ""
        self.measurer = LatestTask("estimate", self)
        self.measurer.done.connect(self._on_measured)
        self.measurer.failed.connect(self._on_failed)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self._auto_measure)
        self._render()

    # ----- inputs --------------------------------------------------------------------------------
    def set_inputs(self, inputs: EstimateInputs | None, totals: Totals | None, summary_input: tuple[int, ...] | None,
                   blocked: str = "") -> None:
        """What the next run is; `totals` from the layer summary computed at `summary_input` (C, H, W)."""
        self.blocked = blocked
        if inputs == self.inputs and totals == self.totals and not blocked:
            if self.measured is None and not self.measurer.is_busy():
                self._settle.start()   # e.g. a timing cancelled when a run started
            return
        changed_run = inputs != self.inputs
        self.inputs, self.totals = inputs, totals
        self.area_scale = 1.0
        if inputs is not None and summary_input is not None and len(summary_input) == 3:
            area = summary_input[1] * summary_input[2]
            self.area_scale = inputs.input_shape[1] * inputs.input_shape[2] / area if area else 1.0
        if changed_run:
            self.measured, self.epoch, self._time_note = None, None, ""
            self.measurer.invalidate()
            hit = self._cached()
            if hit is not None:
                self._use(hit)
        self._render()
        if self.measured is None:
            self._settle.start()

    def measurement_batch(self) -> int:
        """The batch a timing uses (the run's own, or fewer images on a CPU for a large network)."""
        if self.inputs is None:
            return 1
        macs = int(self.totals.mult_adds * self.area_scale) if self.totals is not None else 0
        batch = self.inputs.config.batch_size
        if self.inputs.train_size:   # a batch larger than the data set is never that large
            batch = min(batch, self.inputs.train_size)
        return est.measurement_batch(batch, macs, _resolved(self.inputs.config.device))

    def _cached(self) -> Measured | None:
        inputs = self.inputs
        if inputs is None or self.totals is None:
            return None
        key = est.timing_key(inputs.arch, inputs.options, inputs.input_shape, inputs.num_classes,
                             self.measurement_batch(), inputs.config)
        timing = est.cached_timing(key)
        if timing is None:
            return None
        return Measured(timing, timing.device, est.device_name(timing.device), est.free_memory(timing.device))

    # ----- measuring -----------------------------------------------------------------------------
    def measure(self) -> bool:
        """Time the current inputs now (off the GUI thread); False when there is nothing to time."""
        self._settle.stop()
        if self.inputs is None or self.totals is None or self.blocked or self.measured is not None:
            return False
        self._time_note = "measuring…"
        self.measurer.request(measure_task(self.inputs, self.measurement_batch()))
        self._render()
        return True

    def is_measuring(self) -> bool:
        return self.measurer.is_busy()

    def cancel(self) -> None:
        """Stop timing (a run is about to start); a later change starts it again."""
        self._settle.stop()
        if self.measurer.is_busy():
            self.measurer.invalidate()
            self._time_note = ""
            self._render()

    def wait_stopped(self, timeout_ms: int) -> bool:
        self._settle.stop()
        return self.measurer.shutdown(timeout_ms)

    @Slot()
    def _auto_measure(self) -> None:
        if self.isVisible():
            self.measure()

    @Slot(int, object)
    def _on_measured(self, _rid: int, measured: Measured) -> None:
        self._use(measured)
        self._render()

    def _use(self, measured: Measured) -> None:
        inputs = self.inputs
        assert inputs is not None
        self.measured, self._time_note = measured, ""
        cfg = inputs.config
        self.epoch = est.epoch_estimate(measured.timing, inputs.train_size or 0, inputs.val_size or 0,
                                        cfg.batch_size, cfg.max_batches)

    @Slot(int, str, str)
    def _on_failed(self, _rid: int, message: str, _details: str) -> None:
        self._time_note = f"not measured ({message.rstrip('.')})."
        self._render()

    # ----- text ----------------------------------------------------------------------------------
    def _render(self) -> None:
        lines: list[str] = []
        tips: list[str] = []
        inputs = self.inputs
        if self.blocked or inputs is None:
            self.memory = None
            self.setText(html.escape(self.blocked) if self.blocked else "")
            self.setToolTip("")
            self.setVisible(bool(self.blocked))
            self.updated.emit()
            return
        measured = self.measured
        device_text = measured.device_text if measured else _device_text(inputs.config.device)
        free = measured.free_bytes if measured else (est.free_memory("cpu") if device_text == "this CPU" else None)
        if self.totals is not None:
            cfg = inputs.config
            self.memory = est.memory_estimate(self.totals, cfg.batch_size, cfg.optimizer, cfg.momentum,
                                              self.area_scale, inputs.input_shape)
            line, tip = memory_text(self.memory, cfg.optimizer, free, device_text)
            lines.append(line)
            tips.append(tip)
        else:
            self.memory = None
            lines.append("Memory: waiting for the layer summary…")
        if measured is not None and self.epoch is not None:
            line, tip = time_text(self.epoch, measured.timing, device_text, inputs.config.batch_size)
            if not inputs.train_size:
                line = "Time per epoch: unknown until the data set's size is known"
            lines.append(html.escape(line))
            tips.append(tip)
        else:
            note = self._time_note or "measured a moment after the choice settles"
            lines.append(html.escape(f"Time per epoch: {note}"))
        self.setText("<br>".join(lines))
        self.setToolTip("\n\n".join(tips))
        self.setVisible(True)
        self.updated.emit()


def _resolved(device: str) -> str:
    try:
        return est.resolve_device_name(device)
    except Exception:  # an unavailable device: the form reports it; time it as the CPU would
        return "cpu"


def _device_text(device: str) -> str:
    resolved = _resolved(device)
    return "this CPU" if resolved == "cpu" else "this Mac's GPU" if resolved == "mps" else "the GPU"
