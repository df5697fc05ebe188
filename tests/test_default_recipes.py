"""Defaults that learn: lecture architectures trained with their recommended config on a generated folder of
small letter images (random colours, offsets, sizes and noise) beat chance clearly.

The cheap test shrinks the input (`image_size`) and the run (epochs, batch); the optimizer, learning rate and
schedule are the recipe's. The slow tests run the lecture networks at their natural input, with their default
options (He initialisation for the ReLU networks without batch norm) and the folder recipe.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from workbench.training import TrainJob, run_training
from workbench.training.config import recommended_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_letter_folder(root: Path, letters: str, train: int, val: int, *, size: int = 32, seed: int = 0,
                       colour: bool = True) -> Path:
    """train/ and val/ folders of `size`-px RGB letters: random background, a contrasting random colour, random
    font size and offset, and pixel noise. `colour=False`: dark grey letters on light grey (a scanned page)."""
    rng, noise = random.Random(seed), np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for letter in letters:
            folder = root / split / letter
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                if colour:
                    bg = tuple(rng.randrange(256) for _ in range(3))
                    fg = tuple((c + 128 + rng.randrange(-60, 60)) % 256 for c in bg)
                else:
                    bg, fg = (rng.randrange(160, 256),) * 3, (rng.randrange(0, 90),) * 3
                image = Image.new("RGB", (size, size), bg)
                font = ImageFont.load_default(size=rng.randrange(size * 9 // 16, size * 13 // 16))
                offset = (rng.randrange(0, size * 3 // 8), rng.randrange(-size // 8, size * 3 // 16))
                ImageDraw.Draw(image).text(offset, letter, fill=fg, font=font)
                pixels = np.asarray(image).astype(np.int16) + noise.integers(-20, 21, (size, size, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def _train(arch: str, root: Path, workspace: Path, options: dict[str, Any] | None = None,
           **overrides: Any) -> tuple[float, Any]:  # fmt: skip
    config = recommended_config(arch, "imagefolder", {"device": "cpu", **overrides})
    result = run_training(TrainJob(arch=arch, dataset="imagefolder", arch_options=options or {}, config=config,
                                   data_root=root, workspace=workspace))  # fmt: skip
    assert result.status == "completed", result.message
    return result.best_val_accuracy, config


@pytest.fixture(scope="module")
def small_letters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16-px letters, 4 classes, 96 training and 24 validation images each (chance: 25 %)."""
    return make_letter_folder(tmp_path_factory.mktemp("letters"), "AHOX", 96, 24, size=16)


def test_folder_recipe() -> None:
    from workbench.data import get_dataset

    config = recommended_config("resnet18", "imagefolder")
    assert (config.optimizer, config.lr, config.schedule, config.weight_decay) == ("adam", 2e-3, "onecycle", 0.0)
    assert get_dataset("imagefolder").hflip is False  # letters and digits must not be mirrored by default
    lenet = recommended_config("lenet", "imagefolder")  # an architecture's own recipe wins over the folder's
    assert (lenet.optimizer, lenet.lr, lenet.batch_size) == ("adam", 0.01, 32)
    assert recommended_config("resnet18", "cifar10").optimizer == "sgd"
    for arch in ("alexnet", "vgg_cifar", "vgg16", "nin", "googlenet"):  # no batch norm: a smaller Adam step
        assert recommended_config(arch, "imagefolder").lr == 5e-4
        assert recommended_config(arch, "digits").lr == 0.05             # only on a folder


def test_resnet20_learns_small_letters(small_letters: Path, tmp_path: Path) -> None:
    """Measured: 0.67 with the recipe; TrainConfig's SGD defaults (lr 0.05, cosine) gave 0.30 on this folder."""
    accuracy, config = _train("resnet20", small_letters, tmp_path, image_size=16, batch_size=32, epochs=5)
    assert (config.optimizer, config.schedule) == ("adam", "onecycle")
    assert accuracy >= 0.5, f"best validation accuracy {accuracy:.3f} (chance 0.25)"


def test_the_lectures_lenet_learns_dark_on_light_letters(tmp_path: Path) -> None:
    """The lecture's LeNet (sigmoid units) with its recipe: measured 0.99 / 0.98 (two seeds) here, 0.995 on 10 such
    letters x 200 (the same network stays at chance on letters of random colours, see below)."""
    root = make_letter_folder(tmp_path / "letters", "AHOXK", 200, 20, colour=False)
    accuracy, config = _train("lenet", root, tmp_path / "ws", epochs=15)
    assert config.optimizer == "adam"
    assert accuracy >= 0.6, f"best validation accuracy {accuracy:.3f} (chance 0.2)"


@pytest.fixture(scope="module")
def letters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's kind of folder: 32-px letters A-J, 200 training and 40 validation images each (chance 10 %)."""
    return make_letter_folder(tmp_path_factory.mktemp("letters10"), "ABCDEFGHIJ", 200, 40)


# Measured on this folder (10 classes, 15 epochs, CPU), best validation accuracy with the defaults: ResNet-18 0.97;
# with Adam at 5e-4 (the networks without batch norm) AlexNet 0.92, GoogLeNet 0.79, VGG (CIFAR) 0.53, NiN 0.34; at
# the folder's 2e-3 VGG and NiN stayed below 0.2.
# Before the `init` option (PyTorch's default init) the logits of the networks without batch norm barely depended on
# the input (spread across images VGG 1.6e-5, NiN 1.5e-6, GoogLeNet 2e-7) and they sat at chance.
# The lecture's LeNet (sigmoid units, average pooling) never left chance on colour letters with any recipe tried
# (Adam 1e-3...1e-2, SGD 0.3/0.9, one-cycle or constant, Glorot or PyTorch init, up to 30 epochs): a limit of the
# architecture, not of the defaults; the app's chance-level hint points at `activation=relu` (0.89 in 15 epochs).
_SIGMOID = pytest.mark.xfail(reason="the lecture's sigmoid LeNet does not learn colour letters", strict=True)

# (arch, options, floor): the lecture networks at their natural input (AlexNet with its 32-px stem); each floor is
# about 60 % of the accuracy measured above (chance is 0.1), so a recipe that halves a network's result fails.
_LECTURE = [
    pytest.param("lenet", {}, 0.2, marks=_SIGMOID),
    ("lenet", {"activation": "relu"}, 0.5),
    ("alexnet", {"stem": "small"}, 0.55),
    ("vgg_cifar", {}, 0.3),
    ("nin", {}, 0.2),
    ("googlenet", {}, 0.45),
    ("resnet18", {}, 0.6),
    ("resnet20", {}, 0.4),
]


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "options", "floor"), _LECTURE)
def test_lecture_architecture_learns_letters(arch: str, options: dict, floor: float, letters: Path,
                                             tmp_path: Path) -> None:
    """15 epochs with the recommended config, as `workbench train --dataset imagefolder` runs it."""
    config = recommended_config(arch, "imagefolder", {"epochs": 15, "device": "auto"})
    result = run_training(TrainJob(arch=arch, dataset="imagefolder", arch_options=options, config=config,
                                   data_root=letters, workspace=tmp_path))  # fmt: skip
    assert result.status == "completed", result.message
    assert result.best_val_accuracy >= floor, f"{arch}: best validation accuracy {result.best_val_accuracy:.3f}"
