"""Before Train: warnings for implausible values (Train stays enabled) and the estimate beside the Train button —
memory from the layer summary's totals, time per epoch from a measured step."""

from __future__ import annotations

import math

import pytest

from tests.ui.conftest import TrainingBench
from workbench.models import resolve_options, summarize
from workbench.training import estimate as est
from workbench.ui.architecture_panel import ArchSelection
from workbench.ui.training_panel import TrainingPanel


def resolved(arch: str, shape: tuple[int, int, int] = (1, 28, 28), classes: int = 10) -> ArchSelection:
    """The selection the architecture panel sends for `arch` with its default options (resolved)."""
    return ArchSelection(arch, resolve_options(arch, {}), None, None, shape, classes)


@pytest.fixture
def panel(lenet_digits_panel) -> TrainingPanel:
    bench: TrainingBench = lenet_digits_panel(epochs=2)
    p = bench.panel
    p.set_architecture(resolved("lenet"))
    p.set_summary(summarize("lenet", input_shape=(1, 28, 28), num_classes=10))
    return p


def _advice(panel: TrainingPanel, qtbot, check) -> None:
    qtbot.waitUntil(lambda: check(panel), timeout=5_000)   # the advice follows edits after a short pause


def test_implausible_values_warn_but_train_stays_enabled(panel: TrainingPanel, qtbot) -> None:
    warning = panel.settingsWarning
    assert warning.objectName() == "settingsWarning" and not warning.hints
    panel.settings.widgets["lr"].setText("100")
    _advice(panel, qtbot, lambda p: [h.field for h in p.settingsWarning.hints] == ["lr"])
    assert "unusually high for adam" in warning.plain_text() and warning.isVisibleTo(panel)
    assert panel.trainButton.isEnabled()
    panel.settings.widgets["batch_size"].setValue(99_999_999)
    _advice(panel, qtbot, lambda p: len(p.settingsWarning.hints) == 2)
    assert "larger than the training split (1,618 images)" in warning.plain_text()
    assert panel.trainButton.isEnabled()
    warning.activate(1)                                     # "Go to batch size"
    assert panel.settings.highlighted_field == "batch_size"
    panel.settings.widgets["lr"].setText("0.01")
    panel.settings.widgets["batch_size"].setValue(32)
    _advice(panel, qtbot, lambda p: not p.settingsWarning.hints)
    assert not warning.isVisibleTo(panel)


def test_estimate_agrees_with_the_summary_and_a_measured_step(panel: TrainingPanel, qtbot) -> None:
    est.clear_timing_cache()
    view = panel.estimate
    assert view.objectName() == "estimateLabel"
    totals = panel.summary.totals
    _advice(panel, qtbot, lambda p: p.estimate.memory is not None)
    memory = view.memory
    assert memory == est.memory_estimate(totals, 32, "adam", 0.9, input_shape=(1, 28, 28))
    assert memory.activations == 32 * round(totals.forward_backward_mb * 1e6)
    assert memory.weights == round(totals.params_mb * 1e6) and memory.optimizer_state == 2 * memory.gradients
    assert f"Memory ≈ {est.format_bytes(memory.total)} on this CPU" in view.text()
    free = est.free_memory("cpu")
    if free is not None:
        assert "largest batch that fits" in view.text()
    with qtbot.waitSignal(view.measurer.done, timeout=60_000):
        assert view.measure()
    timing = view.measured.timing
    assert timing.batch_size == 32 and timing.steps >= est.TIMED_STEPS and timing.device == "cpu"
    epoch = view.epoch
    assert epoch.train_steps == math.ceil(1618 / 32) and epoch.train_images == 1618
    assert epoch.train_seconds == pytest.approx(1618 * timing.seconds / (timing.steps * 32))
    assert epoch.val_seconds == pytest.approx(179 * timing.seconds_per_image / 3)
    assert f"Time: {est.format_duration(epoch.seconds)} per epoch on this CPU" in view.text()
    assert f"{timing.steps} training steps of 32 image(s)" in view.toolTip()
    # Another batch size is another measurement; coming back to 32 reuses the cached one at once.
    panel.settings.widgets["batch_size"].setValue(16)
    _advice(panel, qtbot, lambda p: p.estimate.inputs.config.batch_size == 16)
    assert view.measured is None and "Time per epoch:" in view.text()
    panel.settings.widgets["batch_size"].setValue(32)
    _advice(panel, qtbot, lambda p: p.estimate.inputs.config.batch_size == 32)
    assert view.measured is not None and view.measured.timing is timing and not view.is_measuring()


def test_estimate_waits_for_the_summary_of_the_selection(panel: TrainingPanel, qtbot) -> None:
    panel.set_architecture(resolved("resnet18"))            # the summary shown is still LeNet's
    _advice(panel, qtbot, lambda p: p.estimate.inputs is not None and p.estimate.inputs.arch == "resnet18")
    assert panel.estimate.memory is None and "waiting for the layer summary" in panel.estimate.text()
    assert not panel.estimate.measure()                     # nothing is timed without the model's size


def test_a_large_network_is_timed_at_a_smaller_cpu_batch(panel: TrainingPanel, qtbot) -> None:
    sel = resolved("vgg16", (1, 224, 224))
    panel.set_architecture(sel)
    summary = summarize("vgg16", input_shape=(1, 224, 224), num_classes=10)
    panel.set_summary(summary)
    _advice(panel, qtbot, lambda p: p.estimate.memory is not None)
    assert panel.estimate.measurement_batch() == 1          # 15.4 G Mult-Adds an image: one image a timed step
    assert panel.estimate.memory.activations_per_image == round(summary.totals.forward_backward_mb * 1e6)
