"""The `init` architecture option: He / Glorot initialisation for the lecture networks without batch norm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.models import build_model, get_spec
from workbench.models.init import initialize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _option_default(arch: str) -> str:
    return next(o.default for o in get_spec(arch).options if o.name == "init")


@pytest.mark.parametrize(("arch", "default"), [("lenet", "xavier"), ("alexnet", "he"), ("vgg_cifar", "he"),
                                               ("vgg16", "he"), ("nin", "he"), ("googlenet", "he")])
def test_lecture_networks_default_to_an_activation_aware_init(arch: str, default: str) -> None:
    assert _option_default(arch) == default


def test_he_init_draws_weights_with_the_relu_variance() -> None:
    torch.manual_seed(0)
    model = build_model("vgg_cifar", num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs[2:]:  # enough weights per layer for a tight estimate
        fan_in = conv.weight[0].numel()
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
        assert conv.bias is None or not conv.bias.any()


def test_pytorch_choice_keeps_the_framework_default() -> None:
    torch.manual_seed(0)
    model = build_model("vgg_cifar", num_classes=10, options={"init": "pytorch"})
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    fan_in = conv.weight[0].numel()
    # kaiming_uniform_(a=sqrt(5)): uniform on +-1/sqrt(fan_in), std 1/sqrt(3 fan_in)
    assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.05)
    assert conv.bias is not None and conv.bias.abs().max() > 0


def test_xavier_init_for_lenet() -> None:
    torch.manual_seed(0)
    model = build_model("lenet", num_classes=10)
    dense = next(m for m in model.modules() if isinstance(m, nn.Linear))
    fan_out, fan_in = dense.weight.shape
    assert dense.weight.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.05)


@pytest.mark.parametrize("arch", ["vgg_cifar", "nin"])
def test_he_init_lets_the_input_reach_the_logits(arch: str) -> None:
    """At PyTorch's default init the logits of these networks barely depend on the image; that is why they sat at
    chance on a folder of letters."""
    inputs = torch.randn(16, 3, 32, 32)

    def spread(scheme: str) -> float:
        torch.manual_seed(0)
        model = build_model(arch, num_classes=10, input_shape=(3, 32, 32), options={"init": scheme}).eval()
        with torch.no_grad():
            return model(inputs).std(dim=0).mean().item()

    default, he = spread("pytorch"), spread("he")
    assert he > 100 * default, (default, he)
    assert he > 1e-2


def test_init_does_not_change_the_parameter_count() -> None:
    counts = {scheme: sum(p.numel() for p in build_model("nin", num_classes=10, options={"init": scheme}).parameters())
              for scheme in ("he", "xavier", "pytorch")}  # fmt: skip
    assert len(set(counts.values())) == 1


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(WorkbenchError, match="init"):
        build_model("nin", num_classes=10, options={"init": "orthogonal"})


def test_initialize_pytorch_leaves_weights_untouched() -> None:
    layer = nn.Linear(8, 4)
    before = layer.weight.detach().clone()
    initialize(layer, "pytorch")
    assert torch.equal(layer.weight, before)


def test_options_recorded_before_init_existed_mean_pytorchs_default() -> None:
    from workbench.models.init import as_recorded

    assert as_recorded("nin", {"head": "gap"}) == {"head": "gap", "init": "pytorch"}
    assert as_recorded("nin", {"init": "he"}) == {"init": "he"}
    assert as_recorded("resnet18", {}) == {}                  # no init option: nothing added
    assert as_recorded("no-such-net", {"a": 1}) == {"a": 1}   # left to the caller's own checks


def test_compare_counts_an_old_run_only_as_the_network_it_was() -> None:
    """A NiN run recorded before the option (PyTorch's init) is not "the same network" as today's He-initialised
    NiN, but is the same as NiN with init=pytorch."""
    from types import SimpleNamespace

    from workbench.analysis.compare import CompareRow, _with_runs
    from workbench.models import resolve_options

    old = SimpleNamespace(arch="nin", arch_options={"stem": "cifar", "dropout": 0.5, "head": "gap"},
                          best_val_accuracy=0.5)

    def row(init: str) -> CompareRow:
        return CompareRow(arch="nin", options=resolve_options("nin", {"init": init}), input=[3, 32, 32], classes=10,
                          params=0, mult_adds=0, params_mb=0.0, activations_mb=0.0, conv_layers=0, linear_layers=0,
                          receptive_field=None)

    assert _with_runs(row("he"), [old]).runs is None
    assert _with_runs(row("pytorch"), [old]).runs == 1


def test_a_model_whose_weights_are_loaded_next_skips_the_draw() -> None:
    """Restoring and importing runs load weights over the model: drawing He weights first would be wasted work."""
    torch.manual_seed(0)
    framework = build_model("nin", num_classes=10, options={"init": "pytorch"})
    torch.manual_seed(0)
    skipped = build_model("nin", num_classes=10, initialize_weights=False)
    assert all(torch.equal(a, b) for a, b in zip(framework.state_dict().values(), skipped.state_dict().values()))


def test_an_old_run_keeps_its_experiment_identity() -> None:
    """Experiment variants and their stored runs are matched by identity: both sides read old options alike."""
    from types import SimpleNamespace

    from workbench.models import resolve_options
    from workbench.training.config import TrainConfig
    from workbench.training.experiment_status import identity, record_identity

    config = TrainConfig().to_dict()
    old = SimpleNamespace(arch="nin", arch_options={"head": "gap"}, config=config)
    assert record_identity(old) == identity("nin", resolve_options("nin", {"init": "pytorch"}), config)  # type: ignore[arg-type]
