"""ResNet (He et al., 2015) as in the lecture: `Residual` blocks with a 1x1 projection when shape changes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workbench.models.registry import OptionSpec, register_model
from workbench.models.validators import pairs

RESNET18 = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34 = ((3, 64), (4, 128), (6, 256), (3, 512))
STEM_CHANNELS = 64


class Residual(nn.Module):
    """The residual block of ResNet models (two 3x3 convs with batch norm, identity or 1x1 shortcut)."""

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return torch.relu(y + x)


def _stem(kind: str) -> nn.Sequential:
    if kind == "cifar":
        return nn.Sequential(nn.LazyConv2d(out_channels=STEM_CHANNELS, kernel_size=3, stride=1, padding=1),
                             nn.LazyBatchNorm2d(), nn.ReLU())  # fmt: skip
    return nn.Sequential(
        nn.LazyConv2d(out_channels=STEM_CHANNELS, kernel_size=7, stride=2, padding=3),
        nn.LazyBatchNorm2d(),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )


class ResNet(nn.Module):
    """Stem, one stage per (num_residuals, num_channels) in `arch`, global average pool, linear head."""

    def __init__(self, arch: tuple[tuple[int, int], ...], n_outputs: int = 10, stem: str = "imagenet") -> None:
        super().__init__()
        self.model = nn.Sequential(_stem(stem))
        for i, (num_residuals, num_channels) in enumerate(arch):
            # The lecture's first stage keeps the stem's 64 channels (identity shortcut); an edited first
            # stage with another width needs the 1x1 projection to add its shortcut.
            first = i == 0 and num_channels == STEM_CHANNELS
            stage = self.block(num_residuals, num_channels, first_block=first, strides=1 if i == 0 else 2)
            self.model.add_module(name=f"b{i + 2}", module=stage)
        self.model.add_module(
            name="last",
            module=nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(n_outputs)),
        )

    @staticmethod
    def block(num_residuals: int, num_channels: int, first_block: bool = False, strides: int = 2) -> nn.Sequential:
        """A stage; its first residual projects with a 1x1 conv (and halves the size) unless first_block."""
        blk: list[nn.Module] = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels=num_channels, use_1x1conv=True, strides=strides))
            else:
                blk.append(Residual(num_channels=num_channels))
        return nn.Sequential(*blk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _options(arch: tuple[tuple[int, int], ...]) -> tuple[OptionSpec, ...]:
    return (
        OptionSpec("arch", arch, "stages as (residual blocks, channels) pairs", validate=pairs,
                   allowed="a non-empty tuple of (blocks >= 1, channels >= 1) pairs, e.g. ((2, 64), (2, 128))"),
        OptionSpec("stem", "imagenet", "stem: the lecture's 7x7/2 conv + max pool, or a CIFAR 3x3/1 conv",
                   choices=("imagenet", "cifar")),
    )  # fmt: skip


def _build(*, num_classes: int, input_shape: tuple[int, int, int], arch: Any, stem: str) -> nn.Module:
    return ResNet(arch, num_classes, stem)


for _name, _arch, _base, _text in (
    ("resnet", RESNET18, None, "ResNet with editable stages (defaults: ResNet-18)."),
    ("resnet18", RESNET18, "resnet", "ResNet-18: stages ((2,64),(2,128),(2,256),(2,512))."),
    ("resnet34", RESNET34, "resnet", "ResNet-34: stages ((3,64),(4,128),(6,256),(3,512))."),
):
    register_model(_name, family="ResNet", description=_text, natural_input=(3, 32, 32), default_classes=10,
                   options=_options(_arch), preset_of=_base)(_build)  # fmt: skip
