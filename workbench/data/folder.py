"""`imagefolder`: the user's own images in class subfolders, in memory or streamed when too big.

Layouts: `<root>/train/<class>/...` plus `<root>/val/<class>/...` (or `valid/`, `validation/`, `test/`),
or one tree `<root>/<class>/...` split per class by a seeded fraction. Any sizes and modes: images are
converted to RGB or L (majority or the `channels` option) and resized to one common size. Files PIL cannot
read are skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.data.options import MAX_IMAGE_SIDE, bool_option, int_option, ints_option
from workbench.data.registry import Cancel, DataFacts, DataOption, DatasetSpec, register_dataset, split_sizes
from workbench.data.sources import DataSplits, InMemoryImages, Progress, StreamingImages, stratified_split
from workbench.errors import DataUnavailableError, InvalidOptionError

log = logging.getLogger("workbench.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
VAL_FOLDERS = ("val", "valid", "validation", "test")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
DEFAULT_MEMORY_BUDGET = 2 << 30   # decoded bytes above which the folder is streamed
MAX_AUTO_SIDE = 256               # the automatic common size never exceeds this

IMAGEFOLDER = DatasetSpec(
    name="imagefolder",
    title="Image folder (your images)",
    description="Your own images: one subfolder per class, either under train/ and val/ or in one tree "
                "that is split automatically. Pass the folder as the data root.",
    classes=(), channels=3, size=(0, 0),
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    # No flips by default: a folder's content is unknown, and a flip turns letters and digits into other
    # classes (b <-> d); photos can turn them on with --hflip.
    hflip=False, kind="folder", crop_padding=0,
    options=(
        DataOption("image_size", None, "side N or (H, W) every image is resized to (None: the most common size, "
                   "at most 256 px)", allowed="None, a whole number N or (H, W) of whole numbers >= 1"),
        DataOption("channels", None, "1 (gray) or 3 (colour) (None: what most images are)", choices=(None, 1, 3)),
        DataOption("streaming", None, "read the images from disk each epoch instead of holding them in memory "
                   "(None: only when they exceed memory_budget)", choices=(None, True, False)),
        DataOption("memory_budget", None, "decoded bytes above which the folder is streamed (None: 2 GiB)",
                   allowed="None or a whole number of bytes"),
    ),
)


def _class_dirs(tree: Path) -> list[Path]:
    return sorted(p for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _trees(root: Path) -> tuple[Path, Path | None]:
    """(train tree, val tree or None for a single tree)."""
    train = root / "train"
    if train.is_dir() and _class_dirs(train):
        for name in VAL_FOLDERS:
            if (root / name).is_dir() and _class_dirs(root / name):
                return train, root / name
        return train, None
    return root, None


def _scan(tree: Path, classes: list[str]) -> tuple[list[Path], list[int], dict[str, int]]:
    """Files and labels of the known classes, and the image count of each class folder not among them."""
    files: list[Path] = []
    labels: list[int] = []
    unknown: dict[str, int] = {}
    index = {c: i for i, c in enumerate(classes)}
    for d in _class_dirs(tree):
        found = _image_files(d)
        if d.name not in index:
            if found:
                unknown[d.name] = len(found)
            continue
        files += found
        labels += [index[d.name]] * len(found)
    return files, labels, unknown


def _header(path: Path, check_body: bool = False) -> tuple[tuple[int, int], str] | None:
    """((H, W), mode) from the image header, or None when PIL cannot identify the file.

    `check_body` (streaming folders, which are not decoded up front) also rejects cut-off files without
    decoding them: PIL's verify() (PNG: every chunk and its CRC) and, for JPEG, the end-of-image marker.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            header = (im.size[1], im.size[0]), im.mode
            kind = im.format
            if check_body:
                im.verify()
        if check_body and kind == "JPEG" and not _jpeg_complete(path):
            return None
        return header
    except Exception:
        return None


