"""The lecture's tables, reproduced exactly through the project's own meta-device summaries."""

from __future__ import annotations

import pytest
from torch import nn

from workbench.models import summarize, summarize_module


def _leaves(summary, kinds=("Conv2d", "Linear")):
    return [(r.type, r.params, r.mult_adds) for r in summary.layers if r.type in kinds]


def test_vgg_cifar_totals_and_rows() -> None:
    s = summarize("vgg_cifar", input_shape=(3, 32, 32), num_classes=10)
    assert s.totals.total_params == 9_750_922
    assert s.totals.trainable_params == 9_750_922
    assert s.totals.mult_adds == 153_446_410
    first = next(r for r in s.layers if r.type == "Conv2d")
    assert (first.params, first.mult_adds) == (1_792, 1_835_008)
    assert (first.depth_index, first.input_shape, first.output_shape) == ("3-1", [1, 3, 32, 32], [1, 64, 32, 32])
    assert _leaves(s) == [
        ("Conv2d", 1_792, 1_835_008), ("Conv2d", 73_856, 18_907_136), ("Conv2d", 295_168, 18_890_752),
        ("Conv2d", 590_080, 37_765_120), ("Conv2d", 1_180_160, 18_882_560), ("Conv2d", 2_359_808, 37_756_928),
        ("Conv2d", 2_359_808, 9_439_232), ("Conv2d", 2_359_808, 9_439_232), ("Linear", 262_656, 262_656),
        ("Linear", 262_656, 262_656), ("Linear", 5_130, 5_130),
    ]  # fmt: skip
    assert s.layers[0].output_shape == [1, 10]


def test_nin_totals_and_rows() -> None:
    s = summarize("nin", input_shape=(3, 32, 32))
    assert s.totals.total_params == 1_589_926
    assert s.totals.mult_adds == 159_426_198
    assert _leaves(s) == [
        ("Conv2d", 2_688, 2_752_512), ("Conv2d", 9_312, 9_535_488), ("Conv2d", 9_312, 9_535_488),
        ("Conv2d", 221_440, 49_824_000), ("Conv2d", 65_792, 14_803_200), ("Conv2d", 65_792, 14_803_200),
        ("Conv2d", 885_120, 43_370_880), ("Conv2d", 147_840, 7_244_160), ("Conv2d", 147_840, 7_244_160),
        ("Conv2d", 34_570, 311_130), ("Conv2d", 110, 990), ("Conv2d", 110, 990),
    ]  # fmt: skip
    pools = [r.output_shape for r in s.layers if r.type == "MaxPool2d"]
    assert pools == [[1, 96, 15, 15], [1, 256, 7, 7], [1, 384, 3, 3]]


def test_vgg16_imagenet_rows() -> None:
    s = summarize("vgg16", input_shape=(3, 224, 224), num_classes=1000)
    # The lecture prints 138,423,208: its max-pool row after conv 4 wrongly carries 65,664 parameters.
    assert s.totals.total_params == 138_357_544
    convs = [(r.input_shape[1:], r.output_shape[1:], r.params) for r in s.layers if r.type == "Conv2d"]
    assert convs == [
        ([3, 224, 224], [64, 224, 224], 1_792), ([64, 224, 224], [64, 224, 224], 36_928),
        ([64, 112, 112], [128, 112, 112], 73_856), ([128, 112, 112], [128, 112, 112], 147_584),
        ([128, 56, 56], [256, 56, 56], 295_168), ([256, 56, 56], [256, 56, 56], 590_080),
        ([256, 56, 56], [256, 56, 56], 590_080), ([256, 28, 28], [512, 28, 28], 1_180_160),
        ([512, 28, 28], [512, 28, 28], 2_359_808), ([512, 28, 28], [512, 28, 28], 2_359_808),
        ([512, 14, 14], [512, 14, 14], 2_359_808), ([512, 14, 14], [512, 14, 14], 2_359_808),
        ([512, 14, 14], [512, 14, 14], 2_359_808),
    ]  # fmt: skip
    pools = [(r.input_shape[1:], r.output_shape[1:], r.params) for r in s.layers if r.type == "MaxPool2d"]
    assert pools == [
        ([64, 224, 224], [64, 112, 112], 0), ([128, 112, 112], [128, 56, 56], 0), ([256, 56, 56], [256, 28, 28], 0),
        ([512, 28, 28], [512, 14, 14], 0), ([512, 14, 14], [512, 7, 7], 0),
    ]  # fmt: skip
    fcs = [(r.input_shape, r.output_shape, r.params) for r in s.layers if r.type == "Linear"]
    assert fcs == [([1, 25_088], [1, 4096], 102_764_544), ([1, 4096], [1, 4096], 16_781_312),
                   ([1, 4096], [1, 1000], 4_097_000)]  # fmt: skip


