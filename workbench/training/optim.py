"""Optimizers and per-batch learning-rate schedules (with linear warm-up)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from workbench.training.config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum / Nesterov), Adam or AdamW over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor_fn(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the peak lr after `step` optimisation steps, for the configured schedule."""
    steps_per_epoch = max(1, steps_per_epoch)
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total, round(config.warmup_epochs * steps_per_epoch))
    schedule = config.schedule
    if schedule == "onecycle" and warmup == 0:
        warmup = max(1, int(0.3 * total))  # one-cycle always ramps up; 30 % as torch's OneCycleLR

    def factor(step: int) -> float:
        if warmup and step < warmup:
            start = 1.0 / 25.0 if schedule == "onecycle" else 0.0
            return start + (1.0 - start) * (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        if schedule == "step":
            return config.gamma ** (step // (config.step_size * steps_per_epoch))
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "onecycle":
            floor = 1.0 / 25.0 / 1e4
            return floor + (1.0 - floor) * cosine
        return cosine

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per batch; its state_dict holds only numbers (checkpoint-safe)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(config, steps_per_epoch))
