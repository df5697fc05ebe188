"""Registry API: names, families, specs, option validation, output splitting."""

from __future__ import annotations

import pytest
import torch
import torchvision

from workbench.errors import InvalidOptionError, UnknownNameError
from workbench.models import build_model, get_spec, list_families, list_models, resolve_options, split_outputs


def test_names_and_families() -> None:
    names = list_models()
    for name in ["lenet", "alexnet", "vgg", "vgg_cifar", "vgg11", "vgg13", "vgg16", "vgg19", "nin", "googlenet",
                 "resnet", "resnet18", "resnet34", "resnet20", "resnet32", "resnet44", "resnet56",
                 "resnet110"]:  # fmt: skip
        assert name in names
    tv_names = torchvision.models.list_models(module=torchvision.models)
    assert list_models("tv:*") == [f"tv:{n}" for n in tv_names]
    assert list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert list_models(family="ResNet") == ["resnet", "resnet18", "resnet34", "resnet20", "resnet32", "resnet44",
                                            "resnet56", "resnet110"]
    assert list_families() == ["Classic", "VGG", "NiN", "GoogLeNet", "ResNet", "torchvision"]
    assert names.index("lenet") < names.index("vgg16") < names.index("tv:alexnet")


def test_specs() -> None:
    spec = get_spec("vgg16")
    assert (spec.family, spec.natural_input, spec.default_classes, spec.preset_of) == ("VGG", (3, 224, 224), 1000, "vgg")
    assert spec.defaults()["block_info"] == ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
    assert get_spec("vgg_cifar").defaults()["classifier_width"] == 512
    assert get_spec("lenet").natural_input == (1, 28, 28)
    assert get_spec("tv:inception_v3").natural_input == (3, 299, 299)
    assert get_spec("alexnet").natural_input_for({"stem": "small"}) == (3, 32, 32)


def test_unknown_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: resnet18"):
        get_spec("resnet81")
    with pytest.raises(UnknownNameError, match="tv:resnet50"):
        build_model("tv:resnet5O")


@pytest.mark.parametrize(
    ("arch", "options", "match"),
    [
        ("vgg", {"block_info": ()}, "block_info.*non-empty tuple of \\(convs >= 1, channels >= 1\\)"),
        ("vgg", {"block_info": ((0, 64),)}, "block_info"),
        ("vgg", {"block_info": ((1, 64, 3),)}, "block_info"),
        ("vgg", {"block_info": "big"}, "block_info"),
        ("resnet18", {"stem": "tiny"}, "'stem'.*one of 'imagenet', 'cifar'"),
        ("resnet18", {"arch": ((2, -1),)}, "'arch'"),
        ("lenet", {"activation": "tanh"}, "'activation'.*'sigmoid', 'relu'"),
        ("vgg", {"dropout": 1.5}, "'dropout'.*\\[0, 1\\)"),
        ("vgg", {"batch_norm": 1}, "'batch_norm' of vgg: expected True or False\\.$"),
        ("googlenet", {"aux": "yes"}, "expected True or False"),
        ("resnet18", {"arch": "((2,64),"}, "'arch' of resnet18: it is not a valid Python literal.*expected a "
         "non-empty tuple of \\(blocks >= 1, channels >= 1\\) pairs, e\\.g\\. \\(\\(2, 64\\), \\(2, 128\\)\\)"),
        ("vgg", {"block_info": "((1,64)"}, "not a valid Python literal"),
        ("vgg", {"classifier_width": 1.5}, "expected an integer >= 1"),
        ("vgg", {"classifier_width": True}, "classifier_width"),
        ("googlenet", {"aux": "yes"}, "'aux'"),
        ("tv:resnet18", {"weights": "IMAGENET"}, "'weights'.*None, 'DEFAULT'"),
        ("vgg", {"blocks": ((1, 8),)}, "Unknown option 'blocks'.*block_info"),
    ],
)
def test_invalid_options(arch: str, options: dict, match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        resolve_options(arch, options)


def test_resolve_options_normalises() -> None:
    opts = resolve_options("vgg", {"block_info": [[1, 8], [2, 16]], "dropout": 0})
    assert opts["block_info"] == ((1, 8), (2, 16)) and opts["dropout"] == 0.0 and opts["batch_norm"] is False


def test_bad_shape_and_classes() -> None:
    with pytest.raises(InvalidOptionError, match="C,H,W"):
        build_model("lenet", input_shape=(28, 28))
    with pytest.raises(InvalidOptionError, match="classes"):
        build_model("lenet", num_classes=0)


def test_split_outputs() -> None:
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    assert split_outputs(a)[0] is a and split_outputs(a)[1] == []
    main, aux = split_outputs((a, b, b))
    assert main is a and len(aux) == 2
    out = torchvision.models.GoogLeNetOutputs(a, b, None)
    main, aux = split_outputs(out)
    assert main is a and aux == [b]


@pytest.mark.parametrize("stem", ["imagenet", "small"])
def test_alexnet_too_small_hint_and_edge(stem: str) -> None:
    from workbench.errors import InputTooSmallError
    from workbench.models import summarize
    from workbench.models.classic import ALEXNET_MIN_INPUT

    edge = ALEXNET_MIN_INPUT[stem]
    assert summarize("alexnet", input_shape=(3, edge, edge), options={"stem": stem}).totals.total_params > 0
    with pytest.raises(InputTooSmallError) as caught:
        build_model("alexnet", input_shape=(3, edge - 1, edge - 1), options={"stem": stem, "hidden": 8})
    message = str(caught.value)
    assert message.endswith(f"an input of at least {edge} px.")
    assert ("`--set stem=small`, for 28-32 px images" in message) == (stem == "imagenet")
    assert "small-input variant" not in message  # the generic advice is replaced by the architecture's own


def test_generic_too_small_hint() -> None:
    from workbench.errors import InputTooSmallError

    assert get_spec("lenet").small_input_hint() == ""
    with pytest.raises(InputTooSmallError, match=r"use a larger input or a small-input variant\.$"):
        build_model("lenet", input_shape=(1, 4, 4))


def test_option_describe() -> None:
    options = {o.name: o for o in get_spec("vgg").options}
    assert options["batch_norm"].describe() == "True or False"
    assert options["dropout"].describe() == "a number in [0, 1)"
    assert get_spec("resnet18").options[1].describe() == "one of 'imagenet', 'cifar'"
    # "stem=cifar" style bare words still reach the choices check, not the literal check
    with pytest.raises(InvalidOptionError, match="expected one of 'imagenet', 'cifar'"):
        resolve_options("resnet18", {"stem": "(cifar"})


def test_torchvision_zoo_loads_only_when_asked_for() -> None:
    # Importing torchvision costs ~2 s; a lecture model's summary or training must not pay it.
    import subprocess
    import sys

    code = (
        "import sys, workbench.models as m; m.summarize('lenet'); m.build_model('resnet18');"
        "print('torchvision' in sys.modules);"
        "print(m.get_spec('tv:resnet18').family, 'torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "torchvision", "True"]
