"""Network in Network (Lin et al., 2014): NiN blocks of one conv + two 1x1 convs, global average pooling.

`head="fc"` replaces the global average pool by flatten + a dense layer to the classes (the paper's "NIN +
fully connected" comparison, §4.6), so the parameters that global average pooling saves show as that row.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workbench.models.init import init_option
from workbench.models.registry import OptionSpec, register_model
from workbench.models.validators import fraction


def nin_block(out_channels: int, kernel_size: int, strides: int, padding: int) -> nn.Sequential:
    """A k x k convolution followed by two 1x1 convolutions, each with ReLU."""
    return nn.Sequential(
        nn.LazyConv2d(out_channels=out_channels, kernel_size=kernel_size, stride=strides, padding=padding),
        nn.ReLU(),
        nn.LazyConv2d(out_channels=out_channels, kernel_size=1),
        nn.ReLU(),
        nn.LazyConv2d(out_channels=out_channels, kernel_size=1),
        nn.ReLU(),
    )


class NiN(nn.Module):
    """The lecture's CIFAR NiN (3x3 kernels) or the 224-px variant (11/5/3 kernels)."""

    def __init__(self, n_output: int = 10, stem: str = "cifar", dropout: float = 0.5, head: str = "gap") -> None:
        super().__init__()
        if stem == "cifar":
            first, second = nin_block(96, 3, 1, 1), nin_block(256, 3, 1, 1)
        else:
            first, second = nin_block(96, 11, 4, 0), nin_block(256, 5, 1, 2)
        self.model = nn.Sequential(
            first,
            nn.MaxPool2d(kernel_size=3, stride=2),
            second,
            nn.MaxPool2d(kernel_size=3, stride=2),
            nin_block(out_channels=384, kernel_size=3, strides=1, padding=1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Dropout(dropout),
            nin_block(out_channels=n_output, kernel_size=3, strides=1, padding=1),
            *_head(head, n_output),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _head(kind: str, n_output: int) -> list[nn.Module]:
    if kind == "fc":
        return [nn.Flatten(), nn.LazyLinear(out_features=n_output)]
    return [nn.AdaptiveAvgPool2d(output_size=(1, 1)), nn.Flatten()]


def _nin_input(options: dict[str, Any]) -> tuple[int, int, int]:
    return (3, 32, 32) if options["stem"] == "cifar" else (3, 224, 224)


@register_model(
    "nin",
    family="NiN",
    description="Network in Network: NiN blocks (k x k conv + two 1x1 convs), global average pooling.",
    natural_input=(3, 32, 32),
    default_classes=10,
    options=(
        OptionSpec("stem", "cifar", "kernel layout: CIFAR (3x3 kernels) or 224-px (11/5/3 kernels)",
                   choices=("cifar", "imagenet")),
        OptionSpec("dropout", 0.5, "dropout probability before the last block", validate=fraction,
                   allowed="a number in [0, 1)"),
        OptionSpec("head", "gap", "classifier head: global average pooling (the lecture) or flatten + dense",
                   choices=("gap", "fc")),
        init_option("he"),
    ),
    input_for=_nin_input,
)
def nin(*, num_classes: int, input_shape: tuple[int, int, int], stem: str, dropout: float,
        head: str) -> nn.Module:  # fmt: skip
    """Build NiN."""
    return NiN(num_classes, stem, dropout, head)
