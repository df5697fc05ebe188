"""evaluate_run on a short LeNet digits run: reproduces the recorded accuracy, and its figures add up."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from analysis_support import LenetRun
from PIL import Image

from workbench.analysis.evaluate import Evaluation, evaluate_run, sample_images
from workbench.errors import CheckpointError, InvalidOptionError, UnknownNameError
from workbench.runs import RunStore
from workbench.runs.history import discard_history_after, record_samples
from workbench.training.restore import RestoredRun, restore_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def best(restored: RestoredRun, splits: Any) -> Evaluation:
    return evaluate_run(restored, splits=splits)


def test_best_and_last_reproduce_the_recorded_validation(run: LenetRun, best: Evaluation) -> None:
    assert best.checkpoint == "best" and best.split == "val" and best.num_samples == 179
    assert best.accuracy == run.best_val_accuracy          # exactly: same pipeline, batches, precision
    assert best.recorded_accuracy == run.best_val_accuracy
    last = evaluate_run(run.run_id, workspace=run.workspace, checkpoint="last")
    assert last.accuracy == run.last_val_accuracy
    assert last.loss == pytest.approx(run.last_val_loss, rel=1e-5)   # the trainer's loss: mean cross-entropy


def test_confusion_and_per_class_figures_add_up(best: Evaluation) -> None:
    m = best.confusion
    assert m.shape == (10, 10) and m.sum() == best.num_samples
    assert best.accuracy == np.trace(m) / m.sum() == best.correct.mean()
    pc = best.per_class
    assert pc.support.tolist() == np.bincount(best.labels, minlength=10).tolist() == m.sum(axis=1).tolist()
    for k in range(10):
        assert pc.recall[k] == m[k, k] / m[k].sum()
        assert pc.recall[k] == pytest.approx(best.correct[best.labels == k].mean())
        if m[:, k].sum():
            assert pc.precision[k] == m[k, k] / m[:, k].sum()
    # per sample: predictions are the top-1, probabilities descend, losses are -log p(true)
    assert (best.top_classes[:, 0] == best.predictions).all()
    assert best.top_classes.shape == (179, 5) and (np.diff(best.top_probabilities, axis=1) <= 0).all()
    assert (best.top_probabilities.sum(axis=1) <= 1 + 1e-5).all()
    hit = best.top_classes[:, 0] == best.labels
    assert np.allclose(best.losses[hit], -np.log(best.top_probabilities[hit, 0]), atol=1e-4)
    assert best.loss == pytest.approx(float(best.losses.mean()))
    top = best.top_losses(20)
    assert len(top) == 20 and (np.diff(best.losses[top]) <= 0).all() and best.losses[top[0]] == best.losses.max()
    t, p = int(best.labels[top[0]]), int(best.predictions[top[0]])
    cell = best.cell(t, p)
    assert len(cell) == m[t, p] and (np.diff(best.losses[cell]) <= 0).all() and top[0] in cell
    assert best.sources[:2] == ("digits[0]", "digits[1]") and len(best.sources) == 179


def test_to_dict_is_the_cli_contract(best: Evaluation) -> None:
    import json

    d = json.loads(json.dumps(best.to_dict()))
    assert set(d) == {"run_id", "checkpoint", "split", "num_samples", "accuracy", "loss", "classes", "confusion",
                      "per_class", "top_losses", "history"}
    assert d["confusion"] == best.confusion.tolist() and len(d["top_losses"]) == 20
    assert d["per_class"][0] == {"class": "0", "support": int(best.per_class.support[0]),
                                 "recall": float(best.per_class.recall[0]),
                                 "precision": float(best.per_class.precision[0])}
    assert set(d["top_losses"][0]) == {"index", "source", "true", "predicted", "probability", "loss"}


def test_train_split_and_gallery_images(restored: RestoredRun, splits: Any) -> None:
    ev = evaluate_run(restored, splits=splits, split="train", top=3)
    assert ev.num_samples == 1618 and ev.confusion.sum() == 1618 and ev.top_classes.shape == (1618, 3)
    assert ev.history is None and ev.recorded_accuracy is None
    images = sample_images(splits, "val", [3, 0])
    assert images.shape == (2, 8, 8, 1) and images.dtype == np.uint8
    assert (images[1, :, :, 0] == splits.val.images[0, 0].numpy()).all()
    with pytest.raises(InvalidOptionError):
        evaluate_run(restored, splits=splits, split="test")


def test_the_trainers_history_matches_the_checkpoint(run: LenetRun, splits: Any) -> None:
    """The trainer records every validation sample's prediction and loss; the last epoch's row is what the last
    checkpoint predicts, sample by sample (losses kept as float16)."""
    last = evaluate_run(run.run_id, workspace=run.workspace, checkpoint="last", splits=splits)
    h = last.history
    assert h is not None and h.epochs == (1, 2) and h.num_samples == 179
    assert (h.predictions[-1] == last.predictions).all()
    assert np.allclose(h.losses[-1], last.losses, rtol=2e-3, atol=2e-3)
    assert h.accuracy_at(2, last.labels) == run.last_val_accuracy
    first = last.first_correct_epoch()
    assert first is not None and all(e in (1, 2, None) for e in first)
    assert [e is None for e in first] == [not ok for ok in h.correct(last.labels).any(axis=0)]


def test_history_is_attached_when_the_run_has_one(run: LenetRun, tmp_path: Path, splits: Any) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(run.workspace, ws)
    restored = restore_run(run.run_id, workspace=ws)
    labels = splits.val.labels.numpy()
    wrong = (labels + 1) % 10
    with RunStore(ws) as store:
        discard_history_after(store, run.run_id, 0)   # whatever the trainer recorded: replaced by a known one
        assert evaluate_run(restored, splits=splits).history is None
        record_samples(store, run.run_id, 1, wrong, np.ones(179))
        record_samples(store, run.run_id, 2, np.where(np.arange(179) % 2 == 0, labels, wrong), np.ones(179))
        record_samples(store, run.run_id, 3, np.where(np.arange(179) % 4 == 0, labels, wrong), np.ones(179))
    ev = evaluate_run(restored, splits=splits)
    assert ev.history is not None and ev.history.epochs == (1, 2, 3)
    first = ev.first_correct_epoch()
    assert first is not None and first[0] == 2 and first[1] is None and first[2] == 2
    assert ev.forgotten() == [1 if i % 2 == 0 and i % 4 != 0 else 0 for i in range(179)]
    hist = ev.to_dict()["history"]
    assert hist["epochs"] == [1, 2, 3] and hist["first_correct_epoch"][:3] == [2, None, 2]
    with RunStore(ws) as store:   # a history of another length (changed data) is not lined up
        discard_history_after(store, run.run_id, 0)
        record_samples(store, run.run_id, 1, [0] * 5, [1.0] * 5)
    assert evaluate_run(restored, splits=splits).history is None


def test_bad_input(run: LenetRun, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError):
        evaluate_run("20200101-000000-dead", workspace=run.workspace)
    missing = tmp_path / "nowhere"
    with pytest.raises(UnknownNameError):
        evaluate_run(run.run_id, workspace=missing)
    assert not missing.exists()   # no workspace is created
    with RunStore(tmp_path / "ws") as store:
        bare = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={}, device="cpu")
    with pytest.raises(CheckpointError, match="no best checkpoint"):
        evaluate_run(bare, workspace=tmp_path / "ws")


def _folder(root: Path) -> Path:
    """Two classes of 12 small images each (bright vs dark squares), one unreadable file, one 16-bit PNG."""
    rng = np.random.default_rng(0)
    for c, (name, level) in enumerate((("bright", 200), ("dark", 40))):
        (root / name).mkdir(parents=True)
        for i in range(12):
            px = np.clip(rng.normal(level, 20, (10 + c, 10)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(root / name / f"{i:02d}.png")
    (root / "dark" / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.full((10, 10), 200 * 257, np.uint16)).save(root / "bright" / "wide.png")
    return root


@pytest.mark.parametrize("streaming", [False, True])
def test_folder_sources_follow_their_images(tmp_path: Path, streaming: bool) -> None:
    from workbench.data import load_splits
    from workbench.data.sources import sample_sources

    root = _folder(tmp_path / "imgs")
    splits = load_splits("imagefolder", root=root, options={"image_size": 8, "streaming": streaming})
    assert splits.skipped == 1
    for source in (splits.train, splits.val):
        paths = sample_sources(source, "imagefolder")
        labels = [int(source[i][1]) for i in range(len(source))]
        assert len(paths) == len(labels) and all(Path(p).is_file() for p in paths)
        assert [splits.classes.index(Path(p).parent.name) for p in paths] == labels
    if not streaming:   # the 16-bit image is scaled (200 * 257 -> 200), not clipped to white
        wide = sample_sources(splits.train, "x").index(str(root / "bright" / "wide.png"))
        assert int(splits.train.images[wide].max()) == 200


def test_a_folder_run_is_evaluated_and_predicted_from_its_files(tmp_path: Path) -> None:
    from workbench.analysis.inference import load_images, preprocess
    from workbench.training.config import TrainJob, recommended_config
    from workbench.training.job import run_training

    root = _folder(tmp_path / "imgs")
    cfg = recommended_config("lenet", "imagefolder", {"epochs": 1, "device": "cpu", "batch_size": 8,
                                                      "val_fraction": 0.25})
    result = run_training(TrainJob(arch="lenet", dataset="imagefolder", data_root=root, config=cfg,
                                   workspace=tmp_path / "ws", dataset_options={"image_size": 12}))
    assert result.status == "completed", result.message
    restored = restore_run(result.run_id, workspace=tmp_path / "ws")
    splits = restored.load_splits()
    ev = evaluate_run(restored, splits=splits)
    assert ev.accuracy == result.best_val_accuracy and ev.num_samples == len(splits.val)
    assert all(Path(s).parent.name == ev.classes[y] for s, y in zip(ev.sources, ev.labels))
    # a validation file predicted from disk: the same tensor the run's validation loader made from it
    x = preprocess(restored, load_images(restored, [ev.sources[0]]))
    from workbench.data import make_loader

    p = restored.preprocessing
    first, _ = next(iter(make_loader(splits.val, batch_size=4, device="cpu", train=False, image_size=p.image_size,
                                     channels=p.channels, mean=p.mean, std=p.std,
                                     generator=torch.Generator())))
    assert torch.equal(x[0].contiguous(), first[0].contiguous())
