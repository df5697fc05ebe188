"""Checkpoint files: atomic writes, `weights_only` loads, and RNG states that survive both.

The layout (CHECKPOINT_FORMAT 1; keys added since are optional on load, so older files still resume):
    the trainer's state — "model", "optimizer", "scheduler" (state dicts), "scaler" (state dict | None),
    "epoch" (completed), "batch" (batches done in the epoch in flight), "step", "best_val_accuracy",
    "epochs_without_improvement", "train_seconds", "train_images", "last" (the last epoch's metrics), "partial"
    (EpochTotals of the epoch in flight), "data_generator" (loader generator state at that epoch's start);
    what rebuilds the run — "format", "config" (TrainConfig dict), "arch", "arch_options" (encode_options JSON),
    "dataset", "dataset_options" (JSON), "input_shape", "num_classes", "data_root", "classes", "mean", "std";
    and "rng" (pack_rng_state). `check_resume_state` names the first missing or mistyped key a resume needs.
Only tensors, numbers, strings, bytes, None, lists, tuples, sets and dicts are allowed anywhere in it,
so `torch.load(..., weights_only=True)` can read it back without unpickling arbitrary objects.

Integrity: torch.save writes a zip archive; the archive comment (which zip readers, torch's included, skip)
holds a SHA-256 of every byte before it, so a flipped region is named as corruption on load. Files without
the seal (written before it existed) load as before.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import os
import pickle
import random
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from workbench.errors import CheckpointError
from workbench.json_tags import tag, untag


class DiskFullError(CheckpointError):
    """A checkpoint could not be written because the disk is full (or failing); the previous file is intact."""

    def __init__(self, path: Path, free_bytes: int | None) -> None:
        self.path, self.free_bytes = path, free_bytes
        free = f" ({free_bytes / 1e6:,.1f} MB free)" if free_bytes is not None else ""
        super().__init__(f"The disk holding {path.parent} is full{free}: {path.name} was not written and the "
                         "previous checkpoint is intact; free some space and resume the run.")

CHECKPOINT_FORMAT = 1
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"

_SCALARS = (str, bytes, int, float, complex, bool, type(None), torch.dtype, torch.device, torch.Size)
_CONTAINERS = (dict, collections.OrderedDict, list, tuple, set, frozenset)


def check_weights_only_safe(state: Any, where: str = "state") -> None:
    """Raise CheckpointError naming the first value that `weights_only` loading would refuse."""
    if isinstance(state, (torch.Tensor, _SCALARS)):
        if type(state).__module__ not in ("builtins", "torch", "torch.nn.parameter", "collections"):
            raise CheckpointError(f"Cannot save {where}: {type(state).__qualname__} is not a plain value.")
        return
    if type(state) in _CONTAINERS:
        if isinstance(state, dict):
            for key, value in state.items():
                check_weights_only_safe(key, f"{where} key")
                check_weights_only_safe(value, f"{where}[{key!r}]")
        else:
            for index, value in enumerate(state):
                check_weights_only_safe(value, f"{where}[{index}]")
        return
    raise CheckpointError(
        f"Cannot save {where}: a {type(state).__module__}.{type(state).__qualname__} is not a tensor, number, "
        "string, list or dict, so it could not be loaded safely; convert it to plain values first."
    )


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_SEAL_PREFIX = b"WBSHA256:"
_SEAL_LENGTH = len(_SEAL_PREFIX) + 64            # the prefix and a hex SHA-256
_EOCD = b"PK\x05\x06"                            # zip "end of central directory" record: 22 bytes + comment
_TEMP_GLOB = ".*.pt.*.tmp"                        # what save_checkpoint's temporary files look like
_WRITE_FAILURES = ("unexpected pos", "failed writing", "no space left", "file write failed")


def _file_digest(fh: Any, size: int, tail: bytes = b"") -> str:
    """SHA-256 of the first `size` bytes of an open file, followed by `tail`."""
    digest = hashlib.sha256()
    fh.seek(0)
    left = size
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    digest.update(tail)
    return digest.hexdigest()


def _seal(fh: Any) -> None:
    """Give the zip archive in `fh` (opened r+b, as torch.save left it) a comment with its SHA-256."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(size - 22)
    eocd = fh.read(22)
    if len(eocd) != 22 or eocd[:4] != _EOCD or eocd[-2:] != b"\0\0":  # not the layout we know: leave unsealed
        return
    length = _SEAL_LENGTH.to_bytes(2, "little")
    digest = _file_digest(fh, size - 2, length)
    fh.seek(size - 2)
    fh.write(length + _SEAL_PREFIX + digest.encode("ascii"))


