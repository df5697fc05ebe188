"""The pre-launch estimate: memory from the summary's totals, a measured step's time, the largest batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from workbench.models import summarize
from workbench.training import estimate as est
from workbench.training.config import TrainConfig, recommended_config


@pytest.fixture(scope="module")
def lenet_totals():
    return summarize("lenet", input_shape=(1, 28, 28), num_classes=10).totals


@pytest.mark.parametrize(("optimizer", "momentum", "buffers"), [("adam", 0.9, 2), ("adamw", 0.0, 2),
                                                                ("sgd", 0.9, 1), ("sgd", 0.0, 0)])
def test_memory_agrees_with_the_summary_totals(lenet_totals, optimizer: str, momentum: float, buffers: int) -> None:
    t = lenet_totals
    m = est.memory_estimate(t, 32, optimizer, momentum)
    assert m.weights == round(t.params_mb * 1e6)
    assert abs(m.weights - 4 * t.total_params) <= 5_000          # params_mb is rounded to 10 kB
    assert m.gradients == 4 * t.trainable_params
    assert m.optimizer_state == buffers * 4 * t.trainable_params
    assert m.activations == 32 * round(t.forward_backward_mb * 1e6) and m.activations > 0
    assert m.inputs == 32 * round(t.input_size_mb * 1e6)
    assert m.total == m.weights + m.gradients + m.optimizer_state + m.activations + m.inputs
    # The summary's own total is weights + one image's activations and input.
    assert est.memory_estimate(t, 1).weights + est.memory_estimate(t, 1).per_image == pytest.approx(
        t.total_mb * 1e6, abs=20_000)
    assert est.memory_estimate(t, 32, optimizer, momentum, area_scale=4.0).activations == pytest.approx(
        4 * m.activations, rel=1e-6)
    assert est.memory_estimate(t, 32, input_shape=(1, 28, 28)).inputs == 32 * 4 * 28 * 28


def test_largest_batch_fits_free_memory_less_the_reserve(lenet_totals) -> None:
    m = est.memory_estimate(lenet_totals, 8, "sgd")
    free = int((m.fixed + 100 * m.per_image) / (1 - est.RESERVE)) + 1
    assert est.max_batch_size(m, free) == 100
    assert est.max_batch_size(m, m.fixed) == 0                      # the weights alone fill it
    assert est.max_batch_size(m, int(free * 2)) > 200


def test_measured_steps_agree_with_the_reported_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    est.clear_timing_cache()
    losses: list[int] = []
    handle = nn.modules.module.register_module_forward_hook(
        lambda module, _args, _out: losses.append(1) if isinstance(module, nn.CrossEntropyLoss) else None)
    ticks = iter(range(1000))

    def clock() -> float:  # a fake clock: 0.25 s pass between any two readings
        return 0.25 * next(ticks)

    cfg = TrainConfig(device="cpu", optimizer="adam", lr=0.01, batch_size=8)
    try:
        timing = est.measure_step_time("lenet", {}, (1, 28, 28), 10, 8, cfg, warmup_steps=1, steps=3, clock=clock)
        again = est.measure_step_time("lenet", {}, (1, 28, 28), 10, 8, cfg, clock=clock)
    finally:
        handle.remove()
        est.clear_timing_cache()
    assert len(losses) == 1 + 3                                    # one warm-up step, three timed ones, then cached
    assert timing.steps == 3 and timing.batch_size == 8 and timing.device == "cpu"
    assert timing.seconds == pytest.approx(3 * 0.25)
    assert timing.seconds_per_step == pytest.approx(0.25) and timing.seconds_per_image == pytest.approx(0.25 / 8)
    assert again is timing
    epoch = est.epoch_estimate(timing, train_size=80, val_size=30, batch_size=8)
    assert epoch.train_steps == 10 and epoch.train_seconds == pytest.approx(10 * timing.seconds_per_step)
    assert epoch.val_seconds == pytest.approx(30 * timing.seconds_per_image / 3)
    capped = est.epoch_estimate(timing, train_size=80, val_size=0, batch_size=8, max_batches=4)
    assert capped.train_steps == 4 and capped.seconds == pytest.approx(4 * 0.25)


def test_fast_steps_are_timed_until_they_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(1000))
    cfg = TrainConfig(device="cpu", batch_size=4)
    timing = est.measure_step_time("lenet", {}, (1, 28, 28), 10, 4, cfg, steps=3, min_seconds=1.0,
                                   clock=lambda: 0.1 * next(ticks), use_cache=False)
    assert timing.steps == 10 and timing.seconds == pytest.approx(1.0)   # 10 steps of 0.1 s reach 1 s
    capped = est.measure_step_time("lenet", {}, (1, 28, 28), 10, 4, cfg, steps=3, min_seconds=100.0, max_steps=6,
                                   clock=lambda: 0.1 * next(ticks), use_cache=False)
    assert capped.steps == 6 and capped.seconds == pytest.approx(0.6)


def test_measurement_batch_keeps_a_cpu_step_small() -> None:
    vgg = summarize("vgg16", input_shape=(1, 224, 224), num_classes=10).totals
    assert vgg.mult_adds == pytest.approx(15.4e9, rel=0.01)
    assert est.measurement_batch(128, vgg.mult_adds, "cpu") == 1
    assert est.measurement_batch(128, vgg.mult_adds, "cuda:0") == 128
    assert est.measurement_batch(32, 400_000, "cpu") == 32


def test_vgg16_on_digits_reads_about_forty_minutes_on_a_cpu_at_1_5_s_per_image() -> None:
    # The example: 1,618 digits at 224x224 through VGG16 at ~1.5 s per image on a 2-core CPU.
    timing = est.StepTiming("cpu", batch_size=1, steps=3, seconds=3 * 1.43)
    epoch = est.epoch_estimate(timing, 1618, 179, recommended_config("vgg16", "digits").batch_size)
    assert est.format_duration(epoch.seconds) == "about 40 min"


def test_formatting() -> None:
    assert est.format_duration(0.2) == "under a second"
    assert est.format_duration(42) == "about 42 s"
    assert est.format_duration(3 * 3600) == "about 3.0 h"
    assert est.format_bytes(537_200_000) == "537 MB" and est.format_bytes(15.5e9) == "15.5 GB"
    assert est.format_bytes(850) == "850 B"


def test_free_memory_reads_meminfo(tmp_path: Path) -> None:
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n")
    assert est._meminfo_available(str(fake)) == 8_000_000 * 1024
    assert est._meminfo_available(str(tmp_path / "none")) is None
    free = est.free_memory("cpu")
    assert free is None or free > 0
    assert est.free_memory("mps") is None
    if torch.cuda.is_available():  # pragma: no cover - GPU machines only
        assert est.free_memory("cuda:0") > 0
