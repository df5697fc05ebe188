"""run_training's checks before a run exists: out-of-memory while building, stop while loading."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench.models as models
from workbench.training.config import TrainConfig, TrainJob
from workbench.training.control import TrainControl
from workbench.training.job import ModelOutOfMemoryError, StoppedBeforeStartError, is_out_of_memory, run_training

CFG = TrainConfig(epochs=1, max_batches=2, device="cpu")


def test_out_of_memory_while_building_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(*args: object, **kw: object) -> None:
        raise RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")

    monkeypatch.setattr(models, "build_model", oom)
    with pytest.raises(ModelOutOfMemoryError, match="Out of memory building lenet"):
        run_training(TrainJob(arch="lenet", dataset="digits", config=CFG, workspace=tmp_path / "ws"))
    assert not (tmp_path / "ws").exists()
    assert is_out_of_memory(RuntimeError("CUDA out of memory.")) and not is_out_of_memory(RuntimeError("shape"))


def test_stop_during_loading_creates_no_run(tmp_path: Path) -> None:
    control = TrainControl()

    def progress(text: str, fraction: float) -> None:
        if text.startswith("Loading"):
            control.stop()

    with pytest.raises(StoppedBeforeStartError):
        run_training(TrainJob(arch="lenet", dataset="digits", config=CFG, workspace=tmp_path / "ws"),
                     control=control, progress=progress)
    assert not (tmp_path / "ws").exists()