def verify_checkpoint(path: Path | str) -> bool:
    """True when the file's seal matches its bytes, False when it has no seal (an older checkpoint);
    CheckpointError when the bytes changed after it was written."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size < _SEAL_LENGTH + 22:
                return False
            fh.seek(size - _SEAL_LENGTH - 2)
            tail = fh.read(_SEAL_LENGTH + 2)
            if tail[2:2 + len(_SEAL_PREFIX)] != _SEAL_PREFIX or int.from_bytes(tail[:2], "little") != _SEAL_LENGTH:
                return False
            expected = tail[2 + len(_SEAL_PREFIX):].decode("ascii", "replace")
            actual = _file_digest(fh, size - _SEAL_LENGTH)
    except OSError as exc:
        raise CheckpointError(f"Could not read checkpoint {path} ({exc.strerror or exc}).") from None
    if actual != expected:
        raise CheckpointError(f"Checkpoint {path} is corrupt: its bytes no longer match the checksum written with "
                              "it (the file was damaged after it was saved).")
    return True


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    # torch raises RuntimeError ("[enforce fail at inline_container.cc] . unexpected pos ...") after ENOSPC.
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _WRITE_FAILURES)


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def remove_stale_temp_files(folder: Path | str) -> int:
    """Delete temporary files that interrupted checkpoint writes left in `folder`; returns how many."""
    removed = 0
    for tmp in Path(folder).glob(_TEMP_GLOB):
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def save_checkpoint(path: Path | str, state: Mapping[str, Any]) -> Path:
    """Write `state` to `path` atomically: a temporary file in the same folder, sealed with its SHA-256, flushed
    and fsynced, renamed over `path`, then the folder fsynced. A crash or a full disk at any point leaves the
    old file intact and no temporary file behind (DiskFullError for a full disk)."""
    path = Path(path)
    check_weights_only_safe(dict(state))
    folder = path.parent
    tmp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w+b") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            _seal(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(folder)
    except (OSError, RuntimeError) as exc:
        if _is_disk_full(exc):
            raise DiskFullError(path, _free_bytes(folder)) from exc
        if isinstance(exc, RuntimeError):
            raise
        raise CheckpointError(
            f"Could not write checkpoint {path} ({exc.strerror or exc}); free some disk space or choose a "
            "writable workspace."
        ) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def load_checkpoint(path: Path | str, map_location: Any = "cpu") -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)`. CheckpointError when the file is missing,
    corrupt, not a dict, from a newer format, or carries pickled Python objects (refused)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}; the run may not have finished an epoch yet.")
    verify_checkpoint(path)  # a damaged file is named as corrupt before anything is unpickled
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise CheckpointError(
                f"Refused to load checkpoint {path} because it contains arbitrary Python objects, which could "
                "run code when unpickled; only load checkpoints you trust, and re-save them with plain tensors."
            ) from None
        raise CheckpointError(f"Checkpoint {path} is corrupt ({exc}); delete it or resume from another one.") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"Checkpoint {path} is corrupt or unreadable ({reason}); delete it or resume "
                              "from another one.") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint {path} does not hold a state dict; it was not written by CNN Workbench.")
    fmt = state.get("format", CHECKPOINT_FORMAT)
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(f"Checkpoint {path} has format {fmt!r}, newer than this app reads "
                              f"({CHECKPOINT_FORMAT}); upgrade CNN Workbench.")
    return state


# What a resumable checkpoint must hold, and of which type (a value of the wrong type is damage, not a crash).
_RESUME_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((dict,), "a state dict"), "optimizer": ((dict,), "a state dict"),
    "scheduler": ((dict, type(None)), "a state dict"), "epoch": ((int,), "a whole number"),
    "batch": ((int,), "a whole number"), "step": ((int,), "a whole number"), "rng": ((dict,), "a dict"),
    "config": ((dict,), "a dict"), "arch": ((str,), "text"), "input_shape": ((list, tuple), "three numbers"),
    "num_classes": ((int,), "a whole number"),
}


def check_resume_state(state: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """`state` when it has every key a resume needs, with the right types; CheckpointError naming the first
    key that is missing or wrong."""
    for key, (types, what) in _RESUME_KEYS.items():
        if key not in state:
            raise CheckpointError(f"Checkpoint {path} cannot be resumed: it has no {key!r} entry.")
        value = state[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise CheckpointError(f"Checkpoint {path} cannot be resumed: {key!r} should be {what}, found "
                                  f"{type(value).__name__}.")
    if len(state["input_shape"]) != 3:
        raise CheckpointError(f"Checkpoint {path} cannot be resumed: 'input_shape' should be three numbers.")
    return state


# --- options and RNG states -----------------------------------------------------------------------------


def encode_options(options: Mapping[str, Any] | None) -> str:
    """Architecture options as a JSON string (tuples survive as lists, restored by decode_options)."""
    return json.dumps(tag(dict(options or {})), sort_keys=True)


def decode_options(text: str | Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of encode_options (a dict is passed through)."""
    if not isinstance(text, str):
        return dict(text)
    try:
        return untag(json.loads(text))
    except ValueError as exc:
        raise CheckpointError(f"Checkpoint architecture options are not valid JSON ({exc}).") from None


