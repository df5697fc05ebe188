"""ResNet's plain twin, option-A shortcuts, the CIFAR ResNets of He et al. 2016 and NiN's dense head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.errors import InvalidOptionError
from workbench.models import build_model, get_spec, summarize
from workbench.models.resnet import Residual, ShortcutA

# He et al. 2016, Table 6: 6n + 2 layers, 0.27 M / 0.46 M / 0.66 M / 0.85 M / 1.7 M parameters (option A).
_CIFAR = [("resnet20", 3, 269_722, "0.27"), ("resnet32", 5, 464_154, "0.46"), ("resnet44", 7, 658_586, "0.66"),
          ("resnet56", 9, 853_018, "0.85"), ("resnet110", 18, 1_727_962, "1.7")]  # fmt: skip


def _by_hand(n: int, classes: int = 10) -> int:
    """Option-A CIFAR ResNet: bias-free 3x3 convs, batch norm (2 per channel), no shortcut parameters."""
    stem = 3 * 16 * 9 + 2 * 16
    total, c_in = stem, 16
    for c in (16, 32, 64):
        for _ in range(n):
            total += c_in * c * 9 + c * c * 9 + 4 * c
            c_in = c
    return total + 64 * classes + classes


@pytest.mark.parametrize(("arch", "n", "total", "paper"), _CIFAR)
def test_cifar_resnet_parameter_counts(arch: str, n: int, total: int, paper: str) -> None:
    s = summarize(arch)
    assert s.input_shape == [3, 32, 32] and s.num_classes == 10
    assert s.totals.total_params == total == _by_hand(n)
    assert f"{total / 1e6:.{len(paper.split('.')[1])}f}" == paper
    convs = [r for r in s.layers if r.type == "Conv2d"]
    assert len(convs) + 1 == 6 * n + 2  # weight layers: convs + the linear head
    assert not any(p.name.endswith("bias") and "conv" in p.name for p in s.parameters)  # no conv biases
    assert sum(1 for r in s.layers if r.type == "ShortcutA") == 2
    assert get_spec(arch).preset_of == "resnet"


def test_resnet18_unchanged_by_the_new_options() -> None:
    s = summarize("resnet18")
    assert (s.totals.total_params, s.totals.mult_adds) == (11_184_650, 37_075_082)
    assert sum(1 for r in s.layers if r.name.endswith("conv3")) == 3  # the lecture's 1x1 projections


@pytest.mark.parametrize(("arch", "layers"), [("resnet20", 20), ("resnet56", 56)])
def test_plain_twins_have_no_shortcuts(arch: str, layers: int) -> None:
    plain = summarize(arch, options={"residual": False})
    assert not any(r.type == "ShortcutA" or r.name.endswith("conv3") for r in plain.layers)
    weight_layers = sum(1 for r in plain.layers if r.type in ("Conv2d", "Linear"))
    assert weight_layers == layers
    # Option A has no parameters, so the plain twin has exactly as many as the residual network.
    assert plain.totals.total_params == summarize(arch).totals.total_params


def test_plain_resnet18_drops_exactly_the_projection_parameters() -> None:
    plain = summarize("resnet18", options={"residual": False})
    projections = sum(c_in * c_out + c_out for c_in, c_out in ((64, 128), (128, 256), (256, 512)))
    assert plain.totals.total_params == 11_184_650 - projections == 11_011_722
    assert not any(p.name.endswith(("conv3.weight", "conv3.bias")) for p in plain.parameters)
    assert summarize("resnet18", options={"shortcut": "A"}).totals.total_params == 11_011_722


def test_plain_block_adds_nothing_and_residual_block_adds_its_input() -> None:
    x = torch.rand(2, 8, 6, 6)
    for shortcut, expected in (("none", torch.zeros_like(x)), ("projection", torch.relu(x))):
        block = Residual(8, shortcut=shortcut)
        block(x)  # materialise the lazy layers
        for conv in (block.conv1, block.conv2):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        block.bn1.reset_running_stats()
        block.bn2.reset_running_stats()
        block.eval()
        assert torch.equal(block(x), expected)


def test_option_a_subsamples_and_zero_pads_channels() -> None:
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).reshape(2, 16, 4, 4)
    y = ShortcutA(32, 2)(x)
    assert y.shape == (2, 32, 2, 2)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()
    assert sum(p.numel() for p in ShortcutA(32, 2).parameters()) == 0


def test_resnet20_trains_a_step_with_real_weights() -> None:
    model = build_model("resnet20", num_classes=4)
    out = model(torch.randn(2, 3, 32, 32))
    nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    assert out.shape == (2, 4)
    assert all(p.grad is not None for p in model.parameters())
    plain = build_model("resnet20", options={"residual": False})
    assert plain(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_option_a_refuses_shrinking_widths() -> None:
    with pytest.raises(InvalidOptionError, match=r"shortcut 'A'.*projection"):
        summarize("resnet", options={"arch": ((1, 64), (1, 32)), "shortcut": "A"})
    with pytest.raises(InvalidOptionError, match="'shortcut'"):
        summarize("resnet20", options={"shortcut": "B"})
    # The plain twin has no shortcut, so any widths are fine.
    summarize("resnet", options={"arch": ((1, 64), (1, 32)), "shortcut": "A", "residual": False})


def test_nin_dense_head_shows_what_global_average_pooling_saves() -> None:
    gap, fc = summarize("nin"), summarize("nin", options={"head": "fc"})
    assert gap.totals.total_params == 1_589_926
    head = fc.layers[-1]
    assert (head.type, head.input_shape, head.output_shape) == ("Linear", [1, 90], [1, 10])
    assert fc.totals.total_params - gap.totals.total_params == head.params == 10 * 3 * 3 * 10 + 10
    assert not any(r.type == "AdaptiveAvgPool2d" for r in fc.layers)
    big_gap = summarize("nin", options={"stem": "imagenet"}, num_classes=1000)
    big_fc = summarize("nin", options={"stem": "imagenet", "head": "fc"}, num_classes=1000)
    assert big_fc.totals.total_params - big_gap.totals.total_params == 1000 * 5 * 5 * 1000 + 1000
    model = build_model("nin", options={"head": "fc"}, num_classes=3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
