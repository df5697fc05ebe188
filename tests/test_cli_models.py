"""`workbench list` and `workbench summary`: output, JSON, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_list_text(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "VGG:" in out and "vgg_cifar" in out and "(preset of vgg)" in out
    assert "block_info = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))" in out
    assert "tv:resnet50" in out and "Datasets:" in out


def test_list_json(capsys) -> None:
    assert main(["list", "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    archs = {a["name"]: a for a in data["architectures"]}
    assert archs["vgg"]["presets"] == ["vgg_cifar", "vgg11", "vgg13", "vgg16", "vgg19"]
    assert archs["resnet18"]["family"] == "ResNet" and archs["resnet18"]["preset_of"] == "resnet"
    stem = next(o for o in archs["resnet18"]["options"] if o["name"] == "stem")
    assert stem == {"name": "stem", "default": "imagenet", "help": stem["help"], "choices": ["imagenet", "cifar"],
                    "allowed": "one of 'imagenet', 'cifar'"}
    # Options without choices state their rule.
    vgg = {o["name"]: o for o in archs["vgg"]["options"]}
    assert vgg["block_info"]["choices"] is None
    assert vgg["block_info"]["allowed"].startswith("a non-empty tuple of (convs >= 1, channels >= 1) pairs")
    assert (vgg["batch_norm"]["allowed"], vgg["dropout"]["allowed"]) == ("True or False", "a number in [0, 1)")
    assert vgg["classifier_width"]["allowed"] == "an integer >= 1"
    assert all(o["allowed"] for a in data["architectures"] for o in a["options"])
    assert archs["tv:inception_v3"]["natural_input"] == [3, 299, 299]
    from workbench.data import list_datasets

    assert [d["name"] for d in data["datasets"]] == list_datasets()


def test_summary_table(capsys) -> None:
    assert main(["summary", "vgg_cifar", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "Conv2d: 3-1" in out and "1,835,008" in out and "Total params: 9,750,922" in out


def test_summary_json(capsys) -> None:
    assert main(["summary", "nin", "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    assert data["arch"] == "nin" and data["input"] == [3, 32, 32]
    assert (data["total_params"], data["trainable_params"], data["mult_adds"]) == (1_589_926, 1_589_926, 159_426_198)
    conv = data["layers"][3]
    for key in ("name", "type", "depth", "kernel", "input_shape", "output_shape", "params", "mult_adds"):
        assert key in conv
    assert (conv["type"], conv["kernel"], conv["params"], conv["mult_adds"]) == ("Conv2d", [3, 3], 2_688, 2_752_512)
    assert data["parameters"][0]["name"] == "model.0.0.weight"


def test_summary_options_input_classes(capsys) -> None:
    args = ["summary", "vgg", "--input", "1,28,28", "--classes", "5", "--set", "block_info=((2,64),(2,128))",
            "--set", "batch_norm=True", "--json"]  # fmt: skip
    assert main(args) == 0
    data = _last_json(capsys.readouterr().out)
    assert data["input"] == [1, 28, 28] and data["layers"][0]["output_shape"] == [1, 5]
    assert data["options"]["block_info"] == [[2, 64], [2, 128]]
    assert sum(1 for layer in data["layers"] if layer["type"] == "BatchNorm2d") == 4
    assert main(["summary", "resnet18", "--set", "stem=cifar", "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    assert data["layers"][3]["kernel"] == [3, 3] and data["total_params"] == 11_184_650 - (9_472 - 1_792)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["summary", "resnt18"], "Did you mean: resnet18"),
        (["summary", "alexnet", "--input", "3,32,32"], "too small"),
        (["summary", "alexnet", "--input", "3,32,32"], "`--set stem=small`, for 28-32 px images) or an input of at least 65 px"),
        (["summary", "tv:maxvit_t", "--input", "3,32,32"], "tv:maxvit_t cannot be built for a 3x32x32 input"),
        (["summary", "tv:vit_b_16", "--input", "3,30,30"], "multiples of 16"),
        (["summary", "vgg", "--set", "block_info=()"], "block_info"),
        (["summary", "vgg", "--set", "stem=cifar"], "Unknown option 'stem'"),
        (["summary", "resnet18", "--set", "stem=tiny"], "'stem'"),
        (["summary", "lenet", "--input", "28,28"], "C,H,W"),
        (["summary", "lenet", "--classes", "0"], "classes"),
        (["summary", "lenet", "--set", "novalue"], "KEY=VALUE"),
        (["summary", "resnet18", "--set", "arch=((2,64),"], "not a valid Python literal (check its brackets and "
         "commas); expected a non-empty tuple of (blocks >= 1, channels >= 1) pairs, e.g. ((2, 64), (2, 128))."),
        (["summary", "googlenet", "--set", "aux=1"], "'aux' of googlenet: expected True or False."),
        (["summary", "lenet", "--depth", "-1"], "--depth"),
        (["summary", "lenet", "--classes", "ten"], "invalid int value"),
    ],
)
def test_bad_input_exit_2(capsys, args: list[str], needle: str) -> None:
    if "ten" in args:  # argparse rejects it: SystemExit carrying code 2
        with pytest.raises(SystemExit) as stopped:
            main(args)
        assert stopped.value.code == 2
    else:
        assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert captured.out == ""


def test_real_process() -> None:
    ok = subprocess.run([sys.executable, "-m", "workbench", "summary", "lenet", "--json"],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert _last_json(ok.stdout)["total_params"] == 61_706
    bad = subprocess.run([sys.executable, "-m", "workbench", "summary", "alexnet", "--input", "3,32,32"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("workbench: error: Input 3x32x32 is too small for alexnet")
    assert len(bad.stderr.strip().splitlines()) == 1