# (depth-index, type, input shape, output shape, params, Mult-Adds) of every parameterised row of the
# lecture's 32-px GoogLeNet table, plus the containers that show the aux heads' layout.
_GOOGLENET_ROWS = [
    ("3-1", "Conv2d", [3, 32, 32], [64, 16, 16], 9_472, 2_424_832),
    ("3-4", "Conv2d", [64, 8, 8], [64, 8, 8], 4_160, 266_240),
    ("3-6", "Conv2d", [64, 8, 8], [192, 8, 8], 110_784, 7_090_176),
    ("3-9", "Conv2d", [192, 4, 4], [64, 4, 4], 12_352, 197_632),
    ("3-10", "Conv2d", [192, 4, 4], [96, 4, 4], 18_528, 296_448),
    ("3-11", "Conv2d", [96, 4, 4], [128, 4, 4], 110_720, 1_771_520),
    ("3-12", "Conv2d", [192, 4, 4], [16, 4, 4], 3_088, 49_408),
    ("3-13", "Conv2d", [16, 4, 4], [32, 4, 4], 12_832, 205_312),
    ("3-15", "Conv2d", [192, 4, 4], [32, 4, 4], 6_176, 98_816),
    ("3-16", "Conv2d", [256, 4, 4], [128, 4, 4], 32_896, 526_336),
    ("3-17", "Conv2d", [256, 4, 4], [128, 4, 4], 32_896, 526_336),
    ("3-18", "Conv2d", [128, 4, 4], [192, 4, 4], 221_376, 3_542_016),
    ("3-19", "Conv2d", [256, 4, 4], [32, 4, 4], 8_224, 131_584),
    ("3-20", "Conv2d", [32, 4, 4], [96, 4, 4], 76_896, 1_230_336),
    ("3-22", "Conv2d", [256, 4, 4], [64, 4, 4], 16_448, 263_168),
    ("3-23", "Conv2d", [480, 2, 2], [192, 2, 2], 92_352, 369_408),
    ("3-24", "Conv2d", [480, 2, 2], [96, 2, 2], 46_176, 184_704),
    ("3-25", "Conv2d", [96, 2, 2], [208, 2, 2], 179_920, 719_680),
    ("3-26", "Conv2d", [480, 2, 2], [16, 2, 2], 7_696, 30_784),
    ("3-27", "Conv2d", [16, 2, 2], [48, 2, 2], 19_248, 76_992),
    ("3-29", "Conv2d", [480, 2, 2], [64, 2, 2], 30_784, 123_136),
    ("3-30", "Conv2d", [512, 2, 2], [128, 2, 2], 65_664, 262_656),
    ("3-31", "Linear", [512], [1024], 525_312, 525_312),
    ("3-34", "Linear", [1024], [10], 10_250, 10_250),
    ("3-35", "Conv2d", [512, 2, 2], [160, 2, 2], 82_080, 328_320),
    ("3-36", "Conv2d", [512, 2, 2], [112, 2, 2], 57_456, 229_824),
    ("3-37", "Conv2d", [112, 2, 2], [224, 2, 2], 226_016, 904_064),
    ("3-38", "Conv2d", [512, 2, 2], [24, 2, 2], 12_312, 49_248),
    ("3-39", "Conv2d", [24, 2, 2], [64, 2, 2], 38_464, 153_856),
    ("3-41", "Conv2d", [512, 2, 2], [64, 2, 2], 32_832, 131_328),
    ("3-42", "Conv2d", [512, 2, 2], [128, 2, 2], 65_664, 262_656),
    ("3-43", "Conv2d", [512, 2, 2], [128, 2, 2], 65_664, 262_656),
    ("3-44", "Conv2d", [128, 2, 2], [256, 2, 2], 295_168, 1_180_672),
    ("3-45", "Conv2d", [512, 2, 2], [24, 2, 2], 12_312, 49_248),
    ("3-46", "Conv2d", [24, 2, 2], [64, 2, 2], 38_464, 153_856),
    ("3-48", "Conv2d", [512, 2, 2], [64, 2, 2], 32_832, 131_328),
    ("3-49", "Conv2d", [512, 2, 2], [112, 2, 2], 57_456, 229_824),
    ("3-50", "Conv2d", [512, 2, 2], [144, 2, 2], 73_872, 295_488),
    ("3-51", "Conv2d", [144, 2, 2], [288, 2, 2], 373_536, 1_494_144),
    ("3-52", "Conv2d", [512, 2, 2], [32, 2, 2], 16_416, 65_664),
    ("3-53", "Conv2d", [32, 2, 2], [64, 2, 2], 51_264, 205_056),
    ("3-55", "Conv2d", [512, 2, 2], [64, 2, 2], 32_832, 131_328),
    ("3-56", "Conv2d", [528, 2, 2], [128, 2, 2], 67_712, 270_848),
    ("3-57", "Linear", [512], [1024], 525_312, 525_312),
    ("3-60", "Linear", [1024], [10], 10_250, 10_250),
    ("3-61", "Conv2d", [528, 2, 2], [256, 2, 2], 135_424, 541_696),
    ("3-62", "Conv2d", [528, 2, 2], [160, 2, 2], 84_640, 338_560),
    ("3-63", "Conv2d", [160, 2, 2], [320, 2, 2], 461_120, 1_844_480),
    ("3-64", "Conv2d", [528, 2, 2], [32, 2, 2], 16_928, 67_712),
    ("3-65", "Conv2d", [32, 2, 2], [128, 2, 2], 102_528, 410_112),
    ("3-67", "Conv2d", [528, 2, 2], [128, 2, 2], 67_712, 270_848),
    ("3-68", "Conv2d", [832, 1, 1], [256, 1, 1], 213_248, 213_248),
    ("3-69", "Conv2d", [832, 1, 1], [160, 1, 1], 133_280, 133_280),
    ("3-70", "Conv2d", [160, 1, 1], [320, 1, 1], 461_120, 461_120),
    ("3-71", "Conv2d", [832, 1, 1], [32, 1, 1], 26_656, 26_656),
    ("3-72", "Conv2d", [32, 1, 1], [128, 1, 1], 102_528, 102_528),
    ("3-74", "Conv2d", [832, 1, 1], [128, 1, 1], 106_624, 106_624),
    ("3-75", "Conv2d", [832, 1, 1], [384, 1, 1], 319_872, 319_872),
    ("3-76", "Conv2d", [832, 1, 1], [192, 1, 1], 159_936, 159_936),
    ("3-77", "Conv2d", [192, 1, 1], [384, 1, 1], 663_936, 663_936),
    ("3-78", "Conv2d", [832, 1, 1], [48, 1, 1], 39_984, 39_984),
    ("3-79", "Conv2d", [48, 1, 1], [128, 1, 1], 153_728, 153_728),
    ("3-81", "Conv2d", [832, 1, 1], [128, 1, 1], 106_624, 106_624),
    ("1-7", "Linear", [1024], [10], 10_250, 10_250),  # the final classifier the lecture's listing leaves out
]

