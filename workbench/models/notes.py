"""Lecture notes: one sentence wherever the "Modern CNNs" slides print something this model does differently.

`lecture_notes(summary)` looks at a finished summary (architecture, resolved options, input, classes, rows)
and returns the notes that apply to exactly that network, in a fixed order. Numbers are computed from the
summary's rows and shapes; the only literals are what the slides print.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.models.summary import LayerRow, ModelSummary

Shape = tuple[int, int, int]

# What the slides print (the figures the notes explain).
SLIDE_VGG16_TOTAL = 138_423_208      # VGG16 table, 3x224x224, 1,000 classes
SLIDE_1X1_TOTAL = 35_329             # "15,360 + 19,969 = 35,329" on the 1x1-convolution slide
# The input and classes of each lecture network's table or training script.
LECTURE_INPUTS: dict[str, tuple[Shape, int]] = {
    "vgg": ((3, 32, 32), 10), "vgg_cifar": ((3, 32, 32), 10), "vgg16": ((3, 224, 224), 1000),
    "nin": ((3, 32, 32), 10), "googlenet": ((3, 32, 32), 10), "resnet": ((3, 32, 32), 10),
    "resnet18": ((3, 32, 32), 10),
}  # fmt: skip
# Options that change no shape or count: the lecture's network with another dropout is still the lecture's.
_NOT_STRUCTURAL = frozenset({"dropout", "aux_dropout"})


def lecture_notes(summary: ModelSummary) -> tuple[str, ...]:
    """The notes for this summary: where the lecture's slide differs from this network, and the lecture-input
    total when the input or classes are not the lecture's."""
    notes: list[str] = []
    for make in (_vgg16_total, _vgg_cifar_name, _googlenet_classifier, _googlenet_relu, _googlenet_aux_pool,
                 _one_by_one_example, _lecture_input):  # fmt: skip
        note = make(summary)
        if note:
            notes.append(note)
    return tuple(notes)


def _base(arch: str) -> str:
    from workbench.models.registry import get_spec

    return get_spec(arch).preset_of or arch


def _count(n: int) -> str:
    return f"{n:,}"


def _shape(shape: Shape | list[int]) -> str:
    return "×".join(str(v) for v in shape)


def _is_vgg(summary: ModelSummary, blocks: Any, width: int) -> bool:
    o = summary.options
    return (_base(summary.arch) == "vgg" and tuple(map(tuple, o.get("block_info", ()))) == blocks
            and o.get("classifier_width") == width and not o.get("batch_norm"))  # fmt: skip


def _vgg16_total(summary: ModelSummary) -> str:
    from workbench.models.vgg import VGG16

    shape, classes = LECTURE_INPUTS["vgg16"]
    if not _is_vgg(summary, VGG16, 4096) or tuple(summary.input_shape) != shape or summary.num_classes != classes:
        return ""
    right = summary.totals.total_params
    return (
        f"The slide's VGG16 total of {_count(SLIDE_VGG16_TOTAL)} counts {_count(SLIDE_VGG16_TOTAL - right)} "
        f"parameters on the max-pool row after conv3-128 (a max pool has none); the right total is {_count(right)}."
    )


def _vgg_cifar_name(summary: ModelSummary) -> str:
    from workbench.models.vgg import VGG16, VGG_CIFAR

    if not _is_vgg(summary, VGG_CIFAR, 512):
        return ""
    convs = sum(1 for r in summary.layers if r.type == "Conv2d")
    dense = sum(1 for r in summary.layers if r.type == "Linear")
    vgg16_convs = sum(n for n, _ in VGG16)
    return (
        f"The slide calls this network \"VGG16\", but it has {convs} convolutions and {dense} dense layers "
        f"({convs + dense} weight layers, VGG-11's convolution layout); VGG-16 has {vgg16_convs} convolutions "
        f"(architecture vgg16)."
    )


def _googlenet_classifier(summary: ModelSummary) -> str:
    if summary.arch != "googlenet":
        return ""
    head = next((r for r in summary.layers if r.depth == 1 and r.type == "Linear"), None)
    if head is None or not head.input_shape or not head.output_shape:
        return ""
    lecture = summary.totals.total_params - head.params
    return (
        f"The lecture's GoogLeNet listing has no final classifier (it returns the {head.input_shape[-1]}-wide "
        f"pooled feature; {_count(lecture)} parameters here without it), so this model adds the "
        f"{head.input_shape[-1]} → {head.output_shape[-1]} linear layer of row {head.depth_index} "
        f"({_count(head.params)} parameters)."
    )


