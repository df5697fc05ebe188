"""Resume: 2 epochs straight == 1 epoch + resume + 1 epoch (bitwise), also from a mid-epoch stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.errors import UnknownNameError
from workbench.runs import RunStore
from workbench.training import trainer as trainer_mod
from workbench.training.callbacks import Callback
from workbench.training.checkpoint import load_checkpoint
from workbench.training.config import TrainConfig, TrainJob
from workbench.training.control import TrainControl
from workbench.training.events import EpochMetrics, FitStart, StepMetrics
from workbench.training.job import RunCompletedError, run_training

# LeNet on digits with dropout-free but augmented, shuffled batches: every RNG stream matters.
CFG = TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=0.003, max_batches=6, augment=True,
                  crop_padding=2, schedule="onecycle", deterministic=True, device="cpu", seed=3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _job(ws: Path, **kw: object) -> TrainJob:
    return TrainJob(arch="lenet", dataset="digits", config=CFG, workspace=ws, **kw)  # type: ignore[arg-type]


def _params(ws: Path, run_id: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(RunStore(ws).run_dir(run_id) / "last.pt")


def _assert_same(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])) for k in sa)
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    ws = tmp_path_factory.mktemp("straight")
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count as the resumed runs (one_torch_thread), for bitwise equality
    try:
        result = run_training(_job(ws))
    finally:
        torch.set_num_threads(saved)
    assert result.status == "completed"
    return ws, result.run_id, result


class StopAt(Callback):
    def __init__(self, control: TrainControl, epoch: int | None = None, step: int | None = None) -> None:
        self.control, self.epoch, self.step = control, epoch, step

    def on_epoch_end(self, e: EpochMetrics) -> None:
        if e.epoch == self.epoch:
            self.control.stop()

    def on_train_batch_end(self, e: StepMetrics) -> None:
        if self.step is not None and e.step >= self.step:
            self.control.stop()


def test_resume_after_one_epoch_is_bitwise_equal(tmp_path: Path, straight: tuple,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.models

    ws0, run0, result0 = straight
    control = TrainControl()
    first = run_training(_job(tmp_path), [StopAt(control, epoch=1)], control)
    assert first.status == "stopped" and first.epochs_completed == 1
    assert RunStore(tmp_path).get_run(first.run_id).status == "stopped"
    build, draws = workbench.models.build_model, []

    def recording_build(*args: Any, **kwargs: Any) -> Any:
        draws.append(kwargs.get("initialize_weights", True))
        return build(*args, **kwargs)

    monkeypatch.setattr(workbench.models, "build_model", recording_build)
    second = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
    assert second.status == "completed" and second.epochs_completed == 2
    assert draws == [False]         # the checkpoint's weights replace any draw: none is made
    _assert_same(_params(tmp_path, first.run_id), _params(ws0, run0))
    assert second.val_accuracy == result0.val_accuracy
    assert second.train_loss == pytest.approx(result0.train_loss, rel=1e-6)  # summed at other sync points
    record = RunStore(tmp_path).get_run(first.run_id)
    assert record.status == "completed" and record.epochs_completed == 2
    assert [e for e, _, _ in RunStore(tmp_path).metrics(first.run_id, ["val_accuracy"])["val_accuracy"]] == [1, 2]


def test_a_run_recorded_before_the_init_option_resumes_as_pytorch_init(tmp_path: Path) -> None:
    """Such a run (recorded without `init`) was initialised by PyTorch's default: it continues, and says it
    continues, as init=pytorch, not as today's default."""
    import sqlite3

    from workbench.training import checkpoint as ckpt

    control = TrainControl()
    first = run_training(_job(tmp_path), [StopAt(control, epoch=1)], control)
    store = RunStore(tmp_path)
    path = store.run_dir(first.run_id) / "last.pt"
    state = load_checkpoint(path)
    old = {k: v for k, v in ckpt.decode_options(state["arch_options"]).items() if k != "init"}
    ckpt.save_checkpoint(path, {**state, "arch_options": ckpt.encode_options(old)})
    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE runs SET arch_options = ? WHERE id = ?", (json.dumps(old), first.run_id))
    starts: list[FitStart] = []

    class Seen(Callback):
        def on_fit_start(self, e: FitStart) -> None:
            starts.append(e)

    second = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id), [Seen()])
    assert second.status == "completed" and starts[0].arch_options["init"] == "pytorch"


def test_resume_from_mid_epoch_stop_is_bitwise_equal(tmp_path: Path, straight: tuple,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws0, run0, result0 = straight
    monkeypatch.setattr(trainer_mod, "STEP_EMIT_INTERVAL", 0.0)
    control = TrainControl()
    first = run_training(_job(tmp_path), [StopAt(control, step=9)], control)
    assert first.status == "stopped" and first.epochs_completed == 1
    state = _params(tmp_path, first.run_id)
    assert (state["epoch"], state["batch"], state["step"]) == (1, 3, 9)
    second = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
    assert second.status == "completed"
    _assert_same(_params(tmp_path, first.run_id), _params(ws0, run0))
    assert second.train_loss == pytest.approx(result0.train_loss, rel=1e-6)


def test_resume_refuses_completed_and_unknown_runs(tmp_path: Path, straight: tuple) -> None:
    ws0, run0, _ = straight
    with pytest.raises(RunCompletedError, match="already completed"):
        run_training(TrainJob(arch="", dataset="", workspace=ws0, resume_run_id=run0))
    with pytest.raises(UnknownNameError, match="No run"):
        run_training(TrainJob(arch="", dataset="", workspace=ws0, resume_run_id="20990101-000000-beef"))


def test_resume_restores_the_global_rng_for_dropout(tmp_path: Path) -> None:
    """AlexNet's dropout draws from the global RNG: without restoring it, the resumed run differs."""
    cfg = CFG.replace(max_batches=3, batch_size=16, augment=False)
    job = TrainJob(arch="alexnet", arch_options={"stem": "small", "hidden": 32, "dropout": 0.5}, dataset="digits",
                   config=cfg, workspace=tmp_path / "a")
    straight = run_training(job)
    assert straight.status == "completed"
    control = TrainControl()
    first = run_training(TrainJob(**{**vars(job), "workspace": tmp_path / "b"}), [StopAt(control, epoch=1)], control)
    assert first.status == "stopped" and first.epochs_completed == 1
    torch.manual_seed(12345)  # the resuming process's RNG is in some other state
    second = run_training(TrainJob(arch="", dataset="", workspace=tmp_path / "b", resume_run_id=first.run_id))
    assert second.status == "completed"
    _assert_same(_params(tmp_path / "b", first.run_id), _params(tmp_path / "a", straight.run_id))
