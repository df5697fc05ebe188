"""TrainConfig validation and JSON round trip, schedules, device and precision selection."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workbench.errors import InvalidOptionError, WorkbenchError
from workbench.training.config import TrainConfig, recommended_config
from workbench.training.device import resolve_device, resolve_precision
from workbench.training.optim import build_optimizer, build_scheduler, lr_factor_fn


def test_json_round_trip_keeps_every_field() -> None:
    cfg = TrainConfig(epochs=3, optimizer="adamw", lr=0.002, schedule="onecycle", warmup_epochs=0.5, hflip=False,
                      grad_clip=1.0, early_stopping=2, max_batches=7, image_size=16, amp="off")
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("field,value,needle", [
    ("epochs", 0, "epochs"), ("batch_size", 2.5, "batch_size"), ("optimizer", "adagrad", "sgd, adam, adamw"),
    ("lr", -1.0, "lr"), ("lr", float("nan"), "lr"), ("schedule", "cosin", "cosine"), ("amp", "fp8", "amp"),
    ("channels_last", "yes", "channels_last"), ("label_smoothing", 1.0, "label_smoothing"),
    ("device", "tpu", "device"), ("max_batches", 0, "max_batches"), ("augment", "yes", "augment"),
    ("val_fraction", 1.0, "val_fraction"), ("grad_clip", 0.0, "grad_clip"),
])
def test_invalid_values_name_the_field(field: str, value: object, needle: str) -> None:
    with pytest.raises(InvalidOptionError, match=needle):
        TrainConfig(**{field: value}).validate()


def test_unknown_key_suggests_close_name() -> None:
    with pytest.raises(InvalidOptionError, match="Did you mean: epochs"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(InvalidOptionError, match="JSON"):
        TrainConfig.from_json("{not json")


def test_nesterov_needs_sgd_with_momentum() -> None:
    with pytest.raises(InvalidOptionError, match="nesterov"):
        TrainConfig(optimizer="adam", nesterov=True).validate()
    TrainConfig(optimizer="sgd", nesterov=True).validate()


def test_recommended_config_layers_user_values_on_top() -> None:
    cfg = recommended_config("lenet", "digits", {"lr": 0.02})
    assert (cfg.optimizer, cfg.lr, cfg.augment) == ("adam", 0.02, False)
    assert recommended_config("resnet18", "cifar10") == TrainConfig()


def _model() -> nn.Module:
    return nn.Linear(4, 2)


@pytest.mark.parametrize("name,kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizers(name: str, kind: type) -> None:
    opt = build_optimizer(_model(), TrainConfig(optimizer=name, lr=0.1, nesterov=name == "sgd"))
    assert isinstance(opt, kind)
    assert opt.param_groups[0]["lr"] == 0.1
    if name == "sgd":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_schedules_per_batch() -> None:
    spe = 10
    f = lr_factor_fn(TrainConfig(epochs=4, schedule="constant"), spe)
    assert {f(s) for s in range(40)} == {1.0}
    f = lr_factor_fn(TrainConfig(epochs=4, schedule="step", step_size=2, gamma=0.1), spe)
    assert f(19) == 1.0 and f(20) == pytest.approx(0.1)
    f = lr_factor_fn(TrainConfig(epochs=4, schedule="cosine"), spe)
    assert f(0) == 1.0 and f(20) == pytest.approx(0.5) and f(40) == pytest.approx(0.0)
    f = lr_factor_fn(TrainConfig(epochs=4, schedule="cosine", warmup_epochs=1), spe)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
    assert all(f(s) > f(s + 1) for s in range(10, 39))
    f = lr_factor_fn(TrainConfig(epochs=4, schedule="onecycle"), spe)
    peak = max(range(40), key=f)
    assert 5 <= peak <= 15 and f(0) < 0.15 and f(39) < 0.01


def test_scheduler_steps_the_optimizer_lr() -> None:
    model = _model()
    cfg = TrainConfig(epochs=2, schedule="cosine", lr=1.0)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5)
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    assert all(not callable(v) for v in sched.state_dict().values())


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    if not torch.cuda.is_available():
        with pytest.raises(WorkbenchError, match="not available"):
            resolve_device("cuda")
    with pytest.raises(WorkbenchError):
        resolve_device("cuda:99")


def test_precision_auto_is_off_on_cpu_and_fp16_refused() -> None:
    cpu = torch.device("cpu")
    p = resolve_precision(TrainConfig(), cpu)
    assert (p.amp, p.channels_last, p.needs_scaler) == ("off", True, False)  # oneDNN's NHWC convs are faster
    assert not resolve_precision(TrainConfig(channels_last="off"), cpu).channels_last
    assert not resolve_precision(TrainConfig(), torch.device("mps")).channels_last
    assert resolve_precision(TrainConfig(amp="bf16", channels_last="on"), cpu).dtype == torch.bfloat16
    with pytest.raises(InvalidOptionError, match="fp16"):
        resolve_precision(TrainConfig(amp="fp16"), cpu)
    if torch.cuda.is_available():
        p = resolve_precision(TrainConfig(), torch.device("cuda"))
        assert p.amp in ("bf16", "fp16") and p.channels_last
        assert p.needs_scaler == (p.amp == "fp16")
    assert math.isfinite(TrainConfig().lr)


@pytest.mark.parametrize("capability,expected", [((7, 5), "fp16"), ((6, 1), "fp16"), ((8, 0), "bf16"),
                                                 ((9, 0), "bf16")])
def test_auto_amp_uses_bf16_only_where_native(capability: tuple[int, int], expected: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def get_capability(index: int = 0) -> tuple[int, int]:
        asked.append(index)
        return capability if index == 1 else (9, 0)  # only the chosen device counts

    monkeypatch.setattr(torch.cuda, "get_device_capability", get_capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # emulated
    p = resolve_precision(TrainConfig(), torch.device("cuda:1"))
    assert p.amp == expected and p.needs_scaler == (expected == "fp16") and asked == [1]
