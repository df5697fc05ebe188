"""predict_images: any image file goes through exactly the run's preprocessing; unreadable files are one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.analysis.evaluate import evaluate_run
from workbench.analysis.inference import UnreadableImageError, load_images, model_view, preprocess
from workbench.analysis.predict import predict_images
from workbench.data import make_loader
from workbench.errors import InvalidOptionError, WorkbenchError
from workbench.training.restore import RestoredRun

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INDEX = 5   # the validation sample used as "a user's image"


@pytest.fixture(scope="module")
def pixels(splits: Any) -> np.ndarray:
    return splits.val.images[INDEX, 0].numpy()   # uint8 [8, 8]


def _loader_tensor(restored: RestoredRun, splits: Any, index: int) -> torch.Tensor:
    """What the run's own validation loader feeds the model for sample `index`."""
    p = restored.preprocessing
    loader = make_loader(splits.val, batch_size=restored.config.batch_size, device="cpu", train=False,
                         image_size=p.image_size, channels=p.channels, mean=p.mean, std=p.std,
                         generator=torch.Generator())
    bs = restored.config.batch_size
    for b, (x, _) in enumerate(loader):
        if b == index // bs:
            return x[index % bs]
    raise AssertionError("index beyond the split")


def test_a_saved_image_goes_through_exactly_the_runs_preprocessing(restored: RestoredRun, splits: Any,
                                                                   pixels: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    Image.fromarray(pixels).save(path)
    (decoded,) = load_images(restored, [path])
    assert decoded.shape == (1, 8, 8) and (decoded[0] == pixels).all()
    x = preprocess(restored, [decoded])
    assert x.shape == (1, *restored.input_shape)
    assert torch.equal(x[0].contiguous(), _loader_tensor(restored, splits, INDEX).contiguous())
    view = model_view(restored, decoded)
    assert view.shape == (*restored.preprocessing.image_size, 1) and view.dtype == np.uint8
    (pred,) = predict_images(restored, [path])
    ev = evaluate_run(restored, splits=splits)
    assert pred.indices == tuple(int(v) for v in ev.top_classes[INDEX])
    assert np.allclose(pred.probabilities, ev.top_probabilities[INDEX], atol=1e-6)
    assert pred.predicted == restored.classes[ev.predictions[INDEX]]
    assert pred.to_dict()["image"] == str(path) and len(pred.to_dict()["top"]) == 5


def test_any_mode_and_bit_depth_gives_the_same_input(restored: RestoredRun, pixels: np.ndarray,
                                                     tmp_path: Path) -> None:
    gray = Image.fromarray(pixels)
    lossless = {
        "rgb.png": gray.convert("RGB"),                   # R = G = B: luminance gives the gray back exactly
        "rgba.png": gray.convert("RGBA"),
        "la.png": gray.convert("LA"),
        "palette.gif": gray.convert("P"),
        "gray.bmp": gray,
        "cmyk.tiff": gray.convert("RGB").convert("CMYK"),
        "wide16.png": Image.fromarray(pixels.astype(np.uint16) * 257),   # 16-bit: scaled, not clipped
        "float.tiff": Image.fromarray(pixels.astype(np.float32) / 255.0),
    }
    reference = preprocess(restored, load_images(restored, [_save(gray, tmp_path / "ref.png")]))
    for name, im in lossless.items():
        path = _save(im, tmp_path / name)
        with Image.open(path) as opened:
            mode = opened.mode
        got = preprocess(restored, load_images(restored, [path]))
        assert torch.equal(got, reference), f"{name} ({mode})"
    big = _save(gray.resize((301, 173), Image.Resampling.BICUBIC).convert("RGB"), tmp_path / "big.jpg")
    preds = predict_images(restored, [big, tmp_path / "wide16.png"], top=3)
    assert [len(p.classes) for p in preds] == [3, 3]
    assert all(list(p.probabilities) == sorted(p.probabilities, reverse=True) for p in preds)
    assert len(predict_images(restored, [big], top=50)[0].indices) == 10   # at most K classes


def _save(im: Image.Image, path: Path) -> Path:
    im.save(path)
    return path


def test_unreadable_files_are_one_line_errors_naming_them(restored: RestoredRun, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    cut = tmp_path / "cut.png"
    Image.new("L", (40, 40), 128).save(cut)
    cut.write_bytes(cut.read_bytes()[:60])
    for path in (text, cut, tmp_path / "missing.jpg"):
        with pytest.raises(UnreadableImageError) as info:
            predict_images(restored, [path])
        assert isinstance(info.value, WorkbenchError) and str(path) in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(InvalidOptionError):
        predict_images(restored, [text], top=0)
