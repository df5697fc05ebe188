"""torchvision sets read from tiny files written in their real on-disk formats; download with progress/cancel."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.data import availability, download, formats, load_splits
from workbench.errors import DataUnavailableError

RNG = np.random.default_rng(0)


def _cifar_batch(path: Path, n: int, label_key: str, num_classes: int) -> tuple[np.ndarray, list[int]]:
    data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in RNG.integers(0, num_classes, size=n)]
    with open(path, "wb") as f:
        pickle.dump({"batch_label": "test", label_key: labels, "data": data, "filenames": [f"{i}.png" for i in range(n)]},
                    f, protocol=2)
    return data, labels


def _idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _write_cifar10(root: Path) -> tuple[np.ndarray, list[int]]:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    first = None
    for i in range(1, 6):
        got = _cifar_batch(base / f"data_batch_{i}", 4, "labels", 10)
        first = first or got
    _cifar_batch(base / "test_batch", 3, "labels", 10)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)], "num_vis": 3072}, f, protocol=2)
    assert first is not None
    return first


def test_cifar10_python_batches(tmp_path: Path) -> None:
    assert availability("cifar10", tmp_path) == "needs download"
    data, labels = _write_cifar10(tmp_path)
    assert availability("cifar10", tmp_path) == "on disk"
    s = load_splits("cifar10", root=tmp_path)
    assert s.train.images.shape == (20, 3, 32, 32) and s.train.images.dtype == torch.uint8
    assert len(s.val) == 3
    assert torch.equal(s.train.images[:4], torch.from_numpy(data.reshape(4, 3, 32, 32)))
    assert s.train.labels[:4].tolist() == labels
    assert s.classes == tuple(f"c{i}" for i in range(10))   # from batches.meta


def test_cifar100_python_files(tmp_path: Path) -> None:
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    data, labels = _cifar_batch(base / "train", 6, "fine_labels", 100)
    _cifar_batch(base / "test", 2, "fine_labels", 100)
    s = load_splits("cifar100", root=tmp_path)
    assert len(s.classes) == 100 and s.classes[0] == "apple"
    assert s.train.labels.tolist() == labels
    assert torch.equal(s.train.images.reshape(6, -1), torch.from_numpy(data))


def test_cifar_reader_refuses_code_in_pickles(tmp_path: Path) -> None:
    base = tmp_path / "cifar-10-batches-py"
    _write_cifar10(tmp_path)
    with open(base / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": print}, f)
    with pytest.raises(DataUnavailableError, match="could not be read"):
        load_splits("cifar10", root=tmp_path)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_mnist_family_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    train = RNG.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    ytrain = RNG.integers(0, 10, size=7).astype(np.uint8)
    # Mixed: some files plain, some still .gz (as downloaded) — both are read.
    _idx(raw / "train-images-idx3-ubyte", train, gz=True)
    _idx(raw / "train-labels-idx1-ubyte", ytrain, gz=False)
    assert availability(name, tmp_path) == "needs download"
    _idx(raw / "t10k-images-idx3-ubyte", train[:2], gz=False)
    _idx(raw / "t10k-labels-idx1-ubyte", ytrain[:2], gz=True)
    assert availability(name, tmp_path) == "on disk"
    s = load_splits(name, root=tmp_path)
    assert s.train.images.shape == (7, 1, 28, 28)
    assert torch.equal(s.train.images[:, 0], torch.from_numpy(train))
    assert s.train.labels.tolist() == ytrain.tolist() and len(s.val) == 2


def test_emnist_is_transposed_upright_and_split_option(tmp_path: Path) -> None:
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    img = RNG.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    for part in ("train", "test"):
        _idx(raw / f"emnist-digits-{part}-images-idx3-ubyte", img, gz=True)
        _idx(raw / f"emnist-digits-{part}-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8), gz=True)
    with pytest.raises(DataUnavailableError):
        load_splits("emnist", root=tmp_path)   # default split 'balanced' is absent
    s = load_splits("emnist", root=tmp_path, options={"split": "digits"})
    assert len(s.classes) == 10
    assert torch.equal(s.train.images[0, 0], torch.from_numpy(img[0].T.copy()))


def test_truncated_idx_is_reported(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem, arr in (("train", np.zeros((2, 28, 28))), ("t10k", np.zeros((2, 28, 28)))):
        _idx(raw / f"{stem}-images-idx3-ubyte", arr, gz=False)
        _idx(raw / f"{stem}-labels-idx1-ubyte", np.zeros(2), gz=False)
    (raw / "train-images-idx3-ubyte").write_bytes((raw / "train-images-idx3-ubyte").read_bytes()[:100])
    with pytest.raises(DataUnavailableError, match="truncated"):
        load_splits("mnist", root=tmp_path)


def test_svhn_mat_and_stl10_binary(tmp_path: Path) -> None:
    from scipy.io import savemat

    x = RNG.integers(0, 256, size=(32, 32, 3, 4), dtype=np.uint8)
    savemat(tmp_path / "train_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [3]], np.uint8)})
    savemat(tmp_path / "test_32x32.mat", {"X": x[..., :2], "y": np.array([[5], [10]], np.uint8)})
    s = load_splits("svhn", root=tmp_path)
    assert s.train.labels.tolist() == [0, 1, 2, 3] and s.val.labels.tolist() == [5, 0]
    assert torch.equal(s.train.images[1], torch.from_numpy(x[..., 1].transpose(2, 0, 1).copy()))

    base = tmp_path / "stl10_binary"
    base.mkdir()
    imgs = RNG.integers(0, 256, size=(2, 3, 96, 96), dtype=np.uint8)
    for part in ("train", "test"):
        np.ascontiguousarray(imgs.transpose(0, 1, 3, 2)).tofile(base / f"{part}_X.bin")   # column-major
        np.array([1, 10], np.uint8).tofile(base / f"{part}_y.bin")
    s = load_splits("stl10", root=tmp_path)
    assert torch.equal(s.train.images, torch.from_numpy(imgs)) and s.train.labels.tolist() == [0, 9]


def test_download_with_progress_and_extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    src = tmp_path / "src"
    _write_cifar10(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(tvd.CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "data"
    with pytest.raises(DataUnavailableError, match="cancelled"):
        download("cifar10", root, cancel=lambda: True)
    assert not list(root.glob("*.part")) and availability("cifar10", root) == "needs download"
    seen: list[tuple[int, int]] = []
    s = load_splits("cifar10", root=root, download=True, progress=lambda d, t: seen.append((d, t)))
    assert len(s.train) == 20 and availability("cifar10", root) == "on disk"
    assert seen and seen[-1][0] == seen[-1][1] == archive.stat().st_size


def test_fetch_rejects_bad_checksum_and_tries_mirrors(tmp_path: Path) -> None:
    good = tmp_path / "f.bin"
    good.write_bytes(b"x" * 3000)
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DataUnavailableError, match="checksum"):
        formats.fetch([good.as_uri()], dest, "0" * 32)
    assert not dest.exists()
    md5 = hashlib.md5(good.read_bytes()).hexdigest()
    n = formats.fetch([(tmp_path / "missing.bin").as_uri(), good.as_uri()], dest, md5)
    assert n == 3000 and dest.read_bytes() == good.read_bytes()


def test_svhn_without_scipy_says_pip_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "train_32x32.mat").write_bytes(b"x")
    (tmp_path / "test_32x32.mat").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # makes `from scipy.io import loadmat` raise ImportError
    with pytest.raises(DataUnavailableError, match="pip install scipy"):
        load_splits("svhn", root=tmp_path)


def test_fetch_keeps_no_partial_file_when_progress_raises(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"\1" * (3 << 20))

    class StopError(Exception):
        pass

    def progress(done: int, total: int) -> None:
        raise StopError

    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(StopError):
        formats.fetch([source.as_uri()], dest, None, progress=progress)
    assert not dest.exists() and not dest.with_name("file.bin.part").exists()
