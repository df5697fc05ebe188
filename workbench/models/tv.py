"""torchvision's classification models, registered as `tv:<name>`.

Pretrained weights come only from the local torch hub cache; nothing is ever downloaded here.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from workbench.errors import InvalidOptionError, WorkbenchError
from workbench.models.registry import OptionSpec, register_model

PREFIX = "tv:"
_INPUT = {"inception_v3": (3, 299, 299)}
_HEAD_WORDS = ("classifier", "fc", "head", "heads", "AuxLogits", "aux")


class ChannelAdapter(nn.Module):
    """Maps C input channels to the 3 a torchvision model expects (grayscale is repeated; else a 1x1 conv)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.proj = None if in_channels == 1 else nn.LazyConv2d(out_channels=3, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if self.proj is None else self.proj(x)


class AdaptedInput(nn.Module):
    """A torchvision model behind a ChannelAdapter (used when the input does not have 3 channels)."""

    def __init__(self, in_channels: int, net: nn.Module) -> None:
        super().__init__()
        self.adapter = ChannelAdapter(in_channels)
        self.net = net

    def forward(self, x: torch.Tensor):
        return self.net(self.adapter(x))


def weights_path(name: str) -> tuple[str, Path]:
    """(download URL, cache path) of the DEFAULT pretrained weights of torchvision model `name`."""
    weights = tvm.get_model_weights(name).DEFAULT
    return weights.url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _replace_heads(model: nn.Module, num_classes: int) -> None:
    """Swap every 1000-way output layer of a pretrained model for a fresh `num_classes`-way one."""
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            qualified = f"{parent_name}.{child_name}" if parent_name else child_name
            if not any(w in qualified.split(".")[0] or w in child_name for w in _HEAD_WORDS):
                continue
            if isinstance(child, nn.Linear) and child.out_features == 1000:
                setattr(parent, child_name, nn.Linear(child.in_features, num_classes))
            elif isinstance(child, nn.Conv2d) and child.out_channels == 1000:
                kernel = (child.kernel_size[0], child.kernel_size[1])
                setattr(parent, child_name, nn.Conv2d(child.in_channels, num_classes, kernel))


# Models whose pretrained weights fix the input size (position embeddings / attention partitions).
_FIXED_SIZE_PREFIXES = ("vit_", "maxvit_")


def pretrained_input_size(name: str) -> tuple[int, int] | None:
    """(H, W) that `name`'s DEFAULT weights require exactly, or None when they accept other sizes."""
    if not name.startswith(_FIXED_SIZE_PREFIXES):
        return None
    size = tvm.get_model_weights(name).DEFAULT.meta.get("min_size")
    return (int(size[0]), int(size[1])) if size else None


def _check_input(name: str, height: int, width: int, weights: str | None) -> None:
    """Refuse, before building, input sizes a ViT / MaxViT cannot take (one clear sentence)."""
    fixed = pretrained_input_size(name) if weights is not None else None
    if fixed is not None and (height, width) != fixed:
        raise InvalidOptionError(
            f"tv:{name} with pretrained weights needs exactly a {fixed[0]}x{fixed[1]} input (its weights fix the "
            f"size), got {height}x{width}: use --input 3,{fixed[0]},{fixed[1]} or build without weights."
        )
    if name.startswith("vit_") and weights is None:
        patch = int(name.rsplit("_", 1)[1])
        if height != width or height % patch:
            raise InvalidOptionError(
                f"tv:{name} needs a square input whose height and width are multiples of {patch}, got "
                f"{height}x{width} (e.g. 224x224)."
            )


def _build(name: str, num_classes: int, input_shape: tuple[int, int, int], weights: str | None) -> nn.Module:
    channels, height, width = input_shape
    _check_input(name, height, width, weights)
    kwargs: dict[str, object] = {}
    if name.startswith("vit_") and weights is None:
        kwargs["image_size"] = height
    if name == "maxvit_t" and weights is None:  # with weights torchvision fixes it (checked above)
        kwargs["input_size"] = (height, width)
    if name in ("googlenet", "inception_v3") and weights is None:
        kwargs["init_weights"] = True
    on_meta = torch.get_default_device().type == "meta"
    if weights is None:
        model = tvm.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    else:
        url, path = weights_path(name)
        if not path.is_file():
            raise WorkbenchError(
                f"Pretrained weights for tv:{name} are not in the local cache: download {url} and put it at "
                f"{path} (or build without weights)."
            )
        if on_meta:  # summaries need shapes only: never read the weight file onto the meta device
            model = tvm.get_model(name, weights=None, **kwargs)
        else:
            model = tvm.get_model(name, weights="DEFAULT", **kwargs)
        if num_classes != 1000:
            _replace_heads(model, num_classes)
    return model if channels == 3 else AdaptedInput(channels, model)


def _register(name: str) -> None:
    def builder(*, num_classes: int, input_shape: tuple[int, int, int], weights: str | None) -> nn.Module:
        return _build(name, num_classes, input_shape, weights)

    register_model(
        PREFIX + name,
        family="torchvision",
        description=f"torchvision's {name} (torchvision.models.{name}).",
        natural_input=_INPUT.get(name, (3, 224, 224)),
        default_classes=1000,
        options=(
            OptionSpec("weights", None, "pretrained weights: None or 'DEFAULT' (only from the local cache)",
                       choices=(None, "DEFAULT")),
        ),
    )(builder)


def _regnet_config_on_cpu() -> None:
    """RegNet derives its block widths with small tensors and `.tolist()`, which fails on the meta device.

    Compute that configuration on the CPU (a few dozen numbers) so RegNets can be summarised on meta.
    This is the one documented exception to "summaries allocate no real tensors": a RegNet summary creates
    these few tiny CPU tensors (no weights, no activations); tests/test_summary_meta.py checks the rule on
    the other families, tv:resnet18 included, and leaves RegNet out for this reason.
    """
    from torchvision.models import regnet

    original = regnet.BlockParams.from_init_params.__func__
    if getattr(original, "_workbench_cpu", False):
        return

    def from_init_params(cls, *args, **kwargs):
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    from_init_params._workbench_cpu = True  # type: ignore[attr-defined]
    regnet.BlockParams.from_init_params = classmethod(from_init_params)


_regnet_config_on_cpu()


def torchvision_names() -> list[str]:
    """torchvision's classification model names."""
    return list(tvm.list_models(module=tvm))


for _name in torchvision_names():
    _register(_name)
