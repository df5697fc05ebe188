"""The Trainer loop on tiny models and synthetic tensors: aux losses, callbacks, stop/pause, divergence, OOM."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from workbench.training import trainer as trainer_mod
from workbench.training.callbacks import Callback
from workbench.training.checkpoint import load_checkpoint, save_checkpoint
from workbench.training.config import TrainConfig
from workbench.training.control import TrainControl
from workbench.training.device import resolve_precision
from workbench.training.events import EpochMetrics, FitResult, FitStart, StepMetrics
from workbench.training.trainer import Trainer

CPU = torch.device("cpu")


def _batches(n: int = 8, bs: int = 16, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(16, 3, generator=g)
    out = []
    for _ in range(n):
        x = torch.randn(bs, 1, 4, 4, generator=g)
        out.append((x, (x.flatten(1) @ w).argmax(1)))
    return out


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))


def _trainer(model: nn.Module, cfg: TrainConfig, batches: Any, **kw: Any) -> Trainer:
    cfg = cfg.replace(device="cpu")
    return Trainer(model, cfg, device=CPU, precision=resolve_precision(cfg, CPU), train_loader=batches,
                   val_loader=kw.pop("val", batches), **kw)


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_fit_start(self, e: FitStart) -> None:
        self.events.append(e)

    def on_train_batch_end(self, e: StepMetrics) -> None:
        self.events.append(e)

    def on_epoch_end(self, e: EpochMetrics) -> None:
        self.events.append(e)

    def on_fit_end(self, r: FitResult) -> None:
        self.events.append(r)

    def on_exception(self, message: str, details: str) -> None:
        self.events.append(("exception", message, details))

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def test_learns_and_reports_plain_events() -> None:
    rec = Recorder()
    result = _trainer(_mlp(), TrainConfig(epochs=4, optimizer="adam", lr=0.02), _batches(), callbacks=[rec]).fit()
    assert result.status == "completed" and result.epochs_completed == 4
    epochs = rec.of(EpochMetrics)
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert epochs[-1].train_loss < epochs[0].train_loss and result.val_accuracy > 0.6
    assert 0.0 <= result.train_accuracy <= 1.0 and result.images_per_second > 0
    for e in rec.events:  # only plain values cross to callbacks (frozen dataclasses of numbers and text)
        if not isinstance(e, tuple):
            assert dataclasses.is_dataclass(e) and type(e).__dataclass_params__.frozen  # type: ignore[attr-defined]
            for value in vars(e).values():
                items = value if isinstance(value, tuple) else (value,)
                assert all(isinstance(v, (int, float, str, dict, bool, type(None))) for v in items)
    assert isinstance(rec.events[0], FitStart) and isinstance(rec.events[-1], FitResult)


class AuxNet(nn.Module):
    """Returns (main, aux1, aux2) in every mode, with known, different logits."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Linear(16, 3)
        self.a1 = nn.Linear(16, 3)
        self.a2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x.flatten(1)
        return self.main(x), self.a1(x), self.a2(x)


