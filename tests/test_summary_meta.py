"""Summaries run on the meta device, return plain data, and handle multi-output and batch-norm models."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from workbench.errors import InputTooSmallError
from workbench.models import LayerRow, ModelSummary, ParamRow, Totals, summarize


class _DeviceLog(TorchDispatchMode):
    """Records the device of every tensor any aten op produces (factories included)."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: dict[str, set[str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.devices.setdefault(t.device.type, set()).add(str(func))
        return out


# tv:resnet18 covers torchvision's constructors and init code (RegNet is the documented exception: its block
# widths are computed from a few CPU tensors, see workbench/models/tv.py).
@pytest.mark.parametrize("arch", ["vgg_cifar", "googlenet", "resnet18", "tv:resnet18"])
def test_summaries_allocate_no_real_tensors(arch: str) -> None:
    log = _DeviceLog()
    with log:
        s = summarize(arch)
    assert s.totals.total_params > 1_000_000
    assert "meta" in log.devices  # the mode did see the model being built and run
    assert set(log.devices) == {"meta"}, f"ops produced non-meta tensors: { {k: v for k, v in log.devices.items() if k != 'meta'} }"


def _walk(value: Any) -> None:
    """Fail on anything that is not plain data."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk(v)
    else:
        assert value is None or isinstance(value, (int, float, str, bool)), type(value)


def test_summary_is_plain_data() -> None:
    s = summarize("resnet18")
    assert isinstance(s, ModelSummary) and isinstance(s.totals, Totals)
    assert all(isinstance(r, LayerRow) for r in s.layers) and all(isinstance(p, ParamRow) for p in s.parameters)
    _walk(s.__dict__ | {"layers": [r.__dict__ for r in s.layers], "parameters": [p.__dict__ for p in s.parameters],
                        "totals": s.totals.__dict__})  # fmt: skip
    d = s.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert sum(p.count for p in s.parameters) == s.totals.total_params
    assert all(p.trainable for p in s.parameters)


def test_resnet18_at_32px_batch_norm_on_1x1_maps() -> None:
    s = summarize("resnet18", input_shape=(3, 32, 32), num_classes=10)
    assert s.totals.total_params == 11_184_650  # ResNet-18 body + a 512 -> 10 head
    last_stage = [r for r in s.layers if r.type == "BatchNorm2d"][-1]
    assert last_stage.output_shape == [1, 512, 1, 1]
    assert s.layers[0].input_shape == [1, 3, 32, 32]
    assert s.layers[0].output_shape == [1, 10]
    cifar = summarize("resnet18", options={"stem": "cifar"})
    assert [r for r in cifar.layers if r.type == "BatchNorm2d"][-1].output_shape == [1, 512, 4, 4]


def test_rows_tree_and_names() -> None:
    s = summarize("vgg_cifar")
    root = s.layers[0]
    assert (root.name, root.depth, root.parent, root.depth_index, root.type) == ("", 0, None, "", "VGG")
    conv = s.layers[3]
    assert (conv.name, conv.depth_index, conv.kernel, conv.parent) == ("model.0.0", "3-1", [3, 3], 2)
    assert s.layers[conv.parent].name == "model.0"
    assert abs(sum(r.param_share for r in s.layers if r.is_leaf) - 1.0) < 1e-9
    block = s.layers[2]
    assert block.params == 1_792 and block.mult_adds == 1_835_008  # containers sum their subtree
    assert root.mult_adds == s.totals.mult_adds
    assert next(p for p in s.parameters if p.name == "model.0.0.weight") == ParamRow(
        "model.0.0.weight", [64, 3, 3, 3], 1_728, True, "model.0.0"
    )
    assert s.totals.params_mb == pytest.approx(9_750_922 * 4 / 1e6, abs=0.01)
    assert s.totals.input_size_mb == pytest.approx(0.01, abs=0.005)
    assert s.totals.total_mb >= s.totals.params_mb + s.totals.forward_backward_mb


def test_format_table_depths() -> None:
    s = summarize("vgg_cifar")
    deep, shallow = s.format_table(3), s.format_table(1)
    assert "│    │    └─Conv2d: 3-1" in deep and "1,835,008" in deep
    assert "Conv2d" not in shallow and "Sequential: 1-1" in shallow
    assert "9,750,922" in shallow.split("Sequential: 1-1")[1].splitlines()[0]
    assert "Total params: 9,750,922" in deep and "Total mult-adds: 153,446,410" in deep


def test_changing_options_changes_the_summary() -> None:
    base = summarize("vgg", options={"block_info": ((1, 16), (1, 32))}, input_shape=(3, 32, 32))
    wider = summarize("vgg", options={"block_info": ((1, 16), (1, 64)), "batch_norm": True})
    assert base.totals.total_params != wider.totals.total_params
    assert any(r.type == "BatchNorm2d" for r in wider.layers)
    assert [r.output_shape for r in base.layers if r.type == "MaxPool2d"] == [[1, 16, 16, 16], [1, 32, 8, 8]]


def test_adapts_to_channels_size_and_classes() -> None:
    s = summarize("resnet18", input_shape=(1, 64, 48), num_classes=3)
    assert s.layers[0].input_shape == [1, 1, 64, 48] and s.layers[0].output_shape == [1, 3]
    assert s.layers[3].params == 1 * 64 * 49 + 64


def test_too_small_names_the_layer() -> None:
    with pytest.raises(InputTooSmallError, match=r"features\.5.*MaxPool2d"):
        summarize("alexnet", input_shape=(3, 32, 32))
    with pytest.raises(InputTooSmallError, match="too small for vgg_cifar"):
        summarize("vgg_cifar", input_shape=(3, 16, 16))


def test_googlenet_aux_pool_is_a_row_only_when_it_acts() -> None:
    # 128 px: the aux heads see 8x8 maps, so the 5x5/3 average pool runs (8 -> 2) and shows as a layer row.
    big = summarize("googlenet", input_shape=(3, 128, 128))
    pools = [(r.name, r.depth_index, r.kernel, r.input_shape, r.output_shape) for r in big.layers if r.type == "AvgPool2d"]
    assert pools == [("aux_1.pool", "2-7", [5], [1, 512, 8, 8], [1, 512, 2, 2]),
                     ("aux_2.pool", "2-13", [5], [1, 528, 8, 8], [1, 528, 2, 2])]  # fmt: skip
    conv = next(r for r in big.layers if r.name == "aux_1.conv.0")
    assert conv.input_shape == [1, 512, 2, 2]
    # 32 px (the lecture's table): 2x2 maps, the pool is skipped and adds no row.
    small = summarize("googlenet", input_shape=(3, 32, 32))
    assert not any(r.type == "AvgPool2d" for r in small.layers)
    assert next(r for r in small.layers if r.name == "aux_1.conv").depth_index == "2-7"
