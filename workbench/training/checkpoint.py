"""Checkpoint files: atomic writes, `weights_only` loads, and RNG states that survive both.

The trainer's state layout (CHECKPOINT_FORMAT 1):
    {"format": 1, "model": state_dict, "optimizer": state_dict, "scheduler": state_dict | None,
     "scaler": state_dict | None, "rng": pack_rng_state(...), "epoch": int, "step": int,
     "best_val_accuracy": float | None, "config": dict, "arch": str,
     "arch_options": encode_options(...) (a JSON string), "dataset": str}
Only tensors, numbers, strings, bytes, None, lists, tuples, sets and dicts are allowed anywhere in it,
so `torch.load(..., weights_only=True)` can read it back without unpickling arbitrary objects.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from workbench.errors import CheckpointError

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


def save_checkpoint(path: Path | str, state: Mapping[str, Any]) -> Path:
    """Write `state` to `path` atomically: a temporary file in the same folder, flushed and fsynced,
    renamed over `path`, then the folder fsynced. A crash at any point leaves the old file intact."""
    path = Path(path)
    check_weights_only_safe(dict(state))
    folder = path.parent
    tmp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(folder)
    except OSError as exc:
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


# --- options and RNG states -----------------------------------------------------------------------------


def encode_options(options: Mapping[str, Any] | None) -> str:
    """Architecture options as a JSON string (tuples survive as lists, restored by decode_options)."""
    return json.dumps(_tag_tuples(dict(options or {})), sort_keys=True)


def decode_options(text: str | Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of encode_options (a dict is passed through)."""
    if not isinstance(text, str):
        return dict(text)
    try:
        return _untag_tuples(json.loads(text))
    except ValueError as exc:
        raise CheckpointError(f"Checkpoint architecture options are not valid JSON ({exc}).") from None


def _tag_tuples(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_tag_tuples(v) for v in value]}
    if isinstance(value, list):
        return [_tag_tuples(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _tag_tuples(v) for k, v in value.items()}
    return value


def _untag_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_untag_tuples(v) for v in value["__tuple__"])
        return {k: _untag_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag_tuples(v) for v in value]
    return value


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
