"""torchvision's classification sets, read from a data root in torchvision's own folder layout.

Files are detected without loading them, read fast from their raw formats, and downloaded only when asked.
Validation uses each set's official test split.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data import formats
from workbench.data.registry import Cancel, DataFacts, DataOption, DatasetSpec, register_dataset, spec_facts
from workbench.data.sources import DataSplits, InMemoryImages, Progress
from workbench.errors import DataUnavailableError, InvalidOptionError, suggest

_CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
# (train, test) images per EMNIST split (Cohen et al. 2017, table II).
_EMNIST_SIZES = {"byclass": (697932, 116323), "bymerge": (697932, 116323), "balanced": (112800, 18800),
                 "letters": (124800, 20800), "digits": (240000, 40000), "mnist": (60000, 10000)}
EMNIST_OPTIONS = (DataOption("split", "balanced", "which EMNIST split: byclass (62 classes), bymerge (47), "
                             "balanced (47), letters (26), digits (10) or mnist (10)", choices=_EMNIST_SPLITS),)


@dataclass(frozen=True)
class _Layout:
    folder: str                 # relative to the data root ("" = the root itself)
    train: tuple[str, ...]      # files that must exist (".gz" variants accepted for idx files)
    test: tuple[str, ...]
    archive: str                # what the user would download, for the error message


# CIFAR-100 fine label names (alphabetical, as in the set's meta file).
_CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm"
)


def _emnist_classes(split: str) -> tuple[str, ...]:
    """Class names per EMNIST split, as torchvision names them ('letters' starts with 'N/A')."""
    import string

    digits, upper, lower = string.digits, string.ascii_uppercase, string.ascii_lowercase
    merged = tuple(digits + upper) + tuple("abdefghnqrt")
    return {
        "byclass": tuple(digits + upper + lower), "bymerge": merged, "balanced": merged,
        "letters": ("N/A",) + tuple(lower), "digits": tuple(digits), "mnist": tuple(digits),
    }[split]


def _mnist_layout(folder: str, prefix_train: str = "train", prefix_test: str = "t10k", archive: str = "") -> _Layout:
    return _Layout(
        folder=f"{folder}/raw",
        train=(f"{prefix_train}-images-idx3-ubyte", f"{prefix_train}-labels-idx1-ubyte"),
        test=(f"{prefix_test}-images-idx3-ubyte", f"{prefix_test}-labels-idx1-ubyte"),
        archive=archive or "the four *-ubyte.gz files",
    )


def _layout(name: str, split: str = "balanced") -> _Layout:
    if name == "cifar10":
        return _Layout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                       "cifar-10-python.tar.gz")
    if name == "cifar100":
        return _Layout("cifar-100-python", ("train",), ("test",), "cifar-100-python.tar.gz")
    if name == "mnist":
        return _mnist_layout("MNIST")
    if name == "fashion_mnist":
        return _mnist_layout("FashionMNIST")
    if name == "kmnist":
        return _mnist_layout("KMNIST")
    if name == "emnist":
        return _mnist_layout("EMNIST", f"emnist-{split}-train", f"emnist-{split}-test",
                             f"the emnist-{split}-*-ubyte.gz files from EMNIST's gzip.zip")
    if name == "svhn":
        return _Layout("", ("train_32x32.mat",), ("test_32x32.mat",), "train_32x32.mat and test_32x32.mat")
    if name == "stl10":
        return _Layout("stl10_binary", ("train_X.bin", "train_y.bin"), ("test_X.bin", "test_y.bin"),
                       "stl10_binary.tar.gz")
    raise KeyError(name)


def _emnist_split(options: Mapping[str, Any]) -> str:
    split = str(options.get("split", "balanced"))
    if split not in _EMNIST_SPLITS:
        raise InvalidOptionError(f"EMNIST has no split '{split}'.{suggest(split, list(_EMNIST_SPLITS))} "
                                 f"Choose one of {', '.join(_EMNIST_SPLITS)}.")
    return split


def _missing(spec: DatasetSpec, root: Path, split: str = "balanced") -> list[str]:
    lay = _layout(spec.name, split)
    base = root / lay.folder if lay.folder else root
    return [f for f in lay.train + lay.test if not formats.exists_maybe_gz(base / f)]


def _read(spec: DatasetSpec, root: Path, split: str) -> tuple[InMemoryImages, InMemoryImages, tuple[str, ...]]:
    lay = _layout(spec.name, split)
    base = root / lay.folder if lay.folder else root
    name = spec.name
    classes = spec.classes
    if name in ("cifar10", "cifar100"):
        key = "labels" if name == "cifar10" else "fine_labels"
        parts = [formats.read_cifar_batch(base / f, key) for f in lay.train]
        train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        test = formats.read_cifar_batch(base / lay.test[0], key)
        meta_file, meta_key = ("batches.meta", "label_names") if name == "cifar10" else ("meta", "fine_label_names")
        names = formats.read_cifar_meta(base / meta_file, meta_key)
        if names:
            classes = tuple(names)
    elif name in ("mnist", "fashion_mnist", "kmnist", "emnist"):
        train = (formats.read_idx(base / lay.train[0]), formats.read_idx(base / lay.train[1]))
        test = (formats.read_idx(base / lay.test[0]), formats.read_idx(base / lay.test[1]))
        if name == "emnist":
            # EMNIST stores images transposed; show them upright. 'letters' labels run 1..26.
            train = (np.swapaxes(train[0], 1, 2), train[1])
            test = (np.swapaxes(test[0], 1, 2), test[1])
            classes = _emnist_classes(split)
            if split == "letters":
                train, test = (train[0], train[1] - 1), (test[0], test[1] - 1)
                classes = classes[1:]
    elif name == "svhn":
        train = formats.read_svhn_mat(base / lay.train[0])
        test = formats.read_svhn_mat(base / lay.test[0])
    elif name == "stl10":
        train = formats.read_stl10(base / lay.train[0], base / lay.train[1])
        test = formats.read_stl10(base / lay.test[0], base / lay.test[1])
    else:  # pragma: no cover
        raise KeyError(name)
    tr = InMemoryImages(*formats.to_tensors(*train))
    te = InMemoryImages(*formats.to_tensors(*test))
    for part in (tr, te):
        if part.labels.numel() and (int(part.labels.min()) < 0 or int(part.labels.max()) >= len(classes)):
            raise DataUnavailableError(f"{spec.title} files in {base} have labels outside 0..{len(classes) - 1}; "
                                       "they are corrupt or of another data set, replace them.")
    return tr, te, classes


def _download(spec: DatasetSpec, root: Path, split: str, progress: Progress | None,
              cancel: Callable[[], bool] | None) -> None:
    import torchvision.datasets as tvd

    name = spec.name
    root.mkdir(parents=True, exist_ok=True)
    done = 0
    if name in ("cifar10", "cifar100", "stl10"):
        cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "stl10": tvd.STL10}[name]
        archive = root / cls.filename
        if not archive.is_file():
            formats.fetch([cls.url], archive, cls.tgz_md5, progress=progress, cancel=cancel, what=spec.title)
        formats.extract_tar(archive, root)
        archive.unlink(missing_ok=True)
    elif name in ("mnist", "fashion_mnist", "kmnist"):
        cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "kmnist": tvd.KMNIST}[name]
        raw = root / _layout(name).folder
        for filename, md5 in cls.resources:
            target = raw / filename
            if formats.exists_maybe_gz(raw / filename.removesuffix(".gz")):
                continue
            done += formats.fetch([m + filename for m in cls.mirrors], target, md5, progress=progress,
                                  cancel=cancel, done_before=done, what=spec.title)
    elif name == "emnist":
        raw = root / _layout(name, split).folder
        archive = raw / "gzip.zip"
        if not archive.is_file():
            formats.fetch([tvd.EMNIST.url], archive, tvd.EMNIST.md5, progress=progress, cancel=cancel,
                          what=spec.title)
        lay = _layout(name, split)
        formats.extract_zip_members(archive, [f + ".gz" for f in lay.train + lay.test], raw)
    elif name == "svhn":
        for key in ("train", "test"):
            url, filename, md5 = tvd.SVHN.split_list[key]
            if not (root / filename).is_file():
                done += formats.fetch([url], root / filename, md5, progress=progress, cancel=cancel,
                                      done_before=done, what=spec.title)


class TorchvisionBackend:
    """Reads and downloads one of torchvision's sets in torchvision's folder layout under the data root."""

    def availability(self, spec: DatasetSpec, root: Path | None) -> str:
        assert root is not None
        return "on disk" if not _missing(spec, root) else "needs download"

    def download(self, spec: DatasetSpec, root: Path, progress: Progress | None,
                 cancel: Callable[[], bool] | None, split: str = "balanced") -> None:
        if not _missing(spec, root, split):
            return
        _download(spec, root, split, progress, cancel)
        missing = _missing(spec, root, split)
        if missing:
            raise DataUnavailableError(f"{spec.title} was downloaded but {', '.join(missing)} is still missing "
                                       f"in {root}; delete the partial files and try again.")

    def facts(self, spec: DatasetSpec, root: Path | None, *, val_fraction: float, options: Mapping[str, Any],
              progress: Progress | None, cancel: Cancel | None) -> DataFacts:
        spec.check_option_names(options)
        if spec.name != "emnist":
            return spec_facts(spec)
        split = _emnist_split(options)
        classes = _emnist_classes(split)
        classes = classes[1:] if split == "letters" else classes   # 'letters' labels run 1..26
        train, test = _EMNIST_SIZES[split]
        return DataFacts(spec.name, classes, spec.channels, spec.size, train, test)

    def load(self, spec: DatasetSpec, root: Path | None, *, download: bool, seed: int, val_fraction: float,
             progress: Progress | None, options: Mapping[str, Any]) -> DataSplits:
        assert root is not None
        spec.check_option_names(options)
        split = _emnist_split(options) if spec.name == "emnist" else "balanced"
        missing = _missing(spec, root, split)
        if missing:
            if not download:
                lay = _layout(spec.name, split)
                where = root / lay.folder if lay.folder else root
                raise DataUnavailableError(
                    f"{spec.title} was not found: put {', '.join(missing)} (from {lay.archive}) in {where}, "
                    "or pass --download to fetch it.")
            self.download(spec, root, progress, None, split)
        try:
            train, val, classes = _read(spec, root, split)
        except DataUnavailableError:  # already says what to do (e.g. install SciPy for SVHN)
            raise
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
            raise DataUnavailableError(f"{spec.title} files under {root} could not be read ({exc}); "
                                       "delete them and download again.") from exc
        info = {"split": split} if spec.name == "emnist" else {}
        return DataSplits(spec=spec, classes=classes, train=train, val=val, skipped=0, info=info)


def _spec(name: str, title: str, desc: str, classes: tuple[str, ...], channels: int, size: int,
          mean: tuple[float, ...], std: tuple[float, ...], hflip: bool, pad: int, n: tuple[int, int]) -> DatasetSpec:
    return DatasetSpec(name=name, title=title, description=desc, classes=classes, channels=channels,
                       size=(size, size), mean=mean, std=std, hflip=hflip, kind="torchvision",
                       crop_padding=pad, train_size=n[0], val_size=n[1],
                       options=EMNIST_OPTIONS if name == "emnist" else ())


_DIGITS = tuple(str(i) for i in range(10))
_SPECS = (
    _spec("mnist", "MNIST", "70,000 handwritten digits, 28x28 gray.", _DIGITS, 1, 28,
          (0.1307,), (0.3081,), False, 2, (60000, 10000)),
    _spec("fashion_mnist", "Fashion-MNIST", "70,000 Zalando clothing images, 28x28 gray, 10 classes.",
          ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"), 1, 28, (0.2860,), (0.3530,), True, 2, (60000, 10000)),
    _spec("kmnist", "Kuzushiji-MNIST", "70,000 cursive Japanese (Kuzushiji) characters, 28x28 gray, 10 classes.",
          ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), 1, 28, (0.1918,), (0.3483,), False, 2,
          (60000, 10000)),
    _spec("emnist", "EMNIST (balanced)", "Handwritten digits and letters, 28x28 gray; the 'balanced' split "
          "(47 classes) unless options pick another.", tuple(
              "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ("a", "b", "d", "e", "f", "g", "h", "n", "q", "r", "t"),
          1, 28, (0.1751,), (0.3332,), False, 2, (112800, 18800)),
    _spec("cifar10", "CIFAR-10", "60,000 tiny color photos, 32x32, 10 classes.", _CIFAR10_CLASSES, 3, 32,
          (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True, 4, (50000, 10000)),
    _spec("cifar100", "CIFAR-100", "60,000 tiny color photos, 32x32, 100 fine classes.",
          _CIFAR100_CLASSES, 3, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True, 4,
          (50000, 10000)),
    _spec("svhn", "SVHN", "Street View House Numbers: cropped digits, 32x32 color.", _DIGITS, 3, 32,
          (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), False, 4, (73257, 26032)),
    _spec("stl10", "STL-10", "13,000 labeled color photos, 96x96, 10 classes (unlabeled part unused).",
          ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"), 3, 96,
          (0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713), True, 12, (5000, 8000)),
)

for _s in _SPECS:
    register_dataset(_s, TorchvisionBackend())
