"""The learning-rate finder: the curve's minimum where a problem with a known curvature puts it, a sensible
suggestion, bit-exact restoration of model, optimizer and RNGs, early stop on divergence, and `workbench lr-find`."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workbench.cli import main
from workbench.training.control import TrainControl
from workbench.training.lr_find import LrFinding, lr_range_test, suggest_lr

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _regression(scale: float, seed: int = 0, n: int = 512, d: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of 32 of a least-squares problem whose inputs are exactly whitened and scaled: the loss
    0.5 * mean((w.x - y)^2) has the Hessian scale^2 * I, so plain SGD solves it in one step at lr = 1 / scale^2
    (the good rate) and diverges above about 2 / scale^2."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, d, generator=g))
    x = q * n ** 0.5 * scale
    y = x @ torch.randn(d, 1, generator=g) / scale + 0.1 * torch.randn(n, 1, generator=g)
    return [(x[i:i + 32], y[i:i + 32]) for i in range(0, n, 32)]


def _mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((model(x) - y) ** 2).mean()


def _find(scale: float, seed: int = 0, **kw: object) -> LrFinding:
    torch.manual_seed(seed)
    model = nn.Linear(8, 1, bias=False)
    return lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), _regression(scale, seed),
                         loss_fn=_mse, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_curve_minimum_and_suggestion_where_the_curvature_puts_them(scale: float) -> None:
    good = 1.0 / scale ** 2
    for seed in range(3):
        finding = _find(scale, seed)
        assert finding.stopped_early and len(finding.lrs) < 200
        # the loss is lowest in the decade above the good rate (training fails beyond ~2x it) ...
        assert good <= finding.min_loss_lr <= 10 * good, finding.min_loss_lr
        # ... and the suggestion, a tenth of that, in the decade below it
        assert finding.suggested_lr == pytest.approx(finding.min_loss_lr / 10)
        assert 0.1 * good <= finding.suggested_lr <= good
        # the curve falls by far before it rises (the smoothed one lags the batches' own losses)
        start = statistics.median(finding.raw_losses[:20])
        assert min(finding.raw_losses) < 0.01 * start and min(finding.losses) < 0.5 * start


def test_model_optimizer_and_rngs_are_restored_bit_exactly() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))) for _ in range(4)]
    for x, y in batches[:2]:   # real optimizer state (moments, step) and gradients to keep
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    optim_before = optimizer.state_dict()
    moments = {i: {k: v.clone() for k, v in s.items()} for i, s in optim_before["state"].items()}
    rng = torch.get_rng_state()

    def ce(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(m(x), y)

    finding = lr_range_test(model, optimizer, batches, loss_fn=ce, steps=60, end_lr=100.0)
    assert finding.lrs
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert [torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True)] == [True] * len(grads)
    assert not model.training and not any(m.training for m in model.modules())
    after = optimizer.state_dict()
    assert after["param_groups"] == optim_before["param_groups"]
    for i, state in after["state"].items():
        assert all(torch.equal(v, moments[i][k]) for k, v in state.items())
    torch.set_rng_state(rng)   # dropout drew from the global RNG: find_lr restores it (see the job test)


def test_stops_early_once_the_loss_diverges() -> None:
    finding = _find(1.0, end_lr=1e4, steps=200)
    assert finding.stopped_early and not finding.cancelled
    assert 20 < len(finding.lrs) < 200
    assert finding.losses[-1] > 4 * min(finding.losses)            # it stopped at the first point past 4x
    assert all(v <= 4 * min(finding.losses[:i + 1]) for i, v in enumerate(finding.losses[:-1]))
    assert all(np.isfinite(finding.losses)) and all(np.isfinite(finding.raw_losses))
    # without the 4x rule the loss overflows: a non-finite loss also ends it, and is not part of the curve
    wild = _find(1.0, end_lr=1e12, steps=300, diverge=1e300)
    assert wild.stopped_early and all(np.isfinite(wild.raw_losses)) and len(wild.lrs) < 300


def test_a_stop_request_cancels_and_still_restores() -> None:
    control = TrainControl()
    seen: list[float] = []

    def stop_after_ten(lr: float, loss: float) -> None:
        seen.append(lr)
        if len(seen) == 10:
            control.stop()

    finding = _find(1.0, control=control, on_point=stop_after_ten)
    assert finding.cancelled and not finding.stopped_early and len(finding.lrs) == 10


def test_suggestion_rule() -> None:
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert suggest_lr(lrs, [2.0, 1.5, 0.5, 0.8, 9.0]) == pytest.approx(1e-3)
    assert suggest_lr(lrs, [1.0, 1.1, 1.2, 1.3, 9.0]) is None      # the loss never fell
    assert suggest_lr(lrs[:2], [1.0, 0.5]) is None                  # too short to read
    assert suggest_lr(lrs, [2.0, 0.5, 1.0, 1.0, 9.0]) == pytest.approx(1e-4)   # never below the first rate


def test_find_lr_on_a_job_leaves_no_trace(tmp_path: Path) -> None:
    from workbench.training.config import TrainJob, recommended_config
    from workbench.training.lr_find import find_lr

    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    job = TrainJob(arch="lenet", dataset="digits", workspace=tmp_path / "ws",
                   config=recommended_config("lenet", "digits", {"device": "cpu", "batch_size": 16}),
                   arch_options={"activation": "relu"})
    stages: list[str] = []
    finding = find_lr(job, steps=40, start_lr=1e-5, end_lr=1.0, progress=lambda s, f: stages.append(s))
    assert 1 <= len(finding.lrs) <= 40 and finding.lrs[0] == pytest.approx(1e-5)
    assert "Finding the learning rate" in stages
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    assert not (tmp_path / "ws").exists()   # no run record, not even a workspace
    again = find_lr(job, steps=40, start_lr=1e-5, end_lr=1.0)
    assert again.raw_losses == finding.raw_losses   # the job's seed decides the model and the batches


def test_cli_json_contract_and_readable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["lr-find", "--arch", "lenet", "--dataset", "digits", "--device", "cpu", "--batch-size", "16",
            "--steps", "30", "--start-lr", "1e-4", "--end-lr", "10", "--workspace", str(tmp_path / "ws")]
    assert main([*argv, "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out.strip().splitlines()[-1])
    assert {"suggested_lr", "lrs", "losses"} <= set(data) and err == ""
    assert len(data["lrs"]) == len(data["losses"]) and 1 <= len(data["lrs"]) <= 30
    assert data["lrs"] == sorted(data["lrs"]) and data["lrs"][0] == pytest.approx(1e-4)
    assert data["suggested_lr"] is None or data["lrs"][0] <= data["suggested_lr"] <= data["lrs"][-1]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "SMOOTHED LOSS" in out and ("suggested learning rate" in out or "no suggestion" in out)
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("extra,needle", [
    (["--resume", "20250101-000000-abcd"], "leave out --resume"),
    (["--start-lr", "1", "--end-lr", "0.1"], "0 < start < end"),
    (["--steps", "1"], "at least 2 steps"),
    (["--set", "actvation=relu"], "actvation"),
    (["--nproc", "2"], "--nproc"),
])
def test_cli_bad_input_is_exit_2(extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lr-find", "--arch", "lenet", "--dataset", "digits", "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
