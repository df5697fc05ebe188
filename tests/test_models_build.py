"""Every registered model builds, runs forward and backward on a tiny CPU batch, and trains every parameter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.errors import InputTooSmallError, WorkbenchError
from workbench.models import build_model, get_spec, list_models, split_outputs

# Own architectures at small sizes (width-reducing options keep the default suite fast; the slow sweep below
# builds every model at its natural size and default options).
_FAST = [
    ("lenet", None, {}),
    ("lenet", None, {"activation": "relu", "pool": "max"}),
    ("alexnet", None, {"hidden": 64}),
    ("alexnet", (3, 32, 32), {"stem": "small", "hidden": 64}),
    ("vgg", None, {"block_info": ((1, 8), (2, 16)), "batch_norm": True, "classifier_width": 32}),
    ("vgg_cifar", None, {"classifier_width": 32}),
    *[(n, (3, 32, 32), {"classifier_width": 32, "block_info": ((1, 8), (1, 8), (1, 16), (1, 16), (1, 16))})
      for n in ("vgg11", "vgg13", "vgg16", "vgg19")],
    ("nin", None, {}),
    ("nin", (3, 96, 96), {"stem": "imagenet"}),
    ("googlenet", None, {}),
    ("googlenet", None, {"aux": False}),
    ("resnet18", None, {}),
    ("resnet", (3, 32, 32), {"arch": ((1, 16), (1, 32)), "stem": "cifar"}),
    ("resnet20", (3, 16, 16), {"residual": False}),
]  # fmt: skip
# Two of torchvision's zoo in the default suite; the slow sweep below builds every one.
_TV_SAMPLE = ["tv:mobilenet_v3_small", "tv:squeezenet1_1"]


def _train_step(arch: str, input_shape=None, options=None, classes: int = 5) -> nn.Module:
    model = build_model(arch, num_classes=classes, input_shape=input_shape, options=options)
    shape = input_shape or get_spec(arch).natural_input_for(options)
    assert not any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())
    model.train()
    out = model(torch.randn(2, *shape))
    main, aux = split_outputs(out)
    assert main.shape == (2, classes)
    assert all(a.shape == (2, classes) for a in aux)
    loss = nn.functional.cross_entropy(main, torch.tensor([0, 1]))
    for a in aux:
        loss = loss + 0.3 * nn.functional.cross_entropy(a, torch.tensor([0, 1]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{arch}: no gradient for {missing[:5]}"
    return model


@pytest.mark.parametrize(("arch", "shape", "options"), _FAST)
def test_own_models_train_step(arch: str, shape, options: dict) -> None:
    _train_step(arch, shape, options)


@pytest.mark.parametrize("arch", _TV_SAMPLE)
def test_torchvision_sample_train_step(arch: str) -> None:
    _train_step(arch)


def test_every_registered_model_is_covered() -> None:
    covered = {a for a, _, _ in _FAST}
    own = [n for n in list_models() if not n.startswith("tv:")]
    # resnet34 (ImageNet widths) and the deeper CIFAR ResNets (resnet20's blocks, repeated) only in the slow sweep
    assert set(own) - covered == {"resnet34", "resnet32", "resnet44", "resnet56", "resnet110"}


@pytest.mark.slow
@pytest.mark.parametrize("arch", [n for n in list_models() if not n.startswith("tv:")])
def test_own_models_natural_size_slow(arch: str) -> None:
    _train_step(arch)


@pytest.mark.slow
@pytest.mark.parametrize("arch", list_models("tv:*"))
def test_every_torchvision_model_slow(arch: str) -> None:
    _train_step(arch)


def test_torchvision_googlenet_aux_outputs() -> None:
    # torchvision's namedtuple output (main + two aux heads) at a reduced size to keep the suite fast.
    model = _train_step("tv:googlenet", input_shape=(3, 64, 64))
    assert len(split_outputs(model(torch.randn(2, 3, 64, 64)))[1]) == 2


def test_googlenet_outputs_by_mode() -> None:
    model = build_model("googlenet", num_classes=4)
    x = torch.randn(2, 3, 32, 32)
    assert isinstance(model(x), tuple) and len(model(x)) == 3
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 4)
    no_aux = build_model("googlenet", num_classes=4, options={"aux": False})
    assert no_aux(x).shape == (2, 4)
    assert sum(p.numel() for p in no_aux.parameters()) < sum(p.numel() for p in model.parameters())


def test_googlenet_aux_pools_on_large_maps() -> None:
    # At 96 px the aux input is 6x6, so the 5x5/3 pool runs (-> 1x1) and the aux FC sees 128 features.
    model = build_model("googlenet", num_classes=4, input_shape=(3, 96, 96))
    assert model.aux_1.fc[0].in_features == 128
    assert build_model("googlenet", num_classes=4).aux_1.fc[0].in_features == 512


def test_build_does_not_touch_batch_norm_statistics() -> None:
    model = build_model("resnet", options={"arch": ((1, 8),), "stem": "cifar"})
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [m.num_features for m in norms] == [64, 8, 8]  # stem, then the projected 8-channel stage
    for bn in norms:
        assert torch.equal(bn.running_mean, torch.zeros(bn.num_features)) and int(bn.num_batches_tracked) == 0
        assert torch.equal(bn.running_var, torch.ones(bn.num_features))
    assert model.training


def test_input_too_small_is_a_clear_error() -> None:
    with pytest.raises(InputTooSmallError) as info:
        build_model("alexnet", input_shape=(3, 32, 32))
    message = str(info.value)
    assert "features.5" in message and "MaxPool2d" in message and "3x32x32" in message
    assert "\n" not in message
    with pytest.raises(InputTooSmallError, match="lenet"):
        build_model("lenet", input_shape=(1, 4, 4))


def test_torchvision_channels_and_classes() -> None:
    model = build_model("tv:squeezenet1_1", num_classes=3, input_shape=(1, 64, 64))
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 3)
    from workbench.models import summarize

    vit = summarize("tv:vit_b_32", num_classes=3, input_shape=(3, 64, 64))  # ViT told its image size
    assert vit.layers[0].output_shape == [1, 3]


def test_pretrained_weights_only_from_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    # Any download attempt fails the test, from the very first cache miss on.
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("download attempted"))
    with pytest.raises(WorkbenchError, match=r"not in the local cache.*resnet18-.*\.pth"):
        build_model("tv:resnet18", options={"weights": "DEFAULT"})
    # Put a state dict where torchvision's cache expects it: it is loaded, nothing is downloaded.
    from workbench.models.tv import weights_path

    _url, path = weights_path("squeezenet1_1")
    path.parent.mkdir(parents=True)
    reference = build_model("tv:squeezenet1_1")
    torch.save(reference.state_dict(), path)
    loaded = build_model("tv:squeezenet1_1", options={"weights": "DEFAULT"})
    assert torch.equal(loaded.features[0].weight, reference.features[0].weight)
    head = build_model("tv:squeezenet1_1", num_classes=7, options={"weights": "DEFAULT"})
    assert torch.equal(head.features[0].weight, reference.features[0].weight)
    assert head(torch.randn(2, 3, 224, 224)).shape == (2, 7)


@pytest.mark.parametrize(
    ("arch", "shape", "options", "match"),
    [
        # torchvision's own constructor checks (ValueError / AssertionError) become one clear sentence.
        ("tv:maxvit_t", (3, 32, 32), {}, r"^tv:maxvit_t cannot be built for a 3x32x32 input \(.*partition size 7\); "
         r"use its natural input 3x224x224"),
        ("tv:vit_b_16", (3, 30, 30), {}, r"^tv:vit_b_16 needs a square input whose height and width are multiples "
         r"of 16, got 30x30"),
        # Pretrained ViTs take exactly their size: refused before building (and before the weights cache).
        ("tv:vit_b_16", (3, 256, 256), {"weights": "DEFAULT"}, r"^tv:vit_b_16 with pretrained weights needs exactly "
         r"a 224x224 input"),
        ("tv:maxvit_t", (3, 448, 448), {"weights": "DEFAULT"}, r"needs exactly a 224x224 input"),
    ],
)
def test_constructor_shape_errors_are_clear(arch: str, shape, options: dict, match: str) -> None:
    from workbench.errors import InvalidOptionError
    from workbench.models import summarize

    for run in (lambda: summarize(arch, input_shape=shape, options=options),
                lambda: build_model(arch, input_shape=shape, options=options)):  # fmt: skip
        with pytest.raises(InvalidOptionError, match=match) as caught:
            run()
        assert "\n" not in str(caught.value)


def test_construction_failure_is_wrapped(monkeypatch) -> None:
    """Any ValueError / AssertionError / RuntimeError raised while building becomes InvalidOptionError."""
    from workbench.errors import InvalidOptionError
    from workbench.models import registry

    for exc in (ValueError("bad size. More text."), AssertionError("odd"), RuntimeError("boom")):
        def failing(exc: Exception = exc, **kwargs: object) -> None:
            raise exc

        monkeypatch.setitem(registry._BUILDERS, "lenet", failing)
        with pytest.raises(InvalidOptionError, match=r"^lenet cannot be built for a 1x28x28 input \((bad size|odd|boom)\);"):
            build_model("lenet")
