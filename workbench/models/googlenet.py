"""GoogLeNet (Szegedy et al., 2014) as in the lecture: Inception blocks and two auxiliary heads.

Two fixes over the lecture's listing: a final linear classifier (its summary ends at a 1024-wide feature),
and auxiliary heads whose 5x5/3 average pool is skipped when the feature map is smaller than the pool
(the lecture's 32-px table applies the aux 1x1 conv directly to 512x2x2).
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.init import init_option
from workbench.models.registry import OptionSpec, register_model
from workbench.models.validators import fraction


class Inception(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-5x5; 3x3 pool-1x1) concatenated along channels."""

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.b1_1 = nn.LazyConv2d(out_channels=c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(out_channels=c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(out_channels=c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(out_channels=c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(out_channels=c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(out_channels=c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = torch.relu(self.b1_1(x))
        b2 = torch.relu(self.b2_2(torch.relu(self.b2_1(x))))
        b3 = torch.relu(self.b3_2(torch.relu(self.b3_1(x))))
        b4 = torch.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 5x5/3 average pool (when the map is large enough), 1x1 conv to 128, FC 1024."""

    POOL_KERNEL, POOL_STRIDE = 5, 3

    def __init__(self, n_outputs: int, dropout: float = 0.5) -> None:
        super().__init__()
        # A real module (so it shows as a layer row when it acts), but called only when the map is at least
        # 5x5. torchinfo lists only modules that run, so at 32 px (2x2 maps) the table stays exactly the
        # lecture's: no extra row, no shifted depth-indices. An nn.Identity in its place would add a row at
        # depth 2 and renumber every later "2-n" index of the lecture's table.
        self.pool = nn.AvgPool2d(kernel_size=self.POOL_KERNEL, stride=self.POOL_STRIDE)
        self.conv = nn.Sequential(nn.LazyConv2d(out_channels=128, kernel_size=1))
        self.fc = nn.Sequential(
            nn.LazyLinear(out_features=1024),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.LazyLinear(out_features=n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) >= self.POOL_KERNEL:
            x = self.pool(x)
        x = torch.relu(self.conv(x))
        return self.fc(torch.flatten(x, 1))


def conv_blk_1() -> nn.Sequential:
    """7x7/2 convolution and 3x3/2 max pool (local response normalisation left out)."""
    return nn.Sequential(
        nn.LazyConv2d(out_channels=64, kernel_size=7, stride=2, padding=3),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )


def conv_blk_2() -> nn.Sequential:
    """1x1 convolution to 64, 3x3 convolution to 192, 3x3/2 max pool."""
    return nn.Sequential(
        nn.LazyConv2d(out_channels=64, kernel_size=1),
        nn.ReLU(),
        nn.LazyConv2d(out_channels=192, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )


def inception_blk_1() -> nn.Sequential:
    """Inception 3a, 3b, max pool, 4a."""
    return nn.Sequential(
        Inception(c1=64, c2=(96, 128), c3=(16, 32), c4=32),
        Inception(c1=128, c2=(128, 192), c3=(32, 96), c4=64),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        Inception(c1=192, c2=(96, 208), c3=(16, 48), c4=64),
    )


def inception_blk_2() -> nn.Sequential:
    """Inception 4b, 4c, 4d."""
    return nn.Sequential(
        Inception(c1=160, c2=(112, 224), c3=(24, 64), c4=64),
        Inception(c1=128, c2=(128, 256), c3=(24, 64), c4=64),
        Inception(c1=112, c2=(144, 288), c3=(32, 64), c4=64),
    )


def inception_blk_3() -> nn.Sequential:
    """Inception 4e, max pool, 5a, 5b, global average pool."""
    return nn.Sequential(
        Inception(c1=256, c2=(160, 320), c3=(32, 128), c4=128),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        Inception(c1=256, c2=(160, 320), c3=(32, 128), c4=128),
        Inception(c1=384, c2=(192, 384), c3=(48, 128), c4=128),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


class GoogleNet(nn.Module):
    """Returns (main, aux1, aux2) logits in train mode with aux heads on; main logits otherwise."""

    def __init__(self, n_outputs: int = 10, aux: bool = True, aux_dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(conv_blk_1(), conv_blk_2())
        self.inception_block_1 = inception_blk_1()
        self.inception_block_2 = inception_blk_2()
        self.inception_block_3 = inception_blk_3()
        self.aux_1 = InceptionAux(n_outputs, aux_dropout) if aux else None
        self.aux_2 = InceptionAux(n_outputs, aux_dropout) if aux else None
        self.classifier = nn.LazyLinear(out_features=n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.conv_block(x)
        inception_out_1 = self.inception_block_1(x)
        use_aux = self.training and self.aux_1 is not None and self.aux_2 is not None
        aux_out_1 = self.aux_1(inception_out_1) if use_aux else None  # type: ignore[misc]
        inception_out_2 = self.inception_block_2(inception_out_1)
        aux_out_2 = self.aux_2(inception_out_2) if use_aux else None  # type: ignore[misc]
        out = self.classifier(self.inception_block_3(inception_out_2))
        if use_aux:
            return out, aux_out_1, aux_out_2  # type: ignore[return-value]
        return out


@register_model(
    "googlenet",
    family="GoogLeNet",
    description="GoogLeNet (Inception v1) as in the lecture, with two auxiliary heads and a final classifier.",
    natural_input=(3, 32, 32),
    default_classes=10,
    options=(
        OptionSpec("aux", True, "auxiliary classifier heads (used in training only)"),
        OptionSpec("aux_dropout", 0.5, "dropout probability in the auxiliary heads", validate=fraction,
                   allowed="a number in [0, 1)"),
        init_option("he"),
    ),
)
def googlenet(*, num_classes: int, input_shape: tuple[int, int, int], aux: bool, aux_dropout: float) -> nn.Module:
    """Build GoogLeNet."""
    return GoogleNet(num_classes, aux, aux_dropout)