@pytest.mark.parametrize("aux_weight", [0.3, 0.5])
def test_aux_losses_weighted_in_training_only(aux_weight: float) -> None:
    torch.manual_seed(0)
    model = AuxNet()
    cfg = TrainConfig(epochs=1, lr=1e-9, momentum=0.0, weight_decay=0.0, aux_weight=aux_weight)
    t = _trainer(model, cfg, _batches(n=1))
    x, y = _batches(n=1)[0]
    ce = nn.functional.cross_entropy
    with torch.no_grad():
        m, a1, a2 = model(x)
        expected = ce(m, y) + aux_weight * (ce(a1, y) + ce(a2, y))
        loss, main_loss, aux_losses, main = t._forward_loss(x, y)
    assert torch.allclose(loss, expected) and torch.equal(main, m)
    assert torch.allclose(main_loss, ce(m, y)) and [a.item() for a in aux_losses] == [ce(a1, y).item(),
                                                                                      ce(a2, y).item()]
    val = t.validate()  # the main output's loss, even though the model returns its aux heads
    assert val.loss == pytest.approx(ce(m, y).item(), rel=1e-5)
    assert val.accuracy == pytest.approx((m.argmax(1) == y).float().mean().item())
    assert val.aux_losses == pytest.approx((ce(a1, y).item(), ce(a2, y).item()), rel=1e-5)
    rec = Recorder()
    t.callbacks.callbacks.append(rec)
    result = t.fit()  # reported training loss is the optimised (weighted) loss
    assert result.train_loss == pytest.approx(expected.item(), rel=1e-4)
    epoch = rec.of(EpochMetrics)[0]  # the parts of that loss, each head on its own, and the weight
    assert epoch.train_main_loss == pytest.approx(ce(m, y).item(), rel=1e-4)
    assert epoch.train_aux_losses == pytest.approx((ce(a1, y).item(), ce(a2, y).item()), rel=1e-4)
    assert len(epoch.val_aux_losses) == 2 and epoch.aux_weight == aux_weight
    assert not any(m.training for m in model.modules() if not list(m.children()))  # every layer in eval


def test_real_googlenet_step_uses_weighted_aux_losses() -> None:
    from workbench.models import build_model

    torch.manual_seed(0)
    model = build_model("googlenet", num_classes=3, input_shape=(3, 32, 32))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 0])
    cfg = TrainConfig(epochs=1, lr=0.01, aux_weight=0.5)
    t = _trainer(model, cfg, [(x, y)], val=[(x, y)])
    ce = nn.functional.cross_entropy
    model.train()
    torch.manual_seed(1)  # same dropout masks in both forward passes
    with torch.no_grad():
        main, aux1, aux2 = model(x)
    torch.manual_seed(1)
    loss, _, _, out = t._forward_loss(x, y)
    assert torch.allclose(loss, ce(main, y) + 0.5 * (ce(aux1, y) + ce(aux2, y)), rtol=1e-5)
    assert torch.allclose(out, main)
    loss.backward()  # one real step: the aux heads get gradients
    assert model.training and any(p.grad is not None and p.grad.abs().sum() > 0
                                  for n, p in model.named_parameters() if "aux" in n)
    val_loss = t.validate().loss  # the main output's loss, every layer in eval mode
    model.eval()
    with torch.no_grad():
        eval_out = model(x)
    assert isinstance(eval_out, torch.Tensor)
    assert val_loss == pytest.approx(ce(eval_out, y).item(), rel=1e-5)


def test_step_metrics_rate_on_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every step "takes" 20 ms of a fake clock, so the emitted rate is independent of this machine's speed:
    # 375 steps = 7.5 s; the callbacks must hear about it 10-20 times a second, not every step.
    now = [0.0]

    def fake_clock() -> float:
        return now[0]

    class Clocked(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            now[0] += 0.02
            return self.inner(x)

    folds = []
    original = Trainer._fold

    def counting(self: Trainer, *args: Any) -> None:
        folds.append(1)
        original(self, *args)

    monkeypatch.setattr(Trainer, "_fold", counting)
    rec = Recorder()
    t = _trainer(Clocked(_mlp()), TrainConfig(epochs=1, optimizer="sgd", lr=0.01), _batches(n=375, bs=4),
                 val=None, callbacks=[rec])
    monkeypatch.setattr(trainer_mod.time, "perf_counter", fake_clock)
    t.fit()
    steps = rec.of(StepMetrics)
    rate = len(steps) / 7.5
    assert 10.0 <= rate <= 20.0, rate
    assert len(folds) == len(steps) + 1  # the device is synchronised only when emitting, plus epoch end
    assert all(a.step < b.step for a, b in itertools.pairwise(steps))


def _save_to(folder: Path, saved: list[tuple[str, dict]]) -> Any:
    def save(kind: str, state: dict) -> str:
        saved.append((kind, state))
        return str(save_checkpoint(folder / f"{kind}.pt", state))
    return save


def test_stop_from_another_thread_within_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_mod, "STEP_EMIT_INTERVAL", 0.0)
    control = TrainControl()
    at_stop: list[int] = []
    saved: list[tuple[str, dict]] = []

    class StopFromThread(Callback):
        def on_train_batch_end(self, e: StepMetrics) -> None:
            if e.step == 5 and not at_stop:
                th = threading.Thread(target=control.stop)
                th.start()
                th.join()
                at_stop.append(e.step)

    t = _trainer(_mlp(), TrainConfig(epochs=3), _batches(n=8), control=control,
                 callbacks=[StopFromThread()], checkpoint_fn=_save_to(tmp_path, saved))
    result = t.fit()
    assert result.status == "stopped" and result.checkpoint == str(tmp_path / "last.pt")
    state = load_checkpoint(tmp_path / "last.pt")
    assert at_stop[0] <= state["step"] <= at_stop[0] + 1
    assert state["epoch"] == 0 and state["batch"] == state["step"]


