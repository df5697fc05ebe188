"""Preset totals and layer layouts: VGG 11/13/19 and ResNet-34 at ImageNet size, LeNet's defaults, NiN-224."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from workbench.models import summarize


def _meta_torchvision(name: str) -> nn.Module:
    with torch.device("meta"):  # shapes only: no weights allocated, no init compute
        return getattr(torchvision.models, name)(num_classes=1000)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("arch", "total"),
    [("vgg11", 132_863_336), ("vgg13", 133_047_848), ("vgg16", 138_357_544), ("vgg19", 143_667_240)],
)
def test_vgg_preset_totals_match_torchvision(arch: str, total: int) -> None:
    s = summarize(arch, input_shape=(3, 224, 224), num_classes=1000)
    assert s.totals.total_params == total
    # Same layout as torchvision's VGG (biases on every conv there too), so the counts agree exactly.
    assert _count(_meta_torchvision(arch)) == total
    assert sum(1 for r in s.layers if r.type == "Conv2d") == {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}[arch]


def test_resnet34_total_against_torchvision() -> None:
    s = summarize("resnet34", input_shape=(3, 224, 224), num_classes=1000)
    assert s.totals.total_params == 21_804_392
    # The lecture's Residual differs from torchvision's BasicBlock in two counted ways: every conv has a
    # bias, and the 1x1 projection has no batch norm after it.
    tv = _meta_torchvision("resnet34")
    conv_biases = sum(m.out_channels for m in tv.modules() if isinstance(m, nn.Conv2d))
    projection_bn = sum(_count(block.downsample[1]) for block in tv.modules()
                        if isinstance(block, torchvision.models.resnet.BasicBlock) and block.downsample is not None)  # fmt: skip
    assert _count(tv) + conv_biases - projection_bn == 21_804_392
    assert sum(1 for r in s.layers if r.type == "Residual") == 3 + 4 + 6 + 3


def test_lenet_default_layers_are_sigmoid_and_average_pooling() -> None:
    leaves = [r.type for r in summarize("lenet").layers if r.is_leaf]
    assert leaves == ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d", "Flatten",
                      "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]  # fmt: skip
    relu = [r.type for r in summarize("lenet", options={"activation": "relu", "pool": "max"}).layers if r.is_leaf]
    assert relu.count("ReLU") == 4 and relu.count("MaxPool2d") == 2 and "Sigmoid" not in relu


def test_nin_224_variant_kernels() -> None:
    s = summarize("nin", options={"stem": "imagenet"})
    assert s.input_shape == [3, 224, 224]
    spatial = [(r.kernel, r.output_shape[1:]) for r in s.layers if r.type == "Conv2d" and r.kernel != [1, 1]]
    assert spatial == [([11, 11], [96, 54, 54]), ([5, 5], [256, 26, 26]), ([3, 3], [384, 12, 12]),
                       ([3, 3], [10, 5, 5])]  # fmt: skip
    cifar = [r.kernel for r in summarize("nin").layers if r.type == "Conv2d" and r.kernel != [1, 1]]
    assert cifar == [[3, 3]] * 4
