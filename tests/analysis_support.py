"""One short trained run shared by the analysis tests (LeNet on digits, 2 epochs, CPU): trained once per session.

conftest.py loads this module as a plugin, so the `run`/`restored`/`splits` fixtures below are everyone's; the module-level cache makes them share one run.
Tests must not modify the run (they may add history rows only to their own copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_CACHE: dict[str, LenetRun] = {}


@dataclass(frozen=True)
class LenetRun:
    workspace: Path
    run_id: str
    best_val_accuracy: float
    last_val_accuracy: float
    last_val_loss: float


def lenet_digits_run(factory: pytest.TempPathFactory) -> LenetRun:
    """Train (once) a 2-epoch LeNet digits run with one torch thread; its workspace is shared, read-only."""
    if "run" not in _CACHE:
        import torch

        from workbench.runs import RunStore
        from workbench.training.config import TrainJob, recommended_config
        from workbench.training.job import run_training

        workspace = factory.mktemp("analysis-ws")
        saved = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            cfg = recommended_config("lenet", "digits", {"epochs": 2, "device": "cpu", "deterministic": True})
            result = run_training(TrainJob(arch="lenet", dataset="digits", config=cfg, workspace=workspace))
        finally:
            torch.set_num_threads(saved)
        assert result.status == "completed", result.message
        with RunStore(workspace) as store:
            record = store.get_run(result.run_id)
            metrics = store.metrics(result.run_id, ["val_accuracy", "val_loss"])
        assert record.best_val_accuracy is not None
        _CACHE["run"] = LenetRun(workspace=workspace, run_id=result.run_id,
                                 best_val_accuracy=record.best_val_accuracy,
                                 last_val_accuracy=metrics["val_accuracy"][-1][2],
                                 last_val_loss=metrics["val_loss"][-1][2])
    return _CACHE["run"]


# Fixtures for every test module (conftest.py loads this file as a plugin); module-scoped, one run per session.
@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> LenetRun:
    """The shared LeNet digits run."""
    return lenet_digits_run(tmp_path_factory)


@pytest.fixture(scope="module")
def restored(run: LenetRun) -> Any:
    """The run restored from its checkpoints (a RestoredRun)."""
    from workbench.training.restore import restore_run

    return restore_run(run.run_id, workspace=run.workspace)


@pytest.fixture(scope="module")
def splits(restored: Any) -> Any:
    """The run's data splits, loaded as recorded."""
    return restored.load_splits()
