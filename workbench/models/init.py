"""Weight initialisation of the lecture networks: the scheme is an architecture option (`init`).

PyTorch's default initialisation (uniform, scaled for no activation) shrinks the signal through each ReLU layer: in
the lecture's networks without batch norm (AlexNet, VGG, NiN, GoogLeNet) the logits at the start barely depend on the
input (their spread across images is 1e-5 to 1e-7), and on anything harder than the bundled digits training never
leaves chance. He initialisation keeps the variance through ReLUs; Glorot (xavier) through sigmoid/tanh (LeNet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def as_recorded(arch: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options read back from a run or experiment recorded before `init` existed: those models were initialised by
    PyTorch's default, so a missing `init` means "pytorch" there (a new run's default would be another network)."""
    from workbench.errors import WorkbenchError
    from workbench.models.registry import get_spec

    recorded = dict(options)
    try:
        has_init = any(o.name == "init" for o in get_spec(arch).options)
    except WorkbenchError:   # an architecture this version does not know: leave it to the caller's checks
        return recorded
    if has_init and "init" not in recorded:
        recorded["init"] = "pytorch"
    return recorded
