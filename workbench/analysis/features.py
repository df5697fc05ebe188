"""What a layer computes for an image (feature maps) and what a convolution looks for (its filters)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.analysis.gradcam import default_layer, find_layer
from workbench.errors import InvalidOptionError


@dataclass(frozen=True, eq=False)
class FeatureMaps:
    """One layer's output for one image."""

    layer: str
    type: str                        # the module's class name, e.g. "Conv2d"
    shape: tuple[int, ...]           # the output shape without the batch dimension
    maps: np.ndarray                 # float32 [C, h, w] (a flat output [F] becomes [F, 1, 1])


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> FeatureMaps:
    """The output of `layer` (default: the last convolution) for image batch `x` [1, C, H, W]."""
    name = layer or default_layer(model)
    target = find_layer(model, name)
    captured: list[torch.Tensor] = []
    owner = threading.get_ident()

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and threading.get_ident() == owner:   # this call's forward only
            captured.append(output.detach().float().clone())   # a copy: later in-place ops leave it alone

    handle = target.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
    if not captured:
        raise InvalidOptionError(f"Layer {name!r} did not produce one tensor for this image; pick another layer.")
    out = captured[-1][0]
    shape = tuple(int(v) for v in out.shape)
    if out.dim() == 3:
        maps = out
    elif out.dim() <= 1:
        maps = out.reshape(-1, 1, 1)
    else:  # e.g. [C, L]: one row per channel
        maps = out.reshape(out.shape[0], 1, -1)
    return FeatureMaps(layer=name, type=type(target).__name__, shape=shape,
                       maps=maps.cpu().numpy().astype(np.float32))


@dataclass(frozen=True, eq=False)
class Filters:
    """A convolution's weights, ready to show."""

    layer: str
    weight: np.ndarray               # float32 [out, in/groups, kh, kw]
    rgb: bool                        # in_channels == 3 (and no groups): each filter is one colour image

    def images(self) -> np.ndarray:
        """Each filter scaled to 0..1 on its own: float32 [out, kh, kw, 3] when `rgb`, else
        [out, in, kh, kw] (one grey tile per input channel, scaled per filter)."""
        w = self.weight
        lo = w.min(axis=(1, 2, 3), keepdims=True)
        span = w.max(axis=(1, 2, 3), keepdims=True) - lo
        scaled = np.divide(w - lo, span, out=np.full_like(w, 0.5), where=span > 0)
        return np.ascontiguousarray(scaled.transpose(0, 2, 3, 1)) if self.rgb else scaled


def conv_filters(model: nn.Module, layer: str | None = None) -> Filters:
    """The filters of convolution `layer` (default: the first convolution, whose filters look at pixels)."""
    name = layer or default_layer(model, last=False)
    target = find_layer(model, name)
    if not isinstance(target, nn.Conv2d):
        raise InvalidOptionError(f"Layer {name!r} is a {type(target).__name__}, not a convolution; it has no "
                                 "filters.")
    w = target.weight.detach().float().cpu().numpy()
    return Filters(layer=name, weight=np.ascontiguousarray(w),
                   rgb=target.in_channels == 3 and target.groups == 1)
