"""Hints when results look wrong, and warnings for implausible settings."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.models import list_models
from workbench.training.config import recommended_config
from workbench.training.events import EpochMetrics
from workbench.training.hints import at_chance, hints, settings_warnings


def epoch(n: int, train_loss: float, val_loss: float, val_accuracy: float, **kw: float) -> EpochMetrics:
    return EpochMetrics(run_id="r", epoch=n, epochs=10, train_loss=train_loss, train_accuracy=kw.get("train_acc", 0.5),
                        val_loss=val_loss, val_accuracy=val_accuracy, lr=0.1, images_per_second=100.0,
                        epoch_seconds=1.0, best_val_accuracy=val_accuracy, is_best=True, time=0.0)


CONFIG = dataclasses.asdict(recommended_config("resnet18", "cifar10"))


def test_chance_level_after_an_epoch_points_at_the_learning_rate() -> None:
    found = hints([epoch(1, 2.303, 2.302, 0.095)], 10, CONFIG)
    assert len(found) == 1 and found[0].field == "lr"
    assert "chance level" in found[0].message and "9.5 %" in found[0].message and "ln 10" in found[0].message
    assert "10× smaller" in found[0].message                      # lr 0.05 on resnet18: usually too high
    tiny = hints([epoch(1, 2.303, 2.302, 0.095)], 10, {**CONFIG, "lr": 1e-7})
    assert "too small to move the weights" in tiny[0].message and "10× smaller" not in tiny[0].message
    assert hints([epoch(1, 1.2, 1.3, 0.55)], 10, CONFIG) == []
    assert at_chance(0.5, 2) and not at_chance(0.65, 2) and at_chance(0.012, 100) and not at_chance(0.05, 100)


def test_diverging_and_infinite_losses() -> None:
    found = hints([epoch(1, 2.0, 1.9, 0.3), epoch(2, 1.2, 1.3, 0.5), epoch(3, 4.5, 5.0, 0.3)], 10, CONFIG)
    assert found[0].field == "lr" and "diverging" in found[0].message and "0.05" in found[0].message
    nan = hints([epoch(1, float("nan"), float("nan"), 0.1)], 10, CONFIG)
    assert nan[0].field == "lr" and "NaN" in nan[0].message


def test_validation_far_above_training_suggests_regularisation() -> None:
    run = [epoch(1, 0.9, 1.0, 0.6), epoch(2, 0.1, 1.4, 0.62)]
    found = hints(run, 10, {**CONFIG, "augment": False})
    assert found[0].field == "augment" and "augmentation" in found[0].message
    assert hints(run, 10, CONFIG)[0].field == "weight_decay"
    # GoogLeNet: the training loss includes the aux heads' losses; the main head's is what validation measures.
    aux = [dataclasses.replace(run[0], train_loss=1.8, train_main_loss=0.9),
           dataclasses.replace(run[1], train_loss=0.8, train_main_loss=0.1)]
    assert hints(aux, 10, CONFIG)[0].field == "weight_decay"
    assert hints([aux[0], dataclasses.replace(aux[1], train_main_loss=None)], 10, CONFIG) == []


@pytest.mark.parametrize(("changes", "field", "needle"), [
    ({"optimizer": "sgd", "lr": 100.0}, "lr", "unusually high"),
    ({"optimizer": "adam", "lr": 0.5}, "lr", "unusually high for adam"),
    ({"optimizer": "sgd", "lr": 1e-8}, "lr", "unusually low"),
    ({"batch_size": 99_999_999}, "batch_size", "99,999,999 is larger than the training split (1,618"),
    ({"epochs": 5000}, "epochs", "5,000 epochs"),
    ({"warmup_epochs": 20.0, "epochs": 10}, "warmup_epochs", "never reaches"),
    ({"schedule": "step", "step_size": 30, "epochs": 10}, "step_size", "never decays"),
    ({"weight_decay": 0.5}, "weight_decay", "very strong"),
])
def test_implausible_settings_are_warned_about(changes: dict, field: str, needle: str) -> None:
    found = settings_warnings({**CONFIG, **changes}, train_size=1618)
    assert [h.field for h in found] == [field] and needle in found[0].message


def test_recommended_settings_never_warn() -> None:
    for arch in list_models():
        for dataset, size in (("digits", 1618), ("cifar10", 50000)):
            cfg = dataclasses.asdict(recommended_config(arch, dataset))
            assert settings_warnings(cfg, train_size=size) == [], (arch, dataset)


def test_a_sigmoid_network_at_chance_is_pointed_at_its_activation() -> None:
    stuck = [epoch(1, 2.303, 2.302, 0.1), epoch(2, 2.303, 2.302, 0.1)]
    found = hints(stuck, 10, CONFIG, {"activation": "sigmoid", "pool": "avg"})
    assert len(found) == 1 and "activation to relu" in found[0].message and "10× smaller" not in found[0].message
    assert found[0].field is None                                  # an architecture option, not a training field
    relu = hints(stuck, 10, CONFIG, {"activation": "relu"})[0]
    assert "activation" not in relu.message and relu.field == "lr"
    tiny = hints(stuck, 10, {**CONFIG, "lr": 1e-7}, {"activation": "sigmoid"})[0]
    assert "too small" in tiny.message and tiny.field == "lr"      # a definite cause comes first
