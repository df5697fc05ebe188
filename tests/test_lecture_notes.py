"""Lecture notes: present exactly where the slide differs from the model, with numbers computed from shapes."""

from __future__ import annotations

import json

import pytest
from torch import nn

from workbench.cli import main
from workbench.models import list_models, summarize, summarize_module
from workbench.models import notes as notes_module

# Which notes each own architecture shows at its natural input (each note names its subject).
_EXPECTED = {"vgg": ["\"VGG16\""], "vgg_cifar": ["\"VGG16\""], "vgg16": ["138,423,208"],
             "googlenet": ["no final classifier", "ReLU twice", "InceptionAux", "1×1-convolution"]}  # fmt: skip


@pytest.mark.parametrize("arch", [n for n in list_models() if not n.startswith("tv:")])
def test_notes_exactly_where_the_slide_differs(arch: str) -> None:
    notes = summarize(arch).notes
    expected = _EXPECTED.get(arch, [])
    assert len(notes) == len(expected), notes
    for note, subject in zip(notes, expected, strict=True):
        assert subject in note
        assert note.endswith(".") and note.count(". ") == 0  # one sentence


def test_vgg16_total_only_at_the_lecture_input() -> None:
    (note,) = summarize("vgg16").notes
    assert "138,423,208" in note and "65,664" in note and "138,357,544" in note
    assert 138_423_208 - 138_357_544 == 65_664
    small = summarize("vgg16", input_shape=(3, 32, 32), num_classes=10).notes
    assert small == ("At the lecture's 3×224×224 input with 1,000 classes: 138,357,544 parameters.",)
    assert summarize("vgg16", num_classes=100).notes[0].startswith("At the lecture's")
    # VGG-16 built from the base architecture is the same network: the same note.
    same = summarize("vgg", options={"block_info": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
                                     "classifier_width": 4096}, input_shape=(3, 224, 224), num_classes=1000)  # fmt: skip
    assert same.notes == (note,)
    assert summarize("vgg16", options={"batch_norm": True}).notes == ()


def test_vgg_cifar_name_note_follows_the_network() -> None:
    (note,) = summarize("vgg_cifar").notes
    assert "8 convolutions" in note and "3 dense layers" in note and "13 convolutions" in note
    assert summarize("vgg11", input_shape=(3, 32, 32), num_classes=10).notes == ()  # the real VGG-11 head
    assert summarize("vgg_cifar", options={"classifier_width": 256}).notes == ()


def test_one_by_one_example_is_computed_where_inception_4a_is() -> None:
    s = summarize("googlenet")
    (note,) = [n for n in s.notes if "1×1-convolution" in n]
    direct = summarize_module(nn.Conv2d(480, 48, 5, padding=2), (480, 14, 14)).totals.total_params
    reduced = summarize_module(nn.Sequential(nn.Conv2d(480, 16, 1), nn.Conv2d(16, 48, 5, padding=2)), (480, 14, 14))
    assert (direct, reduced.totals.total_params) == (576_048, 26_944)
    rows = {r.depth_index: r for r in s.layers}
    assert (rows["3-26"].kernel, rows["3-26"].output_shape[1], rows["3-27"].kernel) == ([1, 1], 16, [5, 5])
    assert f"{direct:,}" in note and f"{reduced.totals.total_params:,}" in note and "3-26 and 3-27" in note
    assert "599,040" in note and "35,329" in note and "15,360 + 19,968 = 35,328" in note


def test_googlenet_notes_follow_the_options_and_input() -> None:
    big = summarize("googlenet", input_shape=(3, 128, 128)).notes  # the aux pool runs on 8x8 maps
    assert not any("InceptionAux" in n for n in big)
    assert big[-1] == "At the lecture's 3×32×32 input with 10 classes: 7,188,302 parameters."
    no_aux = summarize("googlenet", options={"aux": False}).notes
    assert len(no_aux) == 3 and not any("InceptionAux" in n for n in no_aux)
    head = next(n for n in summarize("googlenet").notes if "no final classifier" in n)
    assert "7,178,052" in head and "10,250" in head and "1-7" in head


def test_lecture_input_total(monkeypatch: pytest.MonkeyPatch) -> None:
    s = summarize("vgg_cifar", input_shape=(1, 32, 32))
    assert s.notes[-1] == "At the lecture's 3×32×32 input with 10 classes: 9,750,922 parameters."
    assert summarize("nin", input_shape=(1, 28, 28)).notes == (
        "At the lecture's 3×32×32 input with 10 classes: 1,589,926 parameters.",)
    assert summarize("resnet18", num_classes=100).notes[-1].endswith(f"{11_184_650:,} parameters.")
    # Dropout changes no count (still the lecture's network); other options do (no lecture figure then).
    assert summarize("vgg_cifar", input_shape=(1, 32, 32), options={"dropout": 0.2}).notes[-1] == s.notes[-1]
    assert summarize("nin", input_shape=(1, 28, 28), options={"head": "fc"}).notes == ()
    assert summarize("resnet20", input_shape=(1, 28, 28)).notes == ()  # not a lecture network


def test_lecture_input_total_is_cached_and_skipped_at_the_lecture_input() -> None:
    notes_module._lecture_total.cache_clear()
    summarize("nin")
    assert notes_module._lecture_total.cache_info().misses == 0
    summarize("nin", input_shape=(1, 30, 30))
    summarize("nin", input_shape=(1, 28, 28))
    info = notes_module._lecture_total.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_notes_in_json_table_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    s = summarize("vgg_cifar")
    assert s.to_dict()["notes"] == list(s.notes)
    lines = s.format_table().splitlines()
    assert lines[-1] == f"Note: {s.notes[0]}" and lines[-2].startswith("====")
    assert "Note:" not in summarize("lenet").format_table()
    assert main(["summary", "vgg_cifar", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["notes"] == list(s.notes)
    assert main(["summary", "lenet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["notes"] == []
