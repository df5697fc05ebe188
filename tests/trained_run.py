"""A short real run shared by the export and runs-table tests: LeNet on the bundled digits, one epoch, CPU."""

from __future__ import annotations

from pathlib import Path


def train_lenet_digits(workspace: Path, *, epochs: int = 1, name: str = "lenet-digits") -> str:
    """Train LeNet on digits for `epochs` epochs on the CPU in `workspace`; returns the run id."""
    import torch

    from workbench.training.config import TrainJob, recommended_config
    from workbench.training.job import run_training

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier than two threads on a busy 2-core machine
    try:
        config = recommended_config("lenet", "digits", {"epochs": epochs, "device": "cpu"})
        result = run_training(TrainJob(arch="lenet", dataset="digits", config=config, workspace=workspace,
                                       name=name))
    finally:
        torch.set_num_threads(threads)
    assert result.status == "completed", result.message
    return str(result.run_id)
