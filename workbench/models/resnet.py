"""ResNet (He et al., 2015) as in the lecture, its plain twin, and the CIFAR ResNets of He et al. §4.2.

The lecture's `Residual` adds a 1x1 projection when the shape changes ("projection"); He et al.'s CIFAR
networks use the parameter-free option A ("A": stride-2 subsampling plus zero channel padding) and
convolutions without bias before batch norm. `residual=False` builds the same network without shortcuts.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from workbench.errors import InvalidOptionError
from workbench.models.registry import OptionSpec, register_model
from workbench.models.validators import pairs, positive_int

RESNET18 = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34 = ((3, 64), (4, 128), (6, 256), (3, 512))
STEM_CHANNELS = 64
SHORTCUTS = ("projection", "A")


def cifar_stages(n: int) -> tuple[tuple[int, int], ...]:
    """He et al.'s CIFAR layout: three stages of n basic blocks with 16, 32 and 64 channels (6n + 2 layers)."""
    return ((n, 16), (n, 32), (n, 64))


class ShortcutA(nn.Module):
    """He et al.'s option A: subsample by the stride and pad the new channels with zeros (no parameters)."""

    def __init__(self, num_channels: int, stride: int) -> None:
        super().__init__()
        self.num_channels, self.stride = num_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.num_channels - x.shape[1]
        return functional.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2)) if extra > 0 else x

    def extra_repr(self) -> str:
        return f"num_channels={self.num_channels}, stride={self.stride}"


class Residual(nn.Module):
    """The residual block of ResNet models (two 3x3 convs with batch norm, identity or 1x1 shortcut).

    `shortcut`: "projection" (the lecture's 1x1 conv, when use_1x1conv), "A" (option A when use_1x1conv),
    or "none" (the plain twin: no addition at all).
    """

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 shortcut: str = "projection", bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides, bias=bias)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, bias=bias)
        self.residual = shortcut != "none"
        self.conv3: nn.Module | None = None
        if use_1x1conv and shortcut == "projection":
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides, bias=bias)
        elif use_1x1conv and shortcut == "A":
            self.conv3 = ShortcutA(num_channels, strides)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if not self.residual:
            return torch.relu(y)
        if self.conv3 is not None:
            x = self.conv3(x)
        return torch.relu(y + x)


def _stem(kind: str, channels: int = STEM_CHANNELS, bias: bool = True) -> nn.Sequential:
    if kind == "cifar":
        return nn.Sequential(nn.LazyConv2d(out_channels=channels, kernel_size=3, stride=1, padding=1, bias=bias),
                             nn.LazyBatchNorm2d(), nn.ReLU())  # fmt: skip
    return nn.Sequential(
        nn.LazyConv2d(out_channels=channels, kernel_size=7, stride=2, padding=3, bias=bias),
        nn.LazyBatchNorm2d(),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )


class ResNet(nn.Module):
    """Stem, one stage per (num_residuals, num_channels) in `arch`, global average pool, linear head."""

    def __init__(self, arch: tuple[tuple[int, int], ...], n_outputs: int = 10, stem: str = "imagenet", *,
                 stem_channels: int = STEM_CHANNELS, residual: bool = True, shortcut: str = "projection",
                 bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.model = nn.Sequential(_stem(stem, stem_channels, bias))
        kind = shortcut if residual else "none"
        for i, (num_residuals, num_channels) in enumerate(arch):
            # The lecture's first stage keeps the stem's width (identity shortcut); an edited first stage with
            # another width needs a shortcut that changes the channels.
            first = i == 0 and num_channels == stem_channels
            stage = self.block(num_residuals, num_channels, first_block=first, strides=1 if i == 0 else 2,
                               shortcut=kind, bias=bias)  # fmt: skip
            self.model.add_module(name=f"b{i + 2}", module=stage)
        self.model.add_module(
            name="last",
            module=nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(n_outputs)),
        )

    @staticmethod
    def block(num_residuals: int, num_channels: int, first_block: bool = False, strides: int = 2,
              shortcut: str = "projection", bias: bool = True) -> nn.Sequential:  # fmt: skip
        """A stage; its first residual changes the shape (1x1 projection or option A) unless first_block."""
        blk: list[nn.Module] = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=strides, shortcut=shortcut, bias=bias))
            else:
                blk.append(Residual(num_channels, shortcut=shortcut, bias=bias))
        return nn.Sequential(*blk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _options(arch: tuple[tuple[int, int], ...], *, stem: str = "imagenet", stem_channels: int = STEM_CHANNELS,
             shortcut: str = "projection", bias: bool = True) -> tuple[OptionSpec, ...]:  # fmt: skip
    return (
        OptionSpec("arch", arch, "stages as (residual blocks, channels) pairs", validate=pairs,
                   allowed="a non-empty tuple of (blocks >= 1, channels >= 1) pairs, e.g. ((2, 64), (2, 128))"),
        OptionSpec("stem", stem, "stem: the lecture's 7x7/2 conv + max pool, or a CIFAR 3x3/1 conv",
                   choices=("imagenet", "cifar")),
        OptionSpec("stem_channels", stem_channels, "output channels of the stem convolution",
                   validate=positive_int, allowed="an integer >= 1"),
        OptionSpec("residual", True, "shortcut connections (False: the plain twin, no shortcuts at all)"),
        OptionSpec("shortcut", shortcut, "shortcut where the shape changes: the lecture's 1x1 'projection' or "
                   "He et al.'s parameter-free option 'A' (subsample + zero channel padding)", choices=SHORTCUTS),
        OptionSpec("bias", bias, "biases on the convolutions (He et al. leave them out before batch norm)"),
    )  # fmt: skip


def _check_option_a(arch: tuple[tuple[int, int], ...], stem_channels: int) -> None:
    widths = [stem_channels, *(c for _, c in arch)]
    if any(b < a for a, b in itertools.pairwise(widths)):
        raise InvalidOptionError(
            f"shortcut 'A' only pads channels, but the widths {widths} (stem, then stages) shrink somewhere; "
            "use non-decreasing widths or shortcut='projection'."
        )


def _build(*, num_classes: int, input_shape: tuple[int, int, int], arch: Any, stem: str, stem_channels: int,
           residual: bool, shortcut: str, bias: bool) -> nn.Module:  # fmt: skip
    if residual and shortcut == "A":
        _check_option_a(arch, stem_channels)
    return ResNet(arch, num_classes, stem, stem_channels=stem_channels, residual=residual, shortcut=shortcut,
                  bias=bias)  # fmt: skip


for _name, _arch, _base, _text in (
    ("resnet", RESNET18, None, "ResNet with editable stages (defaults: ResNet-18)."),
    ("resnet18", RESNET18, "resnet", "ResNet-18: stages ((2,64),(2,128),(2,256),(2,512))."),
    ("resnet34", RESNET34, "resnet", "ResNet-34: stages ((3,64),(4,128),(6,256),(3,512))."),
):
    register_model(_name, family="ResNet", description=_text, natural_input=(3, 32, 32), default_classes=10,
                   options=_options(_arch), preset_of=_base)(_build)  # fmt: skip

# He et al. 2016 §4.2: 6n + 2 layers; 0.27 M, 0.46 M, 0.66 M, 0.85 M and 1.7 M parameters.
for _n, _depth in ((3, 20), (5, 32), (7, 44), (9, 56), (18, 110)):
    register_model(
        f"resnet{_depth}", family="ResNet", natural_input=(3, 32, 32), default_classes=10, preset_of="resnet",
        description=f"ResNet-{_depth} for CIFAR (He et al. 2016): 3x3 16-channel stem, three stages of {_n} "
                    "blocks (16/32/64 channels), option-A shortcuts, no conv biases.",
        options=_options(cifar_stages(_n), stem="cifar", stem_channels=16, shortcut="A", bias=False),
    )(_build)  # fmt: skip