def pack_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every RNG the training loop draws from, as tensors and plain values that survive weights_only:
    Python's `random`, NumPy's global RNG (if installed), torch CPU, CUDA and MPS (when present), and
    the named `generators` (e.g. {"loader": loader_generator})."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "torch": torch.get_rng_state(),
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        keys = np.asarray(keys)
        state["numpy"] = {"kind": str(kind), "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def unpack_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Restore what pack_rng_state saved into the global RNGs and the named `generators`.
    CheckpointError when a requested generator has no saved state."""
    try:
        py = state["python"]
        internal = tuple(int(v) for v in py["state"].tolist())
        random.setstate((int(py["version"]), internal, py["gauss"]))
        torch.set_rng_state(_byte_tensor(state["torch"]))
        saved = state.get("generators", {})
        for name, gen in (generators or {}).items():
            if name not in saved:
                raise CheckpointError(f"The checkpoint has no state for the {name!r} random generator; "
                                      "it was written by a different trainer.")
            gen.set_state(_byte_tensor(saved[name]))
        if "numpy" in state:
            try:
                import numpy as np
            except ImportError:
                pass
            else:
                npst = state["numpy"]
                keys = npst["keys"].cpu().numpy().astype(np.uint32)  # map_location="cuda" moves it too
                np.random.set_state((npst["kind"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
        if "cuda" in state and torch.cuda.is_available():
            saved_cuda = [_byte_tensor(s) for s in state["cuda"]]
            for index in range(min(len(saved_cuda), torch.cuda.device_count())):
                torch.cuda.set_rng_state(saved_cuda[index], index)
        if "mps" in state and getattr(torch, "mps", None) is not None and torch.backends.mps.is_available():
            torch.mps.set_rng_state(_byte_tensor(state["mps"]))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"The checkpoint's random-number state is damaged ({exc}); "
                              "start a new run instead of resuming.") from None


def _byte_tensor(value: Any) -> torch.Tensor:
    tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=torch.uint8)
    return tensor.detach().to("cpu", torch.uint8).contiguous()
