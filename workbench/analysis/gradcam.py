"""Grad-CAM (Selvaraju et al., 2017), hand-written with a forward hook and `torch.autograd.grad`.

For class c and a layer with feature maps A_k: weights a_k = spatial mean of d(logit_c)/dA_k, map =
ReLU(sum_k a_k A_k), bilinearly resized to the input size and divided by its maximum (0..1; all zeros when
nothing speaks for the class). Layers are named by their qualified module name (as in the model summary).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import InvalidOptionError, UnknownNameError, WorkbenchError, suggest


def layer_names(model: nn.Module) -> list[str]:
    """Qualified names of every submodule (the model itself excluded), in definition order."""
    return [name for name, _ in model.named_modules() if name]


def conv_layer_names(model: nn.Module) -> list[str]:
    """Qualified names of the 2-D convolutions, in definition order."""
    return [name for name, m in model.named_modules() if name and isinstance(m, nn.Conv2d)]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name`; UnknownNameError listing close names otherwise."""
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    names = layer_names(model)
    hint = suggest(name, names) or f" Layers include: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}."
    raise UnknownNameError(f"No layer {name!r} in this model.{hint}")


def _in_aux_head(name: str) -> bool:
    return any(part.lower().startswith("aux") for part in name.split("."))


def default_layer(model: nn.Module, *, last: bool = True) -> str:
    """The last (or first) 2-D convolution's name, leaving out auxiliary heads (GoogLeNet's `aux_1`/`aux1`,
    which do not run in eval mode); WorkbenchError for a model without one."""
    convs = [n for n in conv_layer_names(model) if not _in_aux_head(n)]
    if not convs:
        raise WorkbenchError("This model has no convolution; name a layer with --layer.")
    return convs[-1] if last else convs[0]


def resolve_class(classes: Sequence[str], name: str | int | None) -> int | None:
    """A class given by name (or by index, as an int or a digit string not naming a class); None stays None."""
    if name is None:
        return None
    names = [str(c) for c in classes]
    if isinstance(name, str) and name in names:
        return names.index(name)
    text = str(name).strip()
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    hint = suggest(str(name), names) or f" Classes: {', '.join(names[:12])}{' …' if len(names) > 12 else ''}."
    raise UnknownNameError(f"No class {name!r} in this run.{hint}")


@dataclass(frozen=True, eq=False)
class GradCam:
    """A Grad-CAM heat map for one image, one layer and one class, and what the model predicted."""

    layer: str
    class_index: int                 # the class explained
    class_probability: float         # its softmax probability
    predicted_index: int             # the model's top class
    predicted_probability: float
    heatmap: np.ndarray              # float32 [H, W] in 0..1 at the input size
    cam: np.ndarray                  # float32 [h, w] at the layer's resolution (ReLU'd, not normalised)
    activations: np.ndarray          # float32 [C, h, w] the layer's feature maps for this image
    weights: np.ndarray              # float32 [C] the channel weights a_k


def _main_logits(output: Any) -> torch.Tensor:
    from workbench.models import split_outputs

    main, _ = split_outputs(output)
    return main


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str | None = None, class_index: int | None = None) -> GradCam:
    """Grad-CAM of image batch `x` [1, C, H, W] (preprocessed) at `layer` (default: the last convolution)
    for `class_index` (default: the predicted class). The model is used as it is (eval mode expected) in fp32."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidOptionError(f"Grad-CAM takes one image [1, C, H, W], got {tuple(x.shape)}.")
    name = layer or default_layer(model)
    target = find_layer(model, name)
    captured: list[torch.Tensor] = []
    owner = threading.get_ident()

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        # Only this call's forward: another thread may run the same model meanwhile (e.g. an evaluation).
        if isinstance(output, torch.Tensor) and threading.get_ident() == owner:
            captured.append(output)
            return output.clone()   # later in-place ops (ReLU(inplace=True)) must not change what we keep
        return None

    handle = target.register_forward_hook(hook)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            logits = _main_logits(model(x.detach().clone())).float()
            if not captured:
                raise InvalidOptionError(f"Layer {name!r} did not produce one feature-map tensor for this image.")
            act = captured[-1]
            if act.dim() != 4:
                raise InvalidOptionError(f"Grad-CAM needs a layer with feature maps [C, h, w]; {name!r} outputs "
                                         f"{list(act.shape[1:])}. Pick a convolution or a block.")
            probs = torch.softmax(logits.detach(), dim=1)[0]
            predicted = int(probs.argmax())
            cls = predicted if class_index is None else int(class_index)
            if not 0 <= cls < logits.shape[1]:
                raise InvalidOptionError(f"class index {cls} is outside 0..{logits.shape[1] - 1}.")
            (grad,) = torch.autograd.grad(logits[0, cls], act)
    finally:
        handle.remove()
    a = act.detach()[0].float()
    weights = grad[0].float().mean(dim=(1, 2))
    cam = torch.relu((weights.view(-1, 1, 1) * a).sum(dim=0))
    up = torch.nn.functional.interpolate(cam[None, None], size=tuple(x.shape[-2:]), mode="bilinear",
                                         align_corners=False)[0, 0].clamp_min(0)
    peak = float(up.max())
    heat = up / peak if peak > 0 else torch.zeros_like(up)
    return GradCam(layer=name, class_index=cls, class_probability=float(probs[cls]), predicted_index=predicted,
                   predicted_probability=float(probs[predicted]), heatmap=heat.cpu().numpy().astype(np.float32),
                   cam=cam.cpu().numpy().astype(np.float32), activations=a.cpu().numpy().astype(np.float32),
                   weights=weights.cpu().numpy().astype(np.float32))
