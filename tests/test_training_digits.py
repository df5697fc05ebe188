"""Learning is real: seeded CPU runs on the bundled digits reach >= 95 % validation accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.runs import RunStore
from workbench.training.config import TrainJob, recommended_config
from workbench.training.job import run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_lenet_learns_digits(tmp_path: Path) -> None:
    cfg = recommended_config("lenet", "digits", {"epochs": 5, "device": "cpu"})
    result = run_training(TrainJob(arch="lenet", dataset="digits", config=cfg, workspace=tmp_path))
    assert result.status == "completed" and result.epochs_completed == 5
    assert result.checkpoint and result.checkpoint.endswith("last.pt")
    assert result.val_accuracy >= 0.95
    store = RunStore(tmp_path)
    record = store.get_run(result.run_id)
    assert record.status == "completed" and record.epochs_completed == 5
    assert record.best_val_accuracy == pytest.approx(result.best_val_accuracy)
    metrics = store.metrics(result.run_id)
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_second"):
        assert [e for e, _, _ in metrics[name]] == [1, 2, 3, 4, 5]
    assert (record.folder / "last.pt").is_file() and (record.folder / "best.pt").is_file()


@pytest.mark.slow  # ~20-190 s on 2 cores; the default suite trains ResNet-20 on letters (test_default_recipes)
def test_resnet18_cifar_stem_learns_digits(tmp_path: Path) -> None:
    cfg = recommended_config("resnet18", "digits", {"epochs": 3, "device": "cpu", "image_size": 8,
                                                    "batch_size": 64, "schedule": "onecycle", "lr": 0.05})
    job = TrainJob(arch="resnet18", dataset="digits", arch_options={"stem": "cifar"}, config=cfg,
                   workspace=tmp_path)
    result = run_training(job)
    assert result.status == "completed" and result.val_accuracy >= 0.95


@pytest.mark.slow
def test_lenet_learns_digits_under_torch_compile_and_resumes(tmp_path: Path) -> None:
    """compile is opt-in: the compiled model learns, its checkpoint holds the plain module's keys, and resumes."""
    from workbench.training.callbacks import Callback
    from workbench.training.checkpoint import load_checkpoint
    from workbench.training.control import TrainControl

    control = TrainControl()

    class StopAfterEpoch2(Callback):
        def on_epoch_end(self, e: object) -> None:
            if getattr(e, "epoch", 0) == 2:
                control.stop()

    from torch._dynamo.utils import counters

    counters.clear()
    cfg = recommended_config("lenet", "digits", {"epochs": 4, "device": "cpu", "compile": True})
    first = run_training(TrainJob(arch="lenet", dataset="digits", config=cfg, workspace=tmp_path),
                         [StopAfterEpoch2()], control)
    assert first.status == "stopped" and first.epochs_completed == 2
    assert counters["aot_autograd"]["ok"] >= 1  # the training step really went through the compiler
    weights = load_checkpoint(first.checkpoint)["model"]
    assert weights and not any(k.startswith("_orig_mod") for k in weights)
    result = run_training(TrainJob(arch="", dataset="", workspace=tmp_path, resume_run_id=first.run_id))
    assert result.status == "completed" and result.epochs_completed == 4
    assert result.val_accuracy >= 0.95 and result.images_per_second > 0
