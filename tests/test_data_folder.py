"""imagefolder: the user's own images, mixed sizes/modes, corrupt files skipped, streaming when too big."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.data import InMemoryImages, StreamingImages, availability, load_splits, make_loader

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}


def _write_tree(root: Path, per_class: int = 5) -> None:
    for cls, rgb in COLORS.items():
        d = root / cls
        (d / "nested").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.zeros((20, 24, 3), np.uint8) + np.array(rgb, np.uint8)
            arr[i % 20, :, :] = 255
            img = Image.fromarray(arr)
            if i == 0:
                img.resize((40, 30)).save(d / "big.jpg", quality=95)            # another size, JPEG
            elif i == 1:
                img.convert("L").save(d / "nested" / "gray.png")                # gray, in a subfolder
            elif i == 2:
                img.convert("RGBA").save(d / "alpha.png")                       # alpha channel
            else:
                img.save(d / f"img{i}.png")


def test_single_tree_split_mixed_modes_and_corrupt_files(tmp_path: Path) -> None:
    _write_tree(tmp_path)
    (tmp_path / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (tmp_path / "green" / "empty.jpg").write_bytes(b"")
    (tmp_path / "blue" / "notes.txt").write_text("ignored: not an image extension")
    assert availability("imagefolder", tmp_path) == "on disk"
    seen: list[tuple[int, int]] = []
    s = load_splits("imagefolder", root=tmp_path, val_fraction=0.2, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert s.classes == ("blue", "green", "red")
    assert s.skipped == 2
    assert isinstance(s.train, InMemoryImages) and isinstance(s.val, InMemoryImages)
    assert len(s.train) + len(s.val) == 15 and len(s.val) == 3          # one per class
    assert s.train.images.shape[1:] == (3, 20, 24)                     # majority RGB, most common size
    assert s.spec.channels == 3 and s.spec.size == (20, 24) and s.spec.classes == s.classes
    assert seen and seen[-1] == (15, 15)
    # Labels follow the folders: red images are red.
    red = s.train.images[s.train.labels == 2].float().mean(dim=(0, 2, 3))
    assert red[0] > red[1] and red[0] > red[2]
    again = load_splits("imagefolder", root=tmp_path, val_fraction=0.2, seed=0)
    assert torch.equal(again.val.images, s.val.images)
    x, _y = next(iter(make_loader(s.train, batch_size=4, device="cpu", train=True, image_size=(32, 32), channels=3,
                                 mean=s.spec.mean, std=s.spec.std, crop_padding=2, hflip=True,
                                 generator=torch.Generator().manual_seed(0))))
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all()


def test_train_val_layout_explicit_channels_and_size(tmp_path: Path) -> None:
    _write_tree(tmp_path / "train", per_class=4)
    _write_tree(tmp_path / "val", per_class=4)
    (tmp_path / "val" / "broken.png").write_bytes(b"no class folder: not an image of any class")
    (tmp_path / "val" / "red" / "bad.png").write_bytes(b"garbage")  # unreadable: skipped and counted
    s = load_splits("imagefolder", root=tmp_path, options={"channels": 1, "image_size": 16})
    assert s.info["layout"] == "train/val"
    assert len(s.train) == 12 and len(s.val) == 12 and s.skipped == 1
    assert s.train.images.shape[1:] == (1, 16, 16) and len(s.spec.mean) == 1


def test_streaming_when_over_the_memory_budget(tmp_path: Path) -> None:
    _write_tree(tmp_path, per_class=4)
    (tmp_path / "red" / "broken.png").write_bytes(b"garbage")
    s = load_splits("imagefolder", root=tmp_path, val_fraction=0.25, options={"memory_budget": 1000})
    assert isinstance(s.train, StreamingImages) and s.info["streaming"] is True
    assert s.skipped == 1 and len(s.train) + len(s.val) == 12
    img, label = s.train[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 20, 24) and isinstance(label, int)
    loader = make_loader(s.train, batch_size=4, device="cpu", train=True, image_size=(20, 24), channels=3,
                         mean=s.spec.mean, std=s.spec.std, hflip=True, generator=torch.Generator().manual_seed(0),
                         num_workers=0)
    xs = [x for x, _ in loader]
    assert sum(x.shape[0] for x in xs) == len(s.train)


def test_folder_without_readable_images(tmp_path: Path) -> None:
    from workbench.errors import DataUnavailableError

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataUnavailableError, match="No readable images"):
        load_splits("imagefolder", root=tmp_path)


def test_streaming_skips_and_counts_cut_off_images(tmp_path: Path) -> None:
    _write_tree(tmp_path, per_class=4)
    whole_png = (tmp_path / "red" / "img3.png").read_bytes()
    (tmp_path / "red" / "cut.png").write_bytes(whole_png[: len(whole_png) // 2])   # header fine, body cut off
    arr = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "green" / "whole.jpg", quality=90)
    jpg = (tmp_path / "green" / "whole.jpg").read_bytes()
    (tmp_path / "blue" / "cut.jpg").write_bytes(jpg[: len(jpg) * 2 // 3])
    s = load_splits("imagefolder", root=tmp_path, val_fraction=0.25, options={"memory_budget": 1000})
    assert isinstance(s.train, StreamingImages)
    assert s.skipped == 2 and len(s.train) + len(s.val) == 13
    names = {p.name for p in s.train.files + s.val.files}
    assert "cut.png" not in names and "cut.jpg" not in names and "whole.jpg" in names
    # A file that breaks after the scan is dropped from its batch, never turned into a black image.
    s.train.files[0].write_bytes(b"gone")
    loader = make_loader(s.train, batch_size=64, device="cpu", train=False, image_size=(20, 24), channels=3,
                         mean=s.spec.mean, std=s.spec.std, generator=torch.Generator().manual_seed(0),
                         num_workers=0)
    xs = [x for x, _ in loader]
    assert sum(x.shape[0] for x in xs) == len(s.train) - 1


def test_option_values_are_typed_and_parsed_from_the_command_line(tmp_path: Path) -> None:
    from workbench.cli import parse_assignments
    from workbench.errors import InvalidOptionError

    _write_tree(tmp_path, per_class=4)
    opts = parse_assignments(["streaming=false", "memory_budget=1000", "image_size=12,10"], "--data-option")
    assert opts == {"streaming": False, "memory_budget": 1000, "image_size": (12, 10)}
    s = load_splits("imagefolder", root=tmp_path, val_fraction=0.25, options=opts)
    assert s.info["streaming"] is False and s.train.images.shape[2:] == (12, 10)  # budget exceeded, told not to
    for bad, needle in (({"streaming": "maybe"}, "True or False"), ({"channels": "rgb"}, "whole number"),
                        ({"image_size": (8, "x")}, "2 whole numbers"), ({"memory_budget": 1.5}, "whole number")):
        with pytest.raises(InvalidOptionError, match=needle):
            load_splits("imagefolder", root=tmp_path, options=bad)
