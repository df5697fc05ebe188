"""Data-set options declared once in the registry: validated, described, and what they make of the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data import get_dataset, list_datasets, load_splits
from workbench.data.registry import data_option_help, dataset_facts, split_sizes
from workbench.errors import InvalidOptionError


def test_every_data_set_declares_its_options() -> None:
    declared = {name: [o.name for o in get_dataset(name).options] for name in list_datasets()}
    assert declared["fake"] == ["train_size", "val_size", "image_shape", "num_classes"]
    assert declared["emnist"] == ["split"]
    assert declared["imagefolder"] == ["image_size", "channels", "streaming", "memory_budget"]
    assert declared["digits"] == [] and declared["cifar10"] == []
    rows = {o.name: o.to_dict() for name in list_datasets() for o in get_dataset(name).options}
    assert json.loads(json.dumps(rows))["image_shape"]["default"] == [3, 32, 32]
    assert get_dataset("emnist").options[0].describe().startswith("one of 'byclass'")
    text = data_option_help()
    assert "fake train_size, val_size, image_shape, num_classes" in text and "emnist split" in text
    assert "imagefolder image_size, channels, streaming, memory_budget" in text


def test_unknown_options_name_the_declared_ones() -> None:
    with pytest.raises(InvalidOptionError, match="use train_size, val_size, image_shape, num_classes"):
        dataset_facts("fake", options={"bogus": 1})
    with pytest.raises(InvalidOptionError, match="digits has no data-set options"):
        load_splits("digits", options={"split": 1})


def test_fake_and_emnist_options_set_shape_and_classes() -> None:
    facts = dataset_facts("fake", options={"image_shape": (1, 28, 28), "num_classes": 5, "train_size": 40})
    assert (facts.channels, facts.size, facts.num_classes, facts.train_size, facts.val_size) == (1, (28, 28), 5, 40,
                                                                                                  1000)
    with pytest.raises(InvalidOptionError, match="C 1 or 3"):
        dataset_facts("fake", options={"image_shape": (2, 8, 8)})
    assert dataset_facts("emnist", options={"split": "digits"}).num_classes == 10
    assert dataset_facts("emnist", options={"split": "letters"}).classes[0] == "a"
    assert dataset_facts("emnist").num_classes == 47
    with pytest.raises(InvalidOptionError, match="EMNIST has no split"):
        dataset_facts("emnist", options={"split": "bogus"})


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_digits_split_sizes_match_the_loaded_splits(fraction: float) -> None:
    facts = dataset_facts("digits", val_fraction=fraction)
    splits = load_splits("digits", val_fraction=fraction)
    assert (facts.train_size, facts.val_size) == (len(splits.train), len(splits.val))
    assert split_sizes({0: 1, 1: 2}, 0.1) == (2, 1)


def _folder(root: Path) -> None:
    for cls, value in (("cat", 40), ("dog", 200)):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((12, 16), value + i, np.uint8)).save(root / cls / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"not a png")


def test_folder_facts_match_what_training_loads(tmp_path: Path) -> None:
    _folder(tmp_path)
    seen: list[tuple[int, int]] = []
    facts = dataset_facts("imagefolder", root=tmp_path, val_fraction=0.2, progress=lambda d, t: seen.append((d, t)))
    splits = load_splits("imagefolder", root=tmp_path, val_fraction=0.2)
    assert facts.classes == splits.classes == ("cat", "dog")
    assert (facts.channels, facts.size) == (splits.spec.channels, splits.spec.size) == (1, (12, 16))
    assert (facts.train_size, facts.val_size) == (len(splits.train), len(splits.val))
    assert facts.skipped == splits.skipped == 1 and seen[-1] == (13, 13)
    sized = dataset_facts("imagefolder", root=tmp_path, options={"image_size": 8, "channels": 3})
    assert (sized.channels, sized.size) == (3, (8, 8))
    auto = load_splits("imagefolder", root=tmp_path, options={"channels": None, "streaming": None,
                                                              "memory_budget": None, "image_size": None})
    assert auto.spec.size == (12, 16) and auto.info["streaming"] is False
    with pytest.raises(Exception, match="cancelled"):
        dataset_facts("imagefolder", root=tmp_path, cancel=lambda: True)