_GOOGLENET_CONTAINERS = [
    ("1-1", "Sequential", [3, 32, 32], [192, 4, 4]), ("2-1", "Sequential", [3, 32, 32], [64, 8, 8]),
    ("1-2", "Sequential", [192, 4, 4], [512, 2, 2]), ("2-3", "Inception", [192, 4, 4], [256, 4, 4]),
    ("2-5", "MaxPool2d", [480, 4, 4], [480, 2, 2]), ("1-3", "InceptionAux", [512, 2, 2], [10]),
    ("2-7", "Sequential", [512, 2, 2], [128, 2, 2]), ("2-8", "Sequential", [512], [10]),
    ("1-4", "Sequential", [512, 2, 2], [528, 2, 2]), ("1-5", "InceptionAux", [528, 2, 2], [10]),
    ("2-12", "Sequential", [528, 2, 2], [128, 2, 2]), ("1-6", "Sequential", [528, 2, 2], [1024]),
    ("2-15", "MaxPool2d", [832, 2, 2], [832, 1, 1]), ("2-17", "Inception", [832, 1, 1], [1024, 1, 1]),
    ("2-18", "AdaptiveAvgPool2d", [1024, 1, 1], [1024, 1, 1]), ("2-19", "Flatten", [1024, 1, 1], [1024]),
]  # fmt: skip


