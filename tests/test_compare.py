"""`workbench compare`: rows equal the summaries, the JSON contract, --set per architecture, workspace runs,
measured speed (a tiny duration) and one-line exit-2 errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.analysis.compare import compare_architectures, measure_throughput
from workbench.cli import main
from workbench.models import summarize

_ROW_KEYS = {"arch", "options", "params", "mult_adds", "params_mb", "activations_mb", "conv_layers", "linear_layers",
             "receptive_field", "train_images_per_second", "infer_images_per_second", "best_val_accuracy", "runs"}  # fmt: skip


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize(("arch", "options", "convs", "linears"), [
    ("vgg_cifar", {}, 8, 3), ("nin", {}, 12, 0), ("googlenet", {}, 59, 5), ("resnet20", {"residual": False}, 19, 1),
])  # fmt: skip
def test_rows_equal_the_summary(arch: str, options: dict, convs: int, linears: int, tmp_path: Path) -> None:
    (row,) = compare_architectures([arch], options={arch: options}, workspace=tmp_path / "none").rows
    s = summarize(arch, options=options)
    assert (row.params, row.mult_adds, row.params_mb, row.activations_mb) == (
        s.totals.total_params, s.totals.mult_adds, s.totals.params_mb, s.totals.forward_backward_mb)
    assert (row.input, row.classes, row.options) == (s.input_shape, s.num_classes, s.options)
    assert row.receptive_field == s.layers[0].receptive_field is not None
    assert (row.conv_layers, row.linear_layers) == (convs, linears)
    assert sum(1 for r in s.layers if r.type == "Conv2d") == convs  # each conv module runs once here
    assert row.train_images_per_second is None and row.runs is None


def test_cli_json_contract_natural_inputs_and_no_workspace_created(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "absent"
    assert main(["compare", "lenet", "vgg16", "--json", "--workspace", str(workspace)]) == 0
    data = _json(capsys)
    assert (data["input"], data["classes"]) == (None, None)
    lenet, vgg16 = data["rows"]
    assert set(lenet) >= _ROW_KEYS and (lenet["arch"], vgg16["arch"]) == ("lenet", "vgg16")
    assert (lenet["input"], lenet["classes"], vgg16["input"], vgg16["classes"]) == ([1, 28, 28], 10, [3, 224, 224], 1000)
    assert (lenet["params"], vgg16["params"], lenet["receptive_field"], vgg16["receptive_field"]) == (
        61_706, 138_357_544, 32, 212 + 6 * 32)  # vgg16: pool5 (212) then flatten of the 7x7 map at jump 32
    assert all(lenet[k] is None for k in ("train_images_per_second", "infer_images_per_second",
                                          "best_val_accuracy", "runs"))  # fmt: skip
    assert not workspace.exists()


def test_cli_shared_input_classes_and_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", "resnet20", "resnet56", "nin", "--input", "3,64,64", "--classes", "100", "--json",
            "--set", "resnet20:residual=False", "--set", "nin:head=fc", "--workspace", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    data = _json(capsys)
    assert (data["input"], data["classes"]) == ([3, 64, 64], 100)
    r20, r56, nin = data["rows"]
    assert (r20["options"]["residual"], r56["options"]["residual"], nin["options"]["head"]) == (False, True, "fc")
    assert nin["params"] == summarize("nin", input_shape=(3, 64, 64), num_classes=100,
                                      options={"head": "fc"}).totals.total_params  # fmt: skip
    assert all(r["input"] == [3, 64, 64] and r["classes"] == 100 for r in data["rows"])


def test_text_table_is_aligned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "lenet", "resnet20", "--set", "resnet20:residual=False", "--workspace", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert lines[0].split()[:3] == ["ARCH", "INPUT", "PARAMS"] and " RF " in lines[0]
    assert lines[2].startswith("resnet20 (residual=False)")
    params_end = lines[0].index("PARAMS") + len("PARAMS")
    assert lines[1][:params_end].endswith("61,706") and lines[2][:params_end].endswith("269,722")


def test_measure_with_a_tiny_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str], one_torch_thread: None) -> None:
    argv = ["compare", "lenet", "--measure", "--device", "cpu", "--duration", "0.05", "--json",
            "--workspace", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    (row,) = _json(capsys)["rows"]
    assert row["train_images_per_second"] > 0 and row["infer_images_per_second"] > 0
    train, infer = measure_throughput("googlenet", input_shape=(3, 32, 32), num_classes=10, device="cpu",
                                      batch_size=4, duration_s=0.01)  # aux heads in the training step
    assert train > 0 and infer > 0


def test_workspace_runs_of_the_same_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.runs import RunStore

    store = RunStore(tmp_path)
    for arch, options, best in (("resnet20", {}, 0.8), ("resnet20", {"stem": "cifar"}, 0.6),
                                ("resnet20", {"residual": False}, 0.5), ("lenet", {}, 0.9),
                                ("resnet20", {}, None)):  # fmt: skip
        run_id = store.create_run(arch=arch, arch_options=options, dataset="fake", config={}, device="cpu")
        store.update_run(run_id, status="completed", best_val_accuracy=best)
    store.close()
    assert main(["compare", "resnet20", "nin", "--json", "--workspace", str(tmp_path)]) == 0
    resnet20, nin = _json(capsys)["rows"]
    # {"stem": "cifar"} is resnet20's default, so that run is the same network.
    assert (resnet20["best_val_accuracy"], resnet20["runs"]) == (0.8, 3)
    assert (nin["best_val_accuracy"], nin["runs"]) == (None, None)
    assert main(["compare", "resnet20", "--set", "resnet20:residual=False", "--json", "--workspace", str(tmp_path)]) == 0
    (plain,) = _json(capsys)["rows"]
    assert (plain["best_val_accuracy"], plain["runs"]) == (0.5, 1)


@pytest.mark.parametrize(("argv", "message"), [
    (["resnt20"], "Did you mean: resnet20"),
    (["resnet20", "--set", "resnet20:residual"], "KEY=VALUE"),
    (["lenet", "--set", "vgg:dropout=0.1"], "'vgg', which is not among the compared architectures (lenet)"),
    (["resnet20", "--set", "resnet20:shortcut=B"], "'shortcut'"),
    (["lenet", "nin", "--set", "pool=max"], "Unknown option 'pool' for nin"),
    (["lenet", "--input", "3,32"], "--input must be three positive whole numbers"),
    (["lenet", "--classes", "0"], "--classes must be a positive integer"),
    (["vgg_cifar", "--input", "3,8,8"], "too small"),
])  # fmt: skip
def test_bad_input_is_exit_2_with_one_line(argv: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *argv, "--workspace", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "w").exists()
