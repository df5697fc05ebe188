"""A TrainJob spelled out as `workbench train` arguments parses back to the same job (the app's --nproc launch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import build_parser
from workbench.cli.train import job_from_args
from workbench.training.config import TrainJob, recommended_config
from workbench.training.launcher import job_argv


@pytest.mark.parametrize("job", [
    TrainJob(arch="vgg", dataset="fake", arch_options={"block_info": ((1, 8), (1, 16)), "dropout": 0.25},
             config=recommended_config("vgg", "fake", {"epochs": 3, "lr": 0.003, "grad_clip": None,
                                                        "augment": False, "max_batches": 7}),
             dataset_options={"train_size": 64, "image_shape": (1, 16, 16)}, data_root=Path("/data/x"),
             workspace=Path("/tmp/ws"), name="a b", input_override=(1, 32, 32), num_classes_override=12),
    TrainJob(arch="lenet", dataset="imagefolder", config=recommended_config("lenet", "imagefolder"),
             data_root=Path("/imgs"), download=False),
    TrainJob(arch="", dataset="", resume_run_id="20250101-000000-abcd", resume_from="best",
             resume_overrides={"device": "cpu", "amp": "off"}, workspace=Path("/tmp/ws")),
])
def test_a_job_round_trips_through_its_command_line(job: TrainJob) -> None:
    back = job_from_args(build_parser().parse_args(job_argv(job)))
    assert back == job