def test_googlenet_every_lecture_row() -> None:
    s = summarize("googlenet", input_shape=(3, 32, 32), num_classes=10)
    got = [(r.depth_index, r.type, r.input_shape[1:], r.output_shape[1:], r.params, r.mult_adds)
           for r in s.layers if r.params and r.is_leaf]  # fmt: skip
    assert got == _GOOGLENET_ROWS
    by_index = {r.depth_index: (r.depth_index, r.type, r.input_shape[1:], r.output_shape[1:]) for r in s.layers}
    for expected in _GOOGLENET_CONTAINERS:
        assert by_index[expected[0]] == expected
    # 7,188,302 = the lecture's network + the added 1024 -> 10 classifier (10,250).
    assert s.totals.total_params == sum(row[4] for row in _GOOGLENET_ROWS) == 7_188_302
    assert s.layers[0].output_shape == [1, 10]


def test_googlenet_without_aux_heads() -> None:
    s = summarize("googlenet", options={"aux": False})
    assert not any(r.type == "InceptionAux" for r in s.layers)
    aux_1, aux_2 = 65_664 + 525_312 + 10_250, 67_712 + 525_312 + 10_250
    assert s.totals.total_params == 7_188_302 - aux_1 - aux_2 == 5_983_802


def test_lenet_total() -> None:
    assert summarize("lenet", input_shape=(1, 28, 28)).totals.total_params == 61_706


def test_one_by_one_convolution_example() -> None:
    """480x14x14 -> 48 channels: a direct 5x5 conv vs a 1x1 reduction to 16 then a 5x5 conv."""
    direct = summarize_module(nn.Conv2d(480, 48, kernel_size=5, padding=2), (480, 14, 14))
    reduced = summarize_module(
        nn.Sequential(nn.Conv2d(480, 16, kernel_size=1), nn.ReLU(), nn.Conv2d(16, 48, kernel_size=5, padding=2)),
        (480, 14, 14),
    )
    assert direct.totals.total_params == 576_048
    assert [r.params for r in reduced.layers if r.type == "Conv2d"] == [7_696, 19_248]
    assert reduced.totals.total_params == 26_944
    assert direct.layers[0].output_shape == reduced.layers[0].output_shape == [1, 48, 14, 14]


@pytest.mark.parametrize("lazy", [True, False])
def test_summarize_module_keeps_the_original_untouched(lazy: bool) -> None:
    conv = nn.LazyConv2d(8, 3) if lazy else nn.Conv2d(3, 8, 3)
    s = summarize_module(conv, (3, 10, 10))
    assert s.totals.total_params == 3 * 8 * 9 + 8
    assert s.layers[0].output_shape == [1, 8, 8, 8]
    if not lazy:
        assert conv.weight.device.type == "cpu"