def _googlenet_relu(summary: ModelSummary) -> str:
    if summary.arch != "googlenet":
        return ""
    return (
        "The lecture's conv_blk_2 listing applies ReLU twice after its 3×3 convolution; its table and this "
        "model apply it once, which computes the same thing (ReLU of a ReLU is the ReLU)."
    )


def _children(summary: ModelSummary, parent: LayerRow) -> list[LayerRow]:
    return [r for r in summary.layers if r.parent == parent.index]


def _googlenet_aux_pool(summary: ModelSummary) -> str:
    if summary.arch != "googlenet":
        return ""
    skipped = [r for r in summary.layers if r.type == "InceptionAux"
               and not any(c.type == "AvgPool2d" for c in _children(summary, r))]  # fmt: skip
    if not skipped or not skipped[0].input_shape:
        return ""
    h, w = skipped[0].input_shape[-2:]
    return (
        f"The lecture's InceptionAux listing starts with a 5×5/3 average pool, which cannot run on the {h}×{w} "
        f"maps its heads see at this input; like the lecture's table, this model skips it on maps smaller than 5×5."
    )


def _one_by_one_example(summary: ModelSummary) -> str:
    """The slide's 480x14x14 example is Inception 4a's third branch: 1x1 480 -> 16, then 5x5 16 -> 48."""
    if summary.arch != "googlenet":
        return ""
    convs = [r for r in summary.layers if r.type == "Conv2d" and r.input_shape and r.output_shape and r.kernel]
    for reduce, conv in itertools.pairwise(convs):
        c_in, c_mid = reduce.input_shape[1], reduce.output_shape[1]  # type: ignore[index]
        c_out, k = conv.output_shape[1], conv.kernel[0]  # type: ignore[index]
        if (reduce.kernel, conv.kernel, c_in, c_mid, c_out) != ([1, 1], [5, 5], 480, 16, 48):
            continue
        if reduce.parent != conv.parent or conv.input_shape[1] != c_mid:  # type: ignore[index]
            continue
        direct = c_in * k * k * c_out + c_out
        slide_direct = (c_in * k * k + c_in) * c_out  # the slide adds c_in biases to every filter
        slide_reduce, slide_conv = (c_in + c_in) * c_mid, (c_mid * k * k + c_mid) * c_out
        return (
            f"The 1×1-convolution slide's example ({c_in} channels to {c_out} with a {k}×{k} kernel) is Inception "
            f"4a's rows {reduce.depth_index} and {conv.depth_index}: a direct {k}×{k} convolution has "
            f"{_count(direct)} parameters and the 1×1 reduction to {c_mid} channels then the {k}×{k} has "
            f"{_count(reduce.params)} + {_count(conv.params)} = {_count(reduce.params + conv.params)}, not the "
            f"slide's {_count(slide_direct)} and {_count(SLIDE_1X1_TOTAL)}, which add one bias per input channel "
            f"to every filter ({_count(slide_reduce)} + {_count(slide_conv)} = {_count(slide_reduce + slide_conv)}, "
            f"printed as {_count(SLIDE_1X1_TOTAL)})."
        )
    return ""


def _lecture_input(summary: ModelSummary) -> str:
    from workbench.models.registry import get_spec

    lecture = LECTURE_INPUTS.get(summary.arch)
    if lecture is None:
        return ""
    shape, classes = lecture
    if tuple(summary.input_shape) == shape and summary.num_classes == classes:
        return ""
    defaults = get_spec(summary.arch).defaults()
    if any(summary.options.get(k) != v for k, v in defaults.items() if k not in _NOT_STRUCTURAL):
        return ""  # not the lecture's network: the lecture has no figure for it
    key = tuple(sorted(summary.options.items()))
    total = _lecture_total(summary.arch, key, shape, classes)
    return f"At the lecture's {_shape(shape)} input with {_count(classes)} classes: {_count(total)} parameters."


@lru_cache(maxsize=64)
def _lecture_total(arch: str, options: tuple[tuple[str, Any], ...], shape: Shape, classes: int) -> int:
    """Parameter count of `arch` at the lecture's input, built on the meta device (no weights, no summary)."""
    import torch

    from workbench.models.dryrun import dry_forward
    from workbench.models.registry import construct

    with torch.device("meta"):
        module, shape, _, _ = construct(arch, num_classes=classes, input_shape=shape, options=dict(options))
        dry_forward(module, shape, batch=1, arch=arch)
    return sum(p.numel() for p in module.parameters())
