"""VGG (Simonyan & Zisserman, 2014): repeated blocks of 3x3 convolutions, as in the lecture."""

from __future__ import annotations

from torch import nn

from workbench.models.init import init_option
from workbench.models.registry import OptionSpec, register_model
from workbench.models.validators import fraction, pairs, positive_int

VGG_CIFAR = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG13 = ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512))
VGG16 = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG19 = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def vgg_block(num_conv_layers: int, out_channels: int, batch_norm: bool = False) -> nn.Sequential:
    """`num_conv_layers` 3x3 convolutions (each + ReLU) followed by a 2x2/2 max pool."""
    layers: list[nn.Module] = []
    for _ in range(num_conv_layers):
        layers.append(nn.LazyConv2d(out_channels=out_channels, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.LazyBatchNorm2d())
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Convolutional blocks from `block_info`, then a 3-layer dense classifier."""

    def __init__(
        self,
        block_info: tuple[tuple[int, int], ...],
        n_output: int = 10,
        classifier_width: int = 512,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        conv_blocks = [vgg_block(n, c, batch_norm) for n, c in block_info]
        self.model = nn.Sequential(
            *conv_blocks,
            nn.Flatten(),
            nn.LazyLinear(out_features=classifier_width), nn.ReLU(), nn.Dropout(dropout),
            nn.LazyLinear(out_features=classifier_width), nn.ReLU(), nn.Dropout(dropout),
            nn.LazyLinear(n_output),
        )  # fmt: skip

    def forward(self, x):
        return self.model(x)


def _options(block_info: tuple[tuple[int, int], ...], width: int) -> tuple[OptionSpec, ...]:
    return (
        OptionSpec("block_info", block_info, "convolutional blocks as (convs, channels) pairs", validate=pairs,
                   allowed="a non-empty tuple of (convs >= 1, channels >= 1) pairs, e.g. ((1, 64), (2, 128))"),
        OptionSpec("classifier_width", width, "width of the two hidden dense layers", validate=positive_int,
                   allowed="an integer >= 1"),
        OptionSpec("dropout", 0.5, "dropout probability in the classifier", validate=fraction,
                   allowed="a number in [0, 1)"),
        OptionSpec("batch_norm", False, "batch normalisation after every convolution"),
        init_option("he"),
    )


def _build(*, num_classes: int, input_shape: tuple[int, int, int], block_info, classifier_width: int,
           dropout: float, batch_norm: bool) -> nn.Module:  # fmt: skip
    return VGG(block_info, num_classes, classifier_width, dropout, batch_norm)


_PRESETS = (
    ("vgg", VGG_CIFAR, 512, (3, 32, 32), 10, None,
     "VGG with editable blocks (defaults: the lecture's CIFAR-10 model)."),
    ("vgg_cifar", VGG_CIFAR, 512, (3, 32, 32), 10, "vgg",
     "The lecture's CIFAR-10 VGG: 8 convolutions, classifier 512-512-classes."),
    ("vgg11", VGG11, 4096, (3, 224, 224), 1000, "vgg", "VGG-11 (configuration A), ImageNet layout."),
    ("vgg13", VGG13, 4096, (3, 224, 224), 1000, "vgg", "VGG-13 (configuration B), ImageNet layout."),
    ("vgg16", VGG16, 4096, (3, 224, 224), 1000, "vgg", "VGG-16 (configuration D), ImageNet layout."),
    ("vgg19", VGG19, 4096, (3, 224, 224), 1000, "vgg", "VGG-19 (configuration E), ImageNet layout."),
)  # fmt: skip

for _name, _blocks, _width, _input, _classes, _base, _text in _PRESETS:
    register_model(
        _name, family="VGG", description=_text, natural_input=_input, default_classes=_classes,
        options=_options(_blocks, _width), preset_of=_base,
    )(_build)  # fmt: skip