def _jpeg_complete(path: Path) -> bool:
    """A whole JPEG ends with the EOI marker FF D9 (some writers pad after it, so look at the tail)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 1024))
        return b"\xff\xd9" in f.read()


WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}   # one channel, more than 8 bits


def convert_image(im: Any, mode: str) -> Any:
    """A PIL image in any mode as `mode` ("RGB" or "L"), 8 bits per channel.

    PIL's own convert() clips 16-bit and 32-bit gray images at 255 (a 16-bit PNG turns white); those are scaled
    instead: I;16* by 1/257, "I" by 1/257 when it holds values above 255, float "F" by 255 when it lies in 0..1.
    """
    from PIL import Image

    if im.mode not in WIDE_MODES:
        return im.convert(mode)
    a = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16") or (im.mode == "I" and a.size and a.max() > 255):
        a = a / 257.0
    elif im.mode == "F" and a.size and a.max() <= 1.0:
        a = a * 255.0
    gray = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    return gray if mode == "L" else gray.convert(mode)


def decode(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray | None:
    """Decode one image as uint8 [C, H, W] in `mode` ("RGB"/"L") at `size` (None: as stored); None when
    unreadable. Any PIL mode or bit depth (see `convert_image`); animated images give their first frame."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            im = convert_image(opened, mode)
            if size is not None and (im.size[1], im.size[0]) != size:
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.array(im, dtype=np.uint8)   # a writable copy
    except Exception:
        return None
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


class FolderStream(StreamingImages):
    """Decodes each image on access (for folders too big for memory); yields (uint8 [C,H,W], label)."""

    def __init__(self, files: list[Path], labels: list[int], mode: str, size: tuple[int, int]) -> None:
        self.files = files
        self.labels = labels
        self.mode = mode
        self.size = size
        self.channels = 1 if mode == "L" else 3

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        """The image and its label, or None for a file that cannot be decoded (the loader drops it)."""
        arr = decode(self.files[index], self.mode, self.size)
        if arr is None:  # broke after the scan: dropped from its batch (never a made-up black image)
            log.warning("could not decode %s; skipping it", self.files[index])
            return None
        return torch.from_numpy(arr), self.labels[index]


def _decode_all(files: list[Path], labels: list[int], mode: str, size: tuple[int, int],
                progress: Progress | None, done0: int, total: int) -> tuple[InMemoryImages, int]:
    channels = 1 if mode == "L" else 3
    out = torch.empty((len(files), channels, *size), dtype=torch.uint8)
    keep = torch.ones(len(files), dtype=torch.bool)
    import os

    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:   # PIL releases the GIL while decoding
        for i, arr in enumerate(pool.map(lambda p: decode(p, mode, size), files, chunksize=32)):
            if arr is None:
                keep[i] = False
            else:
                out[i] = torch.from_numpy(arr)
            if progress is not None and (i % 64 == 63 or i == len(files) - 1):
                progress(done0 + i + 1, total)
    lab = torch.tensor(labels, dtype=torch.int64)
    kept = [str(f) for f, k in zip(files, keep.tolist()) if k]
    return InMemoryImages(out[keep], lab[keep], paths=kept), int((~keep).sum())


def _size_option(options: Mapping[str, Any]) -> tuple[int, int]:
    value = options["image_size"]
    if isinstance(value, (tuple, list)):
        size = ints_option(options, "image_size", (64, 64), "imagefolder", 2, high=MAX_IMAGE_SIDE)
    else:
        size = (int_option(options, "image_size", 64, "imagefolder", high=MAX_IMAGE_SIDE),) * 2
    if min(size) < 1:
        raise InvalidOptionError(f"imagefolder image_size must be N or (H, W) with positive sizes, got {value}.")
    return size[0], size[1]


