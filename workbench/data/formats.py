"""Fast readers for the on-disk formats torchvision downloads, and a cancellable downloader.

Everything is read straight into numpy/torch arrays (no per-image PIL work).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from workbench.errors import DataUnavailableError

# ---------------------------------------------------------------------------------------------- readers


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches: plain containers and numpy arrays only, never arbitrary callables."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),   # protocol-2 pickles written by Python 3 store bytes this way
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _open_maybe_gz(path: Path) -> bytes:
    """Bytes of `path`, or of `path`.gz decompressed when only that exists."""
    if path.is_file():
        return path.read_bytes()
    gz = path.with_name(path.name + ".gz")
    with gzip.open(gz, "rb") as f:
        return f.read()


def exists_maybe_gz(path: Path) -> bool:
    """True when `path` or `path`.gz is a file."""
    return path.is_file() or path.with_name(path.name + ".gz").is_file()


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: (uint8 [N,3,32,32], int64 [N])."""
    with open(path, "rb") as f:
        entry = _ArrayUnpickler(f, encoding="latin1").load()
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(entry[label_key], dtype=np.int64)
    return data, labels


def read_cifar_meta(path: Path, key: str) -> list[str] | None:
    """Class names from a CIFAR meta file, or None when it is absent or unreadable."""
    try:
        with open(path, "rb") as f:
            meta = _ArrayUnpickler(f, encoding="latin1").load()
        return [str(n) for n in meta[key]]
    except (OSError, KeyError, pickle.UnpicklingError, EOFError):
        return None


_IDX_DTYPES: dict[int, np.dtype] = {code: np.dtype(kind) for code, kind in (
    (0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8"))}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST family), plain or .gz: magic 0 0 <type> <ndim>, big-endian int32 dims, data."""
    raw = _open_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    arr = np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(tuple(dims))


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN `*_32x32.mat`: (uint8 [N,3,32,32], int64 [N]) with label 10 mapped to 0 (as torchvision)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataUnavailableError(
            f"Reading SVHN ({path.name}) needs SciPy, which is not installed; run `pip install scipy`.") from None

    mat = loadmat(str(path))
    data = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8))
    labels = mat["y"].astype(np.int64).reshape(-1)
    labels[labels == 10] = 0
    return data, labels


def read_stl10(images: Path, labels: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """STL-10 binary: column-major uint8 images [N,3,96,96] and labels 1..10 mapped to 0..9."""
    data = np.fromfile(images, dtype=np.uint8).reshape(-1, 3, 96, 96)
    data = np.ascontiguousarray(np.transpose(data, (0, 1, 3, 2)))
    if labels is None:
        return data, np.full(data.shape[0], -1, dtype=np.int64)
    return data, np.fromfile(labels, dtype=np.uint8).astype(np.int64) - 1


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """numpy → (uint8 [N,C,H,W], int64 [N]) torch tensors; [N,H,W] gets a channel axis."""
    if images.ndim == 3:
        images = images[:, None]
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if not images.flags.writeable:   # np.frombuffer views are read-only; torch wants writable memory
        images = images.copy()
    return torch.from_numpy(images), torch.from_numpy(np.array(labels, dtype=np.int64))


# ------------------------------------------------------------------------------------------- download

ByteProgress = Callable[[int, int], None]


class _Cancelled(Exception):
    pass


def fetch(urls: Sequence[str], dest: Path, md5: str | None, *, progress: ByteProgress | None = None,
          cancel: Callable[[], bool] | None = None, done_before: int = 0, what: str = "") -> int:
    """Download the first reachable URL of `urls` to `dest` (via a .part file), checking `md5`.

    `progress(done, total)` counts bytes including `done_before`; `cancel()` is polled per chunk.
    Returns the number of bytes written. Raises DataUnavailableError on failure or cancellation.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[str] = []
    for url in urls:
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "cnn-workbench"})
            with urllib.request.urlopen(req, timeout=60) as resp, open(part, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0)
                digest = hashlib.md5()
                done = 0
                while True:
                    if cancel is not None and cancel():
                        raise _Cancelled
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done_before + done, done_before + max(total, done))
            if md5 and digest.hexdigest() != md5:
                errors.append(f"{url}: checksum mismatch")
                part.unlink(missing_ok=True)
                continue
            os.replace(part, dest)
            return done
        except _Cancelled:
            part.unlink(missing_ok=True)
            raise DataUnavailableError(f"Download of {what or dest.name} was cancelled; nothing was kept.") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        except BaseException:  # e.g. a stop raised from the progress callback: keep no partial file
            part.unlink(missing_ok=True)
            raise
    raise DataUnavailableError(
        f"Could not download {what or dest.name} ({'; '.join(errors)}); check the internet connection "
        f"or put the file at {dest} yourself.")


def _safe_members(tar: tarfile.TarFile, target: Path) -> list[tarfile.TarInfo]:
    base = target.resolve()
    members = []
    for m in tar.getmembers():
        dest = (target / m.name).resolve()
        if not (m.isfile() or m.isdir()) or (base != dest and base not in dest.parents):
            raise DataUnavailableError(f"Archive member {m.name!r} is unsafe; delete the archive and retry.")
        members.append(m)
    return members


def extract_tar(archive: Path, target: Path) -> None:
    """Extract a .tar/.tar.gz safely (no links, nothing outside `target`)."""
    try:
        with tarfile.open(archive) as tar:
            members = _safe_members(tar, target)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tar.extractall(target, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataUnavailableError(f"Could not unpack {archive} ({exc}); delete it and download again.") from exc


def gunzip(archive: Path, dest: Path) -> None:
    """Decompress one .gz file to `dest`."""
    with gzip.open(archive, "rb") as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)


def extract_zip_members(archive: Path, names: Sequence[str], target: Path) -> None:
    """Copy the zip members `names` (matched by base name) into `target`, flat."""
    with zipfile.ZipFile(archive) as zf:
        by_base = {Path(n).name: n for n in zf.namelist()}
        for name in names:
            if name not in by_base:
                raise DataUnavailableError(f"{archive} lacks {name}; delete it and download again.")
            with zf.open(by_base[name]) as src, open(target / name, "wb") as out:
                shutil.copyfileobj(src, out)

