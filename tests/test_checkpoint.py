"""Checkpoint files: atomic saves, weights_only loads, refusal of pickled payloads, RNG round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workbench.errors import CheckpointError
from workbench.training import checkpoint as ckpt
from workbench.training.checkpoint import (
    CHECKPOINT_FORMAT,
    decode_options,
    encode_options,
    load_checkpoint,
    pack_rng_state,
    save_checkpoint,
    unpack_rng_state,
)


class Payload:
    """A custom class: pickling it makes a checkpoint that weights_only loading must refuse."""

    def __init__(self) -> None:
        self.value = 42


def _trainer_state(seed: int = 0) -> tuple[dict, nn.Module]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
    model(torch.randn(2, 1, 8, 8))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = model(torch.randn(4, 1, 8, 8)).sum()
    loss.backward()
    opt.step()
    sched.step()
    state = {
        "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
        "rng": pack_rng_state({"loader": torch.Generator().manual_seed(7)}), "epoch": 3, "step": 120,
        "best_val_accuracy": 0.91, "config": {"lr": 0.1, "amp": "auto", "grad_clip": None, "epochs": 5},
        "arch": "lenet", "arch_options": encode_options({"widths": (6, 16), "act": "relu"}), "dataset": "digits",
    }
    return state, model


def test_trainer_state_round_trips_with_weights_only(tmp_path: Path) -> None:
    state, model = _trainer_state()
    path = save_checkpoint(tmp_path / "run" / "last.pt", state)
    assert path.is_file()
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["step"] == 120 and loaded["best_val_accuracy"] == 0.91
    assert loaded["config"] == state["config"] and loaded["arch"] == "lenet"
    assert decode_options(loaded["arch_options"]) == {"widths": (6, 16), "act": "relu"}
    for key, tensor in state["model"].items():
        assert torch.equal(loaded["model"][key], tensor), key
    restored = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    restored.load_state_dict(loaded["optimizer"])
    assert restored.state_dict()["param_groups"][0]["nesterov"] is True
    sched = torch.optim.lr_scheduler.OneCycleLR(restored, max_lr=0.1, total_steps=10)
    sched.load_state_dict(loaded["scheduler"])
    assert sched.last_epoch == 1
    # torch.load itself, strictly: nothing in the layout needs unpickling of arbitrary objects
    torch.load(path, weights_only=True)


def test_save_refuses_values_weights_only_cannot_load(tmp_path: Path) -> None:
    for bad in ({"config": {"root": Path("/data")}}, {"x": np.zeros(3)}, {"x": [np.float64(1.0)]}):
        with pytest.raises(CheckpointError, match="Cannot save"):
            save_checkpoint(tmp_path / "bad.pt", bad)
    assert not list(tmp_path.iterdir())


def test_failed_rename_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "replace", broken_replace)
    with pytest.raises(ckpt.DiskFullError, match=r"is full .*previous checkpoint is intact"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"epoch": 1})
    real_save = torch.save

    def dies_halfway(obj: object, fh) -> None:
        real_save(obj, fh)
        fh.truncate(10)
        raise KeyboardInterrupt  # the user hit Ctrl-C while the file was being written

    monkeypatch.setattr(ckpt.torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_pickled_payload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"arbitrary Python objects.*only load checkpoints you trust"):
        load_checkpoint(path)


def test_missing_corrupt_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 50)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(junk)
    good = save_checkpoint(tmp_path / "good.pt", {"epoch": 1, "w": torch.randn(1000)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="state dict"):
        load_checkpoint(tmp_path / "list.pt")
    save_checkpoint(tmp_path / "newer.pt", {"format": CHECKPOINT_FORMAT + 1})
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "newer.pt")


def _draw(gen: torch.Generator) -> tuple:
    return (random.random(), random.gauss(0, 1), float(np.random.rand()), np.random.randn(),
            torch.rand(3).tolist(), torch.randint(0, 1000, (4,), generator=gen).tolist())


def test_rng_states_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(4)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    np.random.randn()
    save_checkpoint(tmp_path / "rng.pt", {"rng": pack_rng_state({"loader": gen})})
    expected = _draw(gen)
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    other = torch.Generator().manual_seed(99)
    assert _draw(other) != expected
    unpack_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"], {"loader": other})
    assert _draw(other) == expected
    with pytest.raises(CheckpointError, match="no state for the 'val'"):
        unpack_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"], {"val": torch.Generator()})


def test_options_encoding_keeps_tuples() -> None:
    options = {"stages": ((64, 2), (128, 2)), "names": ["a"], "nested": {"k": (1,)}, "none": None}
    assert decode_options(encode_options(options)) == options
    assert decode_options({"a": 1}) == {"a": 1}
    with pytest.raises(CheckpointError):
        decode_options("{not json")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rng_round_trip_even_when_loaded_onto_the_gpu(tmp_path: Path) -> None:
    torch.cuda.manual_seed_all(5)
    torch.rand(1, device="cuda")
    save_checkpoint(tmp_path / "cuda.pt", {"rng": pack_rng_state()})
    expected = torch.rand(4, device="cuda").tolist()
    torch.cuda.manual_seed_all(99)
    unpack_rng_state(load_checkpoint(tmp_path / "cuda.pt", map_location="cuda")["rng"])
    assert torch.rand(4, device="cuda").tolist() == expected
