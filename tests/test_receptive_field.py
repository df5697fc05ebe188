"""Receptive field and jump per layer, checked against hand computations (rf += (k - 1) * jump; jump *= stride)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.models import summarize, summarize_module
from workbench.models.googlenet import Inception
from workbench.models.resnet import Residual


def _fields(summary, kinds: tuple[str, ...]) -> list[tuple[str, int | None, int | None]]:
    return [(r.type, r.receptive_field, r.jump) for r in summary.layers if r.type in kinds]


@pytest.mark.parametrize(("convs", "rf"), [(1, 3), (2, 5), (3, 7)])
def test_stacked_3x3_convolutions(convs: int, rf: int) -> None:
    stack = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(convs)])
    s = summarize_module(stack, (4, 16, 16))
    assert [r.receptive_field for r in s.layers if r.type == "Conv2d"] == [3, 5, 7][:convs]
    assert s.layers[0].receptive_field == rf and s.layers[0].jump == 1


def test_lenet_by_hand() -> None:
    # conv5 -> 5; pool2/2 -> 6 (jump 2); conv5 -> 6 + 4*2 = 14; pool2/2 -> 16 (jump 4);
    # flatten of the 5x5 map sees all of it: 16 + 4*4 = 32; the dense layers keep 32 and have no grid.
    s = summarize("lenet")
    assert _fields(s, ("Conv2d", "AvgPool2d", "Flatten", "Linear")) == [
        ("Conv2d", 5, 1), ("AvgPool2d", 6, 2), ("Conv2d", 14, 2), ("AvgPool2d", 16, 4),
        ("Flatten", 32, None), ("Linear", 32, None), ("Linear", 32, None), ("Linear", 32, None),
    ]  # fmt: skip
    assert (s.layers[0].receptive_field, s.layers[0].jump) == (32, None)


def test_vgg_cifar_by_hand() -> None:
    s = summarize("vgg_cifar")
    assert _fields(s, ("Conv2d", "MaxPool2d")) == [
        ("Conv2d", 3, 1), ("MaxPool2d", 4, 2),
        ("Conv2d", 8, 2), ("MaxPool2d", 10, 4),
        ("Conv2d", 18, 4), ("Conv2d", 26, 4), ("MaxPool2d", 30, 8),
        ("Conv2d", 46, 8), ("Conv2d", 62, 8), ("MaxPool2d", 70, 16),
        ("Conv2d", 102, 16), ("Conv2d", 134, 16), ("MaxPool2d", 150, 32),
    ]  # fmt: skip
    blocks = [r.receptive_field for r in s.layers if r.depth == 2 and r.type == "Sequential"]
    assert blocks == [4, 10, 30, 70, 150]  # a container reports its output's field


def test_vgg16_pool5_is_212() -> None:
    pools = [r.receptive_field for r in summarize("vgg16").layers if r.type == "MaxPool2d"]
    assert pools == [6, 16, 44, 100, 212]


def test_inception_takes_the_largest_branch() -> None:
    # Branches: 1x1 (1), 1x1-3x3 (3), 1x1-5x5 (5), 3x3 pool-1x1 (3); the concatenation counts the 5x5 branch
    # although it is not the last one.
    s = summarize_module(Inception(4, (4, 4), (4, 4), 4), (8, 12, 12))
    assert [r.receptive_field for r in s.layers[1:]] == [1, 1, 3, 1, 5, 3, 3]
    assert (s.layers[0].receptive_field, s.layers[0].jump) == (5, 1)


def test_googlenet_by_hand() -> None:
    s = summarize("googlenet")
    by_index = {r.depth_index: (r.receptive_field, r.jump) for r in s.layers}
    # conv 7x7/2: 7; pool 3x3/2: 7 + 2*2 = 11 (jump 4); 1x1: 11; 3x3: 11 + 2*4 = 19; pool 3x3/2: 27 (jump 8)
    assert [by_index[i] for i in ("3-1", "3-3", "3-4", "3-6", "3-8")] == [(7, 2), (11, 4), (11, 4), (19, 4), (27, 8)]
    assert by_index["2-3"] == (27 + 4 * 8, 8)       # Inception 3a: its 5x5 branch
    assert by_index["2-5"] == (91 + 2 * 8, 16)      # max pool 3x3/2 after Inception 3b (91)
    assert by_index["1-3"] == (171 + 16, None)      # aux head: flatten of the 2x2 map after 4a (171)
    assert s.layers[0].receptive_field == 715       # the main logits, not the aux heads'


def test_residual_addition_takes_the_larger_field() -> None:
    # Main path 3x3/2 then 3x3: 3, then 3 + 2*2 = 7 (jump 2); the 1x1/2 shortcut has field 1; the sum has 7.
    for shortcut in ("projection", "A"):
        s = summarize_module(Residual(8, use_1x1conv=True, strides=2, shortcut=shortcut), (4, 8, 8))
        assert (s.layers[0].receptive_field, s.layers[0].jump) == (7, 2)
        short = next(r for r in s.layers if r.name == "conv3")
        assert (short.receptive_field, short.jump) == (1, 2)  # option A's strided slice doubles the jump too


def test_resnet20_stages() -> None:
    # stem 3; 6 convs at jump 1 -> 15; stage 2: 15 + 2 + 5*4 = 37; stage 3: 37 + 4 + 5*8 = 81; pool 8x8: 81 + 7*4
    stages = [(r.receptive_field, r.jump) for r in summarize("resnet20").layers if r.depth == 2]
    assert stages == [(3, 1), (15, 1), (37, 2), (81, 4), (109, None)]


def test_non_square_kernels_take_the_larger_side() -> None:
    s = summarize_module(nn.Sequential(nn.Conv2d(1, 2, (1, 5)), nn.Conv2d(2, 2, (3, 1), stride=(2, 1))), (1, 9, 9))
    assert [(r.receptive_field, r.jump) for r in s.layers[1:]] == [(5, 1), (5, 2)]


def test_functional_ops_and_dilation() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, dilation=2)  # effective 5x5

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = nn.functional.max_pool2d(self.conv(x), 2)  # 5 + 1*1 = 6, jump 2
            return torch.flatten(y.mean((2, 3), keepdim=True), 1)  # whole 6x6 map: 6 + 5*2 = 16

    s = summarize_module(Net(), (1, 16, 16))
    assert (s.layers[1].receptive_field, s.layers[0].receptive_field, s.layers[0].jump) == (5, 16, None)


def test_json_and_table_carry_the_fields() -> None:
    s = summarize("vgg_cifar")
    row = s.to_dict()["layers"][3]
    assert (row["type"], row["receptive_field"], row["jump"]) == ("Conv2d", 3, 1)
    table = s.format_table(3)
    header = next(line for line in table.splitlines() if line.startswith("Layer"))
    assert header.split()[-1] == "RF"
    assert next(line for line in table.splitlines() if "Conv2d: 3-19" in line).split()[-1] == "134"


def test_torchvision_resnet18_field_is_435() -> None:
    s = summarize("tv:resnet18", input_shape=(3, 224, 224))
    assert next(r.receptive_field for r in s.layers if r.name == "layer4") == 435  # the published figure