def _stats(images: InMemoryImages) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std (0..1 scale) from up to 4096 training images."""
    x = images.images[:4096].to(torch.float32).div_(255)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


@dataclass
class _Survey:
    """A folder's layout and readable files (headers read), with the common channels and size chosen."""

    train_tree: Path
    val_tree: Path | None
    classes: list[str]
    files: list[Path]
    labels: list[int]
    vfiles: list[Path]
    vlabels: list[int]
    skipped: int
    channels: int
    size: tuple[int, int]


class FolderBackend:
    """Reads a user's image folder; `root` is the folder itself."""

    def availability(self, spec: DatasetSpec, root: Path | None) -> str:
        if root is None or not root.is_dir():
            return "needs folder"
        train, _ = _trees(root)
        return "on disk" if _class_dirs(train) else "needs folder"

    def download(self, spec: DatasetSpec, root: Path, progress: Progress | None,
                 cancel: Callable[[], bool] | None) -> None:
        raise InvalidOptionError("imagefolder cannot be downloaded; point --data-root at your image folder.")

    def facts(self, spec: DatasetSpec, root: Path | None, *, val_fraction: float, options: Mapping[str, Any],
              progress: Progress | None, cancel: Cancel | None) -> DataFacts:
        """The folder's classes, common channels and size, and split sizes, from the image headers alone."""
        found = self._survey(spec, root, options, progress, cancel)
        if found.val_tree is None:
            train, val = split_sizes(Counter(found.labels), val_fraction)
        else:
            train, val = len(found.files), len(found.vfiles)
        return DataFacts(spec.name, tuple(found.classes), found.channels, found.size, train, val, found.skipped)

    def _survey(self, spec: DatasetSpec, root: Path | None, options: Mapping[str, Any],
                progress: Progress | None = None, cancel: Cancel | None = None) -> _Survey:
        """Class folders, readable files (headers only) and the common mode and size the options ask for."""
        spec.check_option_names(options)
        if self.availability(spec, root) != "on disk":
            raise DataUnavailableError(
                f"No image folder with class subfolders at {root or '(none given)'}: pass --data-root DIR where "
                "DIR holds one subfolder per class (or train/ and val/ with class subfolders).")
        assert root is not None
        train_tree, val_tree = _trees(root)
        classes = [d.name for d in _class_dirs(train_tree)]
        files, labels, _ = _scan(train_tree, classes)
        skipped = 0
        vfiles: list[Path] = []
        vlabels: list[int] = []
        if val_tree is not None:
            vfiles, vlabels, missing = _scan(val_tree, classes)
            if missing:  # not unreadable: classes the model would never be trained on
                names = ", ".join(f"{name} ({count} images)" for name, count in sorted(missing.items()))
                raise InvalidOptionError(
                    f"{val_tree} has classes that {train_tree} lacks: {names}; a model cannot learn a class it "
                    f"never sees in training: add training images for them, or remove them from {val_tree.name}/.")

        # Header pass: drop unreadable files, pick the common mode and size.
        everything = files + vfiles
        headers: list[tuple[tuple[int, int], str] | None] = []
        for i, path in enumerate(everything):
            if cancel is not None and cancel():
                raise DataUnavailableError(f"Reading the image folder {root} was cancelled.")
            headers.append(_header(path))
            if progress is not None and (i % 64 == 63 or i == len(everything) - 1):
                progress(i + 1, len(everything))
        ok = [h is not None for h in headers]
        skipped += ok.count(False)
        files = [p for p, good in zip(files, ok[: len(files)]) if good]
        labels = [y for y, good in zip(labels, ok[: len(labels)]) if good]
        vfiles = [p for p, good in zip(vfiles, ok[len(ok) - len(vfiles):]) if good]
        vlabels = [y for y, good in zip(vlabels, ok[len(ok) - len(vlabels):]) if good]
        good_headers = [h for h in headers if h is not None]
        if not files:
            raise DataUnavailableError(f"No readable images in the class folders of {train_tree}; add .png/.jpg "
                                       "files under one subfolder per class.")

        asked = options.get("channels")
        channels = None if asked is None else int_option(options, "channels", 0, "imagefolder") or None
        if channels not in (None, 1, 3):
            raise InvalidOptionError(f"imagefolder channels must be 1 or 3, got {channels}.")
        if channels is None:
            gray = sum(1 for _, m in good_headers if m in GRAY_MODES)
            channels = 1 if gray * 2 > len(good_headers) else 3
        if options.get("image_size") is not None:
            size = _size_option(options)
        else:
            size = Counter(s for s, _ in good_headers).most_common(1)[0][0]
            scale = min(1.0, MAX_AUTO_SIDE / max(size))
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        return _Survey(train_tree, val_tree, classes, files, labels, vfiles, vlabels, skipped, channels, size)

    def load(self, spec: DatasetSpec, root: Path | None, *, download: bool, seed: int, val_fraction: float,
             progress: Progress | None, options: Mapping[str, Any]) -> DataSplits:
        found = self._survey(spec, root, options)
        train_tree, val_tree, classes = found.train_tree, found.val_tree, found.classes
        files, labels, vfiles, vlabels = found.files, found.labels, found.vfiles, found.vlabels
        skipped, channels, size = found.skipped, found.channels, found.size
        mode = "L" if channels == 1 else "RGB"

        if val_tree is None:
            tr_idx, va_idx = stratified_split(torch.tensor(labels), val_fraction, seed)
            vfiles = [files[i] for i in va_idx.tolist()]
            vlabels = [labels[i] for i in va_idx.tolist()]
            files = [files[i] for i in tr_idx.tolist()]
            labels = [labels[i] for i in tr_idx.tolist()]

        total = len(files) + len(vfiles)
        budget = DEFAULT_MEMORY_BUDGET if options.get("memory_budget") is None else int_option(
            options, "memory_budget", DEFAULT_MEMORY_BUDGET, "imagefolder")
        over = total * channels * size[0] * size[1] > budget
        streaming = over if options.get("streaming") is None else bool_option(options, "streaming", over, "imagefolder")
        mean, std = (IMAGEFOLDER.mean, IMAGEFOLDER.std) if channels == 3 else ((0.449,), (0.226,))
        if streaming:  # not decoded up front: find cut-off files now (cheaply), skip and count them
            with ThreadPoolExecutor(4) as pool:
                whole = list(pool.map(lambda f: _header(f, check_body=True) is not None, files + vfiles))
            skipped += whole.count(False)
            keep_t, keep_v = whole[: len(files)], whole[len(files):]
            files, labels = [f for f, k in zip(files, keep_t) if k], [y for y, k in zip(labels, keep_t) if k]
            vfiles, vlabels = [f for f, k in zip(vfiles, keep_v) if k], [y for y, k in zip(vlabels, keep_v) if k]
            if not files:
                raise DataUnavailableError(f"None of the images under {train_tree} are complete; "
                                           "check that they are valid image files.")
            train: Any = FolderStream(files, labels, mode, size)
            val: Any = FolderStream(vfiles, vlabels, mode, size)
        else:
            train, bad_t = _decode_all(files, labels, mode, size, progress, 0, total)
            val, bad_v = _decode_all(vfiles, vlabels, mode, size, progress, len(files), total)
            skipped += bad_t + bad_v
            if len(train) == 0:
                raise DataUnavailableError(f"None of the images under {train_tree} could be decoded; "
                                           "check that they are valid image files.")
            mean, std = _stats(train)
        if skipped:
            log.warning("imagefolder %s: skipped %d unreadable or unlabeled file(s)", root, skipped)
        final = replace(spec, classes=tuple(classes), channels=channels, size=size, mean=mean, std=std,
                        train_size=len(train), val_size=len(val))
        info = {"streaming": streaming, "layout": "train/val" if val_tree is not None else "split",
                "root": str(root)}
        return DataSplits(spec=final, classes=tuple(classes), train=train, val=val, skipped=skipped, info=info)


register_dataset(IMAGEFOLDER, FolderBackend())
