"""Data set registry, bundled digits, fake data and the missing-data messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workbench.data import (
    AVAILABILITY,
    DataSplits,
    InMemoryImages,
    availability,
    download,
    get_dataset,
    list_datasets,
    load_splits,
)
from workbench.errors import DataUnavailableError, InvalidOptionError, UnknownNameError

TV_SETS = ["mnist", "fashion_mnist", "kmnist", "emnist", "cifar10", "cifar100", "svhn", "stl10"]


def test_registry_lists_every_dataset_with_consistent_specs() -> None:
    names = list_datasets()
    assert names[0] == "digits"
    assert set(names) == {"digits", "imagefolder", "fake", *TV_SETS}
    for name in names:
        spec = get_dataset(name)
        assert spec.name == name
        assert len(spec.mean) == len(spec.std) == spec.channels
        assert all(s > 0 for s in spec.std)
        assert spec.kind in ("bundled", "torchvision", "folder", "synthetic")
    assert get_dataset("cifar100").num_classes == 100
    assert get_dataset("emnist").num_classes == 47
    assert get_dataset("digits").hflip is False and get_dataset("cifar10").hflip is True
    assert get_dataset("CIFAR10").name == "cifar10" and get_dataset("Fashion-MNIST").name == "fashion_mnist"


def test_unknown_dataset_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="cifar10"):
        get_dataset("cifar")


def test_availability_without_files(tmp_path: Path) -> None:
    for name in TV_SETS:
        assert availability(name, tmp_path) == "needs download"
    assert availability("digits", tmp_path) == "bundled"
    assert availability("fake") == "bundled"
    assert availability("imagefolder") == "needs folder"
    assert availability("imagefolder", tmp_path) == "needs folder"
    assert all(availability(n, tmp_path) in AVAILABILITY for n in list_datasets())


def test_missing_data_message_names_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError) as err:
        load_splits("cifar10", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "data_batch_1" in msg and "--download" in msg
    with pytest.raises(DataUnavailableError) as err:
        load_splits("mnist", root=tmp_path)
    assert str(tmp_path / "MNIST" / "raw") in str(err.value) and "train-images-idx3-ubyte" in str(err.value)
    with pytest.raises(DataUnavailableError, match="--data-root"):
        load_splits("imagefolder", root=tmp_path)


def test_digits_real_data_and_deterministic_split() -> None:
    a = load_splits("digits", seed=0)
    assert isinstance(a, DataSplits) and isinstance(a.train, InMemoryImages)
    assert len(a.train) + len(a.val) == 1797
    assert (len(a.train), len(a.val)) == (get_dataset("digits").train_size, get_dataset("digits").val_size)
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape[1:] == (1, 8, 8)
    assert a.train.labels.dtype == torch.int64
    # The real UCI digits: 10 balanced classes, pixel values 0..16 scaled to 0..255.
    all_labels = torch.cat([a.train.labels, a.val.labels])
    assert torch.bincount(all_labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert int(a.train.images.max()) == 255 and int(a.train.images.min()) == 0
    # Every class is in validation (stratified), the split is fixed per seed and differs across seeds.
    assert set(a.val.labels.tolist()) == set(range(10))
    b = load_splits("digits", seed=0)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    c = load_splits("digits", seed=1)
    assert not torch.equal(a.val.images, c.val.images)
    # Train and val are disjoint: no validation image appears in train.
    tr = {bytes(t.flatten().tolist()) + bytes([int(y)]) for t, y in zip(a.train.images, a.train.labels)}
    dup = sum(bytes(t.flatten().tolist()) + bytes([int(y)]) in tr for t, y in zip(a.val.images, a.val.labels))
    assert dup < 3   # a handful of identical 8x8 bitmaps exist in the raw data; the indices never overlap


def test_val_fraction_validated() -> None:
    with pytest.raises(InvalidOptionError):
        load_splits("digits", val_fraction=1.5)


def test_fake_matches_torchvision_fakedata() -> None:
    from torchvision.datasets import FakeData
    from torchvision.transforms.functional import pil_to_tensor

    s = load_splits("fake", options={"train_size": 20, "val_size": 5, "image_shape": (3, 16, 16), "num_classes": 7})
    assert s.train.images.shape == (20, 3, 16, 16) and len(s.val) == 5 and len(s.classes) == 7
    ref = FakeData(size=20, image_size=(3, 16, 16), num_classes=7, random_offset=0)
    for i in (0, 7, 19):
        img, target = ref[i]
        assert torch.equal(pil_to_tensor(img), s.train.images[i]) and target == int(s.train.labels[i])
    with pytest.raises(InvalidOptionError):
        load_splits("fake", options={"bogus": 1})


def test_download_cannot_target_imagefolder(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError):
        download("imagefolder", tmp_path)
    download("digits", tmp_path)   # bundled: nothing to do, no error
