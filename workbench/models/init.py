"""Weight initialisation of the lecture networks: the scheme is an architecture option (`init`).

PyTorch's default initialisation (uniform, scaled for no activation) shrinks the signal through each ReLU layer: in
the lecture's networks without batch norm (AlexNet, VGG, NiN, GoogLeNet) the logits at the start barely depend on the
input (their spread across images is 1e-5 to 1e-7), and on anything harder than the bundled digits training never
leaves chance. He initialisation keeps the variance through ReLUs; Glorot (xavier) through sigmoid/tanh (LeNet).
"""

from __future__ import annotations

from torch import nn

from workbench.models.registry import OptionSpec

INIT_SCHEMES = ("he", "xavier", "pytorch")


def init_option(default: str) -> OptionSpec:
    """The `init` option of an architecture, defaulting to `default`."""
    return OptionSpec("init", default, "weight initialisation: he (for ReLU), xavier (for sigmoid) or pytorch "
                      "(PyTorch's default, which starves deep networks without batch norm)", choices=INIT_SCHEMES)


def initialize(module: nn.Module, scheme: str) -> None:
    """Re-draw every convolution's and dense layer's weights with `scheme` (biases zero); "pytorch" keeps them."""
    if scheme == "pytorch":
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            if scheme == "he":
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
