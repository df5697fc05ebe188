"""Classic networks: LeNet-5 and AlexNet, written with lazy layers in the lecture's style."""

from __future__ import annotations

from typing import Any

from torch import nn

from workbench.models.init import init_option
from workbench.models.registry import OptionSpec, register_model
from workbench.models.validators import fraction, positive_int


def _activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Sigmoid()


def _pool(name: str) -> nn.Module:
    return nn.MaxPool2d(kernel_size=2, stride=2) if name == "max" else nn.AvgPool2d(kernel_size=2, stride=2)


class LeNet(nn.Module):
    """LeNet-5 (the original uses sigmoid activations and average pooling)."""

    def __init__(self, n_output: int = 10, activation: str = "sigmoid", pool: str = "avg") -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.LazyConv2d(out_channels=6, kernel_size=5, padding=2),
            _activation(activation),
            _pool(pool),
            nn.LazyConv2d(out_channels=16, kernel_size=5),
            _activation(activation),
            _pool(pool),
            nn.Flatten(),
            nn.LazyLinear(out_features=120),
            _activation(activation),
            nn.LazyLinear(out_features=84),
            _activation(activation),
            nn.LazyLinear(out_features=n_output),
        )

    def forward(self, x):
        return self.model(x)


@register_model(
    "lenet",
    family="Classic",
    description="LeNet-5 (LeCun et al., 1998): two 5x5 convolutions with pooling and three dense layers.",
    natural_input=(1, 28, 28),
    default_classes=10,
    options=(
        OptionSpec("activation", "sigmoid", "activation function", choices=("sigmoid", "relu")),
        OptionSpec("pool", "avg", "pooling layer", choices=("avg", "max")),
        init_option("xavier"),
    ),
)
def lenet(*, num_classes: int, input_shape: tuple[int, int, int], activation: str, pool: str) -> nn.Module:
    """Build LeNet-5."""
    return LeNet(num_classes, activation, pool)


def _stem_imagenet() -> list[nn.Module]:
    # The 224-px layout: 11x11/4 stem, 5x5, three 3x3 convolutions, three 3x3/2 max pools.
    return [
        nn.LazyConv2d(out_channels=96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(out_channels=256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(out_channels=384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(out_channels=384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(out_channels=256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    ]  # fmt: skip


def _stem_small() -> list[nn.Module]:
    # The same five convolutions for 28-32 px images: 3x3/1 stem, 2x2/2 pools (32 -> 4).
    return [
        nn.LazyConv2d(out_channels=64, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(out_channels=192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(out_channels=384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(out_channels=256, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(out_channels=256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
    ]  # fmt: skip


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky et al., 2012) with a 224-px ("imagenet") or small-input ("small") stem."""

    def __init__(self, n_output: int = 1000, stem: str = "imagenet", hidden: int = 4096, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(*(_stem_imagenet() if stem == "imagenet" else _stem_small()))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.LazyLinear(out_features=hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.LazyLinear(out_features=hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.LazyLinear(out_features=n_output),
        )  # fmt: skip

    def forward(self, x):
        return self.classifier(self.features(x))


def _alexnet_input(options: dict[str, Any]) -> tuple[int, int, int]:
    return (3, 224, 224) if options["stem"] == "imagenet" else (3, 32, 32)


# Smallest height/width whose feature map survives each stem (11x11/4 conv and three 3x3/2 pools: 65 px;
# three 2x2/2 pools: 8 px); tests/test_models_registry.py checks both edges.
ALEXNET_MIN_INPUT = {"imagenet": 65, "small": 8}


def _alexnet_hint(options: dict[str, Any]) -> str:
    if options["stem"] == "imagenet":
        return (
            f"use the small-input stem (`--set stem=small`, for 28-32 px images) or an input of at least "
            f"{ALEXNET_MIN_INPUT['imagenet']} px"
        )
    return f"use an input of at least {ALEXNET_MIN_INPUT['small']} px"


@register_model(
    "alexnet",
    family="Classic",
    description="AlexNet (2012): the 224-px layout (11x11/4 stem) or a small-input stem for 28-32 px images.",
    natural_input=(3, 224, 224),
    default_classes=1000,
    options=(
        OptionSpec("stem", "imagenet", "input stem: 224-px layout or 28-32 px images", choices=("imagenet", "small")),
        OptionSpec("hidden", 4096, "width of the two hidden dense layers", validate=positive_int,
                   allowed="an integer >= 1"),
        OptionSpec("dropout", 0.5, "dropout probability in the classifier", validate=fraction,
                   allowed="a number in [0, 1)"),
        init_option("he"),
    ),
    input_for=_alexnet_input,
    too_small_hint=_alexnet_hint,
)
def alexnet(*, num_classes: int, input_shape: tuple[int, int, int], stem: str, hidden: int,
            dropout: float) -> nn.Module:
    """Build AlexNet."""
    return AlexNet(num_classes, stem, hidden, dropout)
