"""Everything the image inspector (GUI) and `workbench explain` (CLI) show for one image, in one call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from workbench.analysis.features import FeatureMaps, Filters, conv_filters
from workbench.analysis.gradcam import GradCam, default_layer, find_layer, grad_cam, resolve_class
from workbench.analysis.inference import load_images, model_view, preprocess, resolve_run
from workbench.analysis.predict import Prediction, predict_arrays
from workbench.training.restore import RestoredRun


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image seen by one run's model: prediction, Grad-CAM, the layer's feature maps and filters."""

    image: str                       # the file (or caption)
    view: np.ndarray                 # uint8 [H, W, C]: what the model sees (its channels and input size)
    prediction: Prediction           # top-k classes
    gradcam: GradCam                 # for `class_name` (default: the predicted class)
    class_name: str                  # the class explained
    features: FeatureMaps            # the Grad-CAM layer's feature maps
    filters: Filters | None          # `filters_layer`'s filters (default: the Grad-CAM layer when a convolution)


def explain_array(restored: RestoredRun, image: np.ndarray | torch.Tensor, *, caption: str = "",
                  layer: str | None = None, class_name: str | int | None = None, top: int = 5,
                  filters_layer: str | None = None) -> Explanation:
    """Explain an image already decoded in the run's stored format (uint8 [C, h, w])."""
    model = restored.model
    name = layer or default_layer(model)
    find_layer(model, name)   # unknown names fail before any work
    cls = resolve_class(restored.classes, class_name)
    prediction = predict_arrays(restored, [image], [caption], top=top)[0]
    x = preprocess(restored, [image])
    cam = grad_cam(model, x, name, cls)
    maps = cam.activations
    features = FeatureMaps(layer=name, type=type(find_layer(model, name)).__name__, shape=tuple(maps.shape),
                           maps=maps)
    filt_name = filters_layer or (name if isinstance(find_layer(model, name), nn.Conv2d) else None)
    filters = conv_filters(model, filt_name) if filt_name else None
    return Explanation(image=caption, view=model_view(restored, image), prediction=prediction, gradcam=cam,
                       class_name=restored.classes[cam.class_index], features=features, filters=filters)


def explain_image(run: str | RestoredRun, path: Path | str, *, layer: str | None = None,
                  class_name: str | int | None = None, top: int = 5, filters_layer: str | None = None,
                  workspace: Path | str | None = None, checkpoint: str = "best",
                  device: str | torch.device | None = None) -> Explanation:
    """Explain an image file: `layer` (default: the last convolution), `class_name` (a class name or index;
    default: the predicted class). Unknown layer/class names and unreadable files raise WorkbenchErrors."""
    restored = resolve_run(run, workspace=workspace, checkpoint=checkpoint, device=device)
    if layer is not None:
        find_layer(restored.model, layer)
    resolve_class(restored.classes, class_name)
    (image,) = load_images(restored, [path])
    return explain_array(restored, image, caption=str(path), layer=layer, class_name=class_name, top=top,
                         filters_layer=filters_layer)
