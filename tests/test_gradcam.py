"""Grad-CAM checked on paper on a tiny network; feature maps, filters and the explain bundle on a trained LeNet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from analysis_support import LenetRun, lenet_digits_run
from PIL import Image
from torch import nn

from workbench.analysis.explain import explain_image
from workbench.analysis.features import conv_filters, feature_maps
from workbench.analysis.gradcam import conv_layer_names, default_layer, find_layer, grad_cam, resolve_class
from workbench.analysis.inference import load_images, preprocess
from workbench.errors import InvalidOptionError, UnknownNameError, WorkbenchError
from workbench.training.restore import RestoredRun, restore_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Tiny(nn.Module):
    """conv (2 maps) → global average pool → linear, with weights set by hand.

    Map 0 = the image x, map 1 = 1 - x (a 1x1 conv: weights 1 and -1, biases 0 and 1; with `k=2` a 2x2 stride-2
    conv averaging each block instead). Logits: class 0 = 2·mean(map 0) + mean(map 1), class 1 = mean(map 1).
    """

    def __init__(self, k: int = 1, relu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, k, stride=k)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1).expand(2, 1, k, k) / (k * k))
            self.conv.bias.copy_(torch.tensor([0.0, 1.0]))
            self.fc.weight.copy_(torch.tensor([[2.0, 1.0], [0.0, 1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


X = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4) / 15   # 0 .. 1


def test_gradcam_on_a_network_checked_on_paper() -> None:
    net = Tiny().eval()
    x = X[0, 0].numpy()
    # class 0: d logit / d map = (2, 1) / 16 everywhere -> cam = (2x + (1 - x)) / 16 = (x + 1) / 16
    cam = grad_cam(net, X)   # default layer: the only convolution; default class: the predicted one (0)
    assert cam.layer == "conv" and cam.class_index == cam.predicted_index == 0
    assert np.allclose(cam.weights, [2 / 16, 1 / 16])
    assert np.allclose(cam.cam, (x + 1) / 16, atol=1e-7)
    assert np.allclose(cam.heatmap, (x + 1) / 2, atol=1e-6)   # divided by its maximum (x = 1)
    # logits: mean(x) + 1 = 1.5 and 1 - mean(x) = 0.5 -> p(class 0) = sigmoid(1)
    assert cam.class_probability == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-6)
    # class 1: weights (0, 1/16) -> cam = (1 - x) / 16, largest at x = 0
    cam1 = grad_cam(net, X, class_index=1)
    assert cam1.class_index == 1 and cam1.predicted_index == 0
    assert np.allclose(cam1.heatmap, 1 - x, atol=1e-6)
    assert cam1.class_probability == pytest.approx(1 - cam.class_probability, rel=1e-5)
    assert cam.activations.shape == (2, 4, 4) and np.allclose(cam.activations[1], 1 - x)


def test_gradcam_upsamples_a_coarse_layer_and_survives_in_place_activations() -> None:
    net = Tiny(k=2).eval()   # 2x2 maps of block means m: cam = (2m + 1 - m) / 4 = (m + 1) / 4
    m = X[0, 0].view(2, 2, 2, 2).mean(dim=(1, 3)).numpy()
    cam = grad_cam(net, X)
    assert np.allclose(cam.cam, (m + 1) / 4, atol=1e-6)
    assert cam.heatmap.shape == (4, 4) and cam.heatmap.max() == pytest.approx(1.0) and cam.heatmap.min() >= 0
    signed = X * 2 - 1   # negative pixels: an in-place ReLU after the conv would overwrite a kept activation
    plain, inplace = Tiny().eval(), Tiny(relu=True).eval()
    plain.act = nn.ReLU(inplace=False)
    a, b = grad_cam(plain, signed), grad_cam(inplace, signed)
    assert np.array_equal(a.activations, b.activations) and (a.activations < 0).any()
    assert np.allclose(a.heatmap, b.heatmap)


def test_layer_and_class_names() -> None:
    net = Tiny()
    assert conv_layer_names(net) == ["conv"] and default_layer(net) == "conv"
    assert find_layer(net, "fc") is net.fc
    with pytest.raises(UnknownNameError, match="Did you mean: conv"):
        find_layer(net, "convv")
    with pytest.raises(InvalidOptionError, match="feature maps"):
        grad_cam(net, X, layer="fc")
    with_aux = nn.Module()
    with_aux.trunk = nn.Conv2d(1, 2, 3)
    with_aux.aux1 = nn.Sequential(nn.Conv2d(2, 2, 1))   # GoogLeNet-style head: skipped (idle in eval mode)
    assert conv_layer_names(with_aux) == ["trunk", "aux1.0"] and default_layer(with_aux) == "trunk"
    with pytest.raises(WorkbenchError, match="no convolution"):
        default_layer(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)))
    assert resolve_class(("cat", "dog"), "dog") == 1 and resolve_class(("cat", "dog"), "0") == 0
    assert resolve_class(("cat", "dog"), None) is None
    with pytest.raises(UnknownNameError, match="Did you mean: dog"):
        resolve_class(("cat", "dog"), "dgo")


def test_filters_as_colour_images_or_per_channel() -> None:
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3))
    first = conv_filters(rgb)
    assert first.layer == "0" and first.rgb and first.weight.shape == (4, 3, 3, 3)
    images = first.images()
    assert images.shape == (4, 3, 3, 3) and images.min() == 0.0 and images.max() == 1.0
    deep = conv_filters(rgb, "2")
    assert not deep.rgb and deep.images().shape == (5, 4, 3, 3)
    with pytest.raises(InvalidOptionError, match="not a convolution"):
        conv_filters(rgb, "1")
    fm = feature_maps(rgb, torch.rand(1, 3, 8, 8), "1")
    assert fm.type == "ReLU" and fm.maps.shape == (4, 6, 6) and fm.maps.min() >= 0
    flat = feature_maps(nn.Sequential(nn.Flatten(), nn.Linear(12, 7)), torch.rand(1, 3, 2, 2), "1")
    assert flat.maps.shape == (7, 1, 1) and flat.shape == (7,)


@pytest.fixture(scope="module")
def restored(tmp_path_factory: pytest.TempPathFactory) -> RestoredRun:
    run: LenetRun = lenet_digits_run(tmp_path_factory)
    return restore_run(run.run_id, workspace=run.workspace)


def test_explain_an_image_with_a_trained_lenet(restored: RestoredRun, tmp_path: Path) -> None:
    path = tmp_path / "seven.png"
    Image.fromarray(np.kron(np.eye(8, dtype=np.uint8)[::-1] * 255, np.ones((3, 3), np.uint8))).save(path)
    ex = explain_image(restored, path)
    last_conv = conv_layer_names(restored.model)[-1]
    assert ex.gradcam.layer == last_conv and ex.class_name == ex.prediction.predicted
    assert ex.gradcam.heatmap.shape == restored.preprocessing.image_size
    assert ex.gradcam.heatmap.min() >= 0 and ex.gradcam.heatmap.max() <= 1
    assert ex.gradcam.predicted_probability == pytest.approx(ex.prediction.probability, abs=1e-5)
    assert ex.features.maps.shape[0] == find_layer(restored.model, last_conv).out_channels
    assert ex.filters is not None and ex.filters.layer == last_conv
    assert ex.view.shape == (*restored.preprocessing.image_size, 1)
    other = explain_image(restored, path, layer=conv_layer_names(restored.model)[0], class_name="3")
    assert other.class_name == "3" and other.gradcam.class_index == 3
    x = preprocess(restored, load_images(restored, [path]))
    direct = grad_cam(restored.model, x, other.gradcam.layer, 3)
    assert np.allclose(direct.heatmap, other.gradcam.heatmap)
    with pytest.raises(UnknownNameError, match="Did you mean"):
        explain_image(restored, path, layer="model.99")
    with pytest.raises(UnknownNameError):
        explain_image(restored, path, class_name="eleven")