def test_pause_blocks_until_resume() -> None:
    control = TrainControl()
    entered = threading.Event()
    steps: list[int] = []

    class PauseOnce(Callback):
        def on_train_batch_end(self, e: StepMetrics) -> None:
            steps.append(e.step)
            if len(steps) == 1:
                control.pause()
                entered.set()

    t = _trainer(_mlp(), TrainConfig(epochs=1), _batches(n=200, bs=2), control=control, callbacks=[PauseOnce()])
    results: list[FitResult] = []
    worker = threading.Thread(target=lambda: results.append(t.fit()))
    worker.start()
    assert entered.wait(30)
    worker.join(0.3)
    assert worker.is_alive() and control.paused  # blocked between steps
    step_while_paused = t.step
    worker.join(0.2)
    assert t.step == step_while_paused
    control.resume()
    worker.join(60)
    assert not worker.is_alive() and results[0].status == "completed"


def test_stop_releases_a_paused_run() -> None:
    control = TrainControl()
    control.pause()
    threading.Timer(0.2, control.stop).start()
    result = _trainer(_mlp(), TrainConfig(epochs=2), _batches(), control=control).fit()
    assert result.status == "stopped" and result.epochs_completed == 0


class InfNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.lin(x.flatten(1))
        return out * float("inf") if self.calls > 10 else out


def test_non_finite_loss_diverges_without_touching_best(tmp_path: Path) -> None:
    saved: list[tuple[str, dict]] = []
    rec = Recorder()
    t = _trainer(InfNet(), TrainConfig(epochs=3, lr=0.01), _batches(n=8), val=_batches(n=1),
                 callbacks=[rec], checkpoint_fn=_save_to(tmp_path, saved))
    result = t.fit()
    assert result.status == "diverged" and "diverged" in result.message and "learning rate" in result.message
    assert result.epochs_completed == 1
    best = load_checkpoint(tmp_path / "best.pt")
    assert all(torch.isfinite(v).all() for v in best["model"].values())
    assert [k for k, _ in saved] == ["last", "best"]  # nothing saved after the loss went non-finite


class OOMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_suggests_smaller_batch() -> None:
    rec = Recorder()
    result = _trainer(OOMNet(), TrainConfig(epochs=1, batch_size=256), _batches(), callbacks=[rec]).fit()
    assert result.status == "failed"
    assert "smaller batch size" in result.message and "--batch-size 128" in result.message
    assert any(isinstance(e, tuple) and e[0] == "exception" for e in rec.events)


def test_early_stopping_grad_clip_and_label_smoothing() -> None:
    cfg = TrainConfig(epochs=50, lr=1e-12, early_stopping=2, grad_clip=0.5, label_smoothing=0.1)
    result = _trainer(_mlp(), cfg, _batches(n=2)).fit()
    assert result.status == "completed" and result.epochs_completed == 3
    assert "Early stopping" in result.message


def test_max_batches_caps_an_epoch() -> None:
    rec = Recorder()
    t = _trainer(_mlp(), TrainConfig(epochs=2, max_batches=3), _batches(n=8), callbacks=[rec])
    t.fit()
    assert t.batches_per_epoch == 3 and t.step == 6
