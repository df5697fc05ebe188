"""Trainer edge cases: stop during validation, MPS-style OOM, img/s clock (set-up and replay excluded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from test_training_loop import Recorder, _batches, _mlp, _save_to, _trainer
from torch import nn

from workbench.training import trainer as trainer_mod
from workbench.training.callbacks import Callback
from workbench.training.checkpoint import load_checkpoint
from workbench.training.config import TrainConfig
from workbench.training.control import TrainControl
from workbench.training.events import EpochMetrics, StepMetrics


class StopInValidation:
    """A validation set that asks for a stop at its 2nd batch the first time it is iterated."""

    def __init__(self, batches: list, control: TrainControl) -> None:
        self.batches, self.control, self.calls, self.served = batches, control, 0, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        self.calls += 1
        for k, b in enumerate(self.batches):
            self.served += 1
            if self.calls == 1 and k == 1:
                self.control.stop()
            yield b


def test_stop_during_validation_ends_promptly_and_resume_revalidates(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=2, optimizer="adam", lr=0.01)
    train, val = _batches(n=6), _batches(n=40, seed=1)
    straight = _trainer(_mlp(), cfg, train, val=val)
    straight.fit()

    control = TrainControl()
    slow_val = StopInValidation(val, control)
    rec = Recorder()
    t = _trainer(_mlp(), cfg, train, val=slow_val, control=control, callbacks=[rec],
                 checkpoint_fn=_save_to(tmp_path, []))
    result = t.fit()
    assert result.status == "stopped" and "during validation" in result.message
    assert slow_val.served == 2  # did not run the other 38 validation batches
    assert not rec.of(EpochMetrics) and result.epochs_completed == 0
    state = load_checkpoint(tmp_path / "last.pt")
    assert (state["epoch"], state["batch"], state["step"]) == (0, 6, 6)  # end of epoch 1's training part

    rec2 = Recorder()
    resumed = _trainer(_mlp(), cfg, train, val=val, callbacks=[rec2])
    resumed.load_state_dict(state)
    again = resumed.fit()
    assert again.status == "completed" and again.epochs_completed == 2 and resumed.step == 12
    assert [e.epoch for e in rec2.of(EpochMetrics)] == [1, 2]  # epoch 1 validated once, not skipped
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert again.val_accuracy == straight.last["val_accuracy"]


class RaisingNet(nn.Module):
    """A model whose forward raises `exc`: how a back end's error reaches the trainer."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 3)
        self.exc = exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.exc


def test_mps_out_of_memory_runtime_error_suggests_smaller_batch() -> None:
    net = RaisingNet(RuntimeError("MPS backend out of memory (MPS allocated: 9.00 GB)"))
    result = _trainer(net, TrainConfig(epochs=1, batch_size=64), _batches()).fit()
    assert result.status == "failed" and "Out of memory" in result.message and "--batch-size 32" in result.message


@pytest.mark.parametrize("compile_on", [False, True])
def test_a_failure_with_compile_on_suggests_training_without_it(compile_on: bool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)  # the failure stands in for a compiler bug
    net = RaisingNet(AssertionError("expected size 512==512, stride 9==1 at dim=1"))
    result = _trainer(net, TrainConfig(epochs=1, batch_size=64, compile=compile_on), _batches()).fit()
    assert result.status == "failed" and "AssertionError: expected size 512" in result.message
    assert ("new run without it to rule out a compiler bug" in result.message) == compile_on


class FakeTime:
    """perf_counter advanced only by the loader: deterministic training-loop time."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def time(self) -> float:
        return 1e9 + self.now


class ClockedLoader:
    """100 s of one-off set-up when iterated, then 1 s to fetch each batch."""

    def __init__(self, batches: list, clock: FakeTime) -> None:
        self.batches, self.clock = batches, clock

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        self.clock.now += 100.0
        for b in self.batches:
            self.clock.now += 1.0
            yield b


def test_images_per_second_excludes_setup_and_replayed_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(trainer_mod, "time", clock)
    monkeypatch.setattr(trainer_mod, "STEP_EMIT_INTERVAL", 0.0)
    batches = _batches(n=10, bs=16)
    control = TrainControl()

    class StopAt4(Callback):
        def on_train_batch_end(self, e: StepMetrics) -> None:
            if e.step == 4:
                control.stop()

    cfg = TrainConfig(epochs=1)
    t = _trainer(_mlp(), cfg, ClockedLoader(batches, clock), val=batches[:1], control=control,
                 callbacks=[StopAt4()])
    assert t.fit().status == "stopped"
    # Clock from batch 1 in hand: batches 2..5 fetched (5 is drawn, then the stop is seen); set-up excluded.
    assert t.train_images == 64 and t.train_seconds == pytest.approx(4.0)
    state = t.state_dict()
    resumed = _trainer(_mlp(), cfg, ClockedLoader(batches, clock), val=batches[:1])
    resumed.load_state_dict(state)
    result = resumed.fit()
    # Resumed: set-up (100 s) and the 4 replayed batches (4 s) are not training time; fetching 6..10 is.
    assert resumed.train_images == 160 and resumed.train_seconds == pytest.approx(4.0 + 5.0)
    assert result.images_per_second == pytest.approx(160 / 9.0)
