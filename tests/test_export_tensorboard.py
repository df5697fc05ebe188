"""TensorBoard export: a stored run's scalars and hyper-parameters read back with TensorBoard's own event reader."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from trained_run import train_lenet_digits

from workbench.export import ExportError, export_run
from workbench.runs import RunStore

pytest.importorskip("tensorboard")


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workspace = tmp_path_factory.mktemp("ws")
    return workspace, train_lenet_digits(workspace, epochs=2)


def _read(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_scalars_and_hparams_read_back(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    workspace, run_id = stored_run
    result = export_run(run_id, format="tensorboard", workspace=workspace, out=tmp_path / "logs")
    assert result.path == tmp_path / "logs" / run_id and result.checkpoint is None
    assert result.files and all(p.name.startswith("events.out.tfevents") for p in result.files)
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [run_id]   # no temporary folder left
    store = RunStore(workspace)
    metrics, record = store.metrics(run_id), store.get_run(run_id)
    store.close()

    acc = _read(result.path)
    tags = set(acc.Tags()["scalars"])
    assert {"epoch/train_loss", "epoch/val_accuracy", "epoch/lr", "step/loss", "step/accuracy", "step/lr",
            "run/best_val_accuracy"} <= tags
    for name, rows in metrics.items():
        tag = f"step/{name[5:]}" if name.startswith("step_") else f"epoch/{name}"
        events = acc.Scalars(tag)
        expected = [(step if name.startswith("step_") else epoch, value) for epoch, step, value in rows]
        assert [e.step for e in events] == [s for s, _ in expected], tag
        assert [e.value for e in events] == pytest.approx([v for _, v in expected], rel=1e-6), tag
    assert [e.step for e in acc.Scalars("epoch/val_accuracy")] == [1, 2]
    (best,) = acc.Scalars("run/best_val_accuracy")
    assert best.value == pytest.approx(record.best_val_accuracy) and best.step == 2
    assert result.details["scalars"] == sum(len(r) for r in metrics.values()) + 1

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["arch"].string_value == "lenet" and hp["dataset"].string_value == "digits"
    assert hp["arch.activation"].string_value == record.arch_options["activation"]
    assert hp["lr"].number_value == pytest.approx(record.config["lr"])
    assert hp["batch_size"].number_value == record.config["batch_size"]
    assert hp["optimizer"].string_value == record.config["optimizer"]
    assert hp["augment"].bool_value is record.config["augment"]
    assert "grad_clip" not in hp                       # None values are left out
    assert start.session_start_info.start_time_secs == pytest.approx(record.created_at)
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    assert end.session_end_info.status == api_pb2.STATUS_SUCCESS
    assert "_hparams_/experiment" not in content       # TensorBoard builds the table from every run in the log dir


def test_existing_run_folder_is_refused_unless_overwrite(stored_run: tuple[Path, str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, run_id = stored_run
    monkeypatch.chdir(tmp_path)
    first = export_run(run_id, format="tensorboard", workspace=workspace)   # default log dir: ./tensorboard
    assert first.path == tmp_path / "tensorboard" / run_id
    with pytest.raises(ExportError, match=r"already exists.*--force"):
        export_run(run_id, format="tensorboard", workspace=workspace)
    again = export_run(run_id, format="tensorboard", workspace=workspace, overwrite=True)
    assert again.path == first.path and len(again.files) == 1
    assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == [run_id]
    assert not math.isnan(_read(again.path).Scalars("epoch/val_loss")[-1].value)


def test_a_diverged_run_exports_its_nan_and_failure(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    store = RunStore(tmp_path / "ws")
    run_id = store.create_run(arch="resnet18", arch_options={"arch": [[2, 64], [2, 128]]}, dataset="fake",
                              config={"epochs": 3, "lr": 10.0, "grad_clip": None}, device="cpu",
                              dataset_options={"train_size": 100})
    store.log_metrics(run_id, [(1, 0, "train_loss", 2.0, 1.0), (2, 0, "train_loss", float("nan"), 2.0),
                               (1, 7, "step_loss", 2.5, 1.0)])
    store.update_run(run_id, status="diverged", epochs_completed=2)
    store.close()
    result = export_run(run_id, format="tensorboard", workspace=tmp_path / "ws", out=tmp_path / "logs")
    acc = _read(result.path)
    values = [e.value for e in acc.Scalars("epoch/train_loss")]
    assert values[0] == 2.0 and math.isnan(values[1])
    assert [e.step for e in acc.Scalars("step/loss")] == [7]
    content = acc.PluginTagToContent("hparams")
    hp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info.hparams
    assert hp["arch.arch"].string_value == "[[2,64],[2,128]]" and hp["data.train_size"].number_value == 100
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    assert end.session_end_info.status == api_pb2.STATUS_FAILURE
