"""What every export shares: errors, optional extras, the metadata written beside a model, and atomic writes."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

MODEL_FORMATS = ("onnx", "pt2", "safetensors")
FORMATS = (*MODEL_FORMATS, "tensorboard")
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors"}

# Optional extra (pyproject [project.optional-dependencies]) -> the import names an export needs from it.
EXTRAS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxscript"),        # torch.onnx's exporter; onnxruntime (also in the extra) runs the result
    "safetensors": ("safetensors",),
    "tensorboard": ("tensorboard",),
}


class ExportError(WorkbenchError):
    """An export could not be written (existing output, unwritable folder, a model the exporter cannot trace)."""


class MissingExtraError(ExportError):
    """An export format needs an optional extra that is not installed."""


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> None:
    """ExportError naming the choices when `fmt` is not one of `allowed`."""
    if fmt not in allowed:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(allowed)}.")


def require_extra(extra: str, what: str) -> None:
    """Raise MissingExtraError naming the pip command when a package of optional extra `extra` is missing."""
    missing = [name for name in EXTRAS[extra] if not _importable(name)]
    if missing:
        raise MissingExtraError(
            f"{what} needs the optional package{'s' if len(missing) > 1 else ''} {', '.join(missing)}: run "
            f"pip install 'cnn-workbench[{extra}]' (or pip install -e '.[{extra}]' in a checkout).")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or sys.modules[name] set to None
        return False


@dataclass(frozen=True)
class ModelMetadata:
    """What a consumer of an exported model needs to feed it and read its output.

    Preprocessing: resize the image to `image_size` (bilinear), convert to `channels` channels (luminance for 3->1,
    repeat for 1->3), scale pixels to 0..1, subtract `mean` and divide by `std` per channel (one value applies to
    every channel). The model returns one logit per entry of `classes`.
    """

    arch: str
    arch_options: dict[str, Any]
    input_shape: tuple[int, int, int]           # (C, H, W); the batch dimension is dynamic
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    run_id: str = ""
    checkpoint: str = ""
    epoch: int = 0
    dataset: str = ""
    dataset_options: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of model outputs."""
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists), with `channels`, `image_size` and the producer added."""
        from workbench import __version__

        data = asdict(self)
        c, h, w = self.input_shape
        data.update(input_shape=[c, h, w], channels=c, image_size=[h, w], classes=list(self.classes),
                    mean=list(self.mean), std=list(self.std), num_classes=self.num_classes,
                    preprocessing=(f"resize to {h}x{w} (bilinear), {c} channel(s), x = (pixel / 255 - mean) / std "
                                   "per channel; input float32 [batch, C, H, W]"),
                    producer=f"cnn-workbench {__version__}")
        return json.loads(json.dumps(data, default=_jsonable))

    def to_strings(self) -> dict[str, str]:
        """Flat string properties (ONNX `metadata_props`): strings as they are, everything else as JSON."""
        return {key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
                for key, value in self.to_dict().items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Inverse of `to_dict` (unknown keys ignored)."""
        c, h, w = (int(v) for v in data["input_shape"])
        return cls(arch=str(data["arch"]), arch_options=dict(data.get("arch_options") or {}), input_shape=(c, h, w),
                   classes=tuple(str(v) for v in data["classes"]), mean=tuple(float(v) for v in data["mean"]),
                   std=tuple(float(v) for v in data["std"]), run_id=str(data.get("run_id", "")),
                   checkpoint=str(data.get("checkpoint", "")), epoch=int(data.get("epoch", 0)),
                   dataset=str(data.get("dataset", "")), dataset_options=dict(data.get("dataset_options") or {}))


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, set)) else str(value)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    format: str
    path: Path                                  # the model file, or the TensorBoard run folder
    files: tuple[Path, ...]                     # every file written (the model file, or the event files)
    arch: str
    bytes: int                                  # total size written
    seconds: float
    input_shape: tuple[int, int, int] | None = None   # (C, H, W) of a model file; the batch is dynamic
    num_classes: int | None = None
    run_id: str = ""
    checkpoint: str | None = None               # None for tensorboard (it reads the run store, not a checkpoint)
    details: dict[str, Any] = field(default_factory=dict)   # opset, tensors, scalars, ... per format

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        return {"run_id": self.run_id, "format": self.format, "checkpoint": self.checkpoint, "path": str(self.path),
                "files": [str(p) for p in self.files], "arch": self.arch,
                "input_shape": list(self.input_shape) if self.input_shape is not None else None,
                "num_classes": self.num_classes, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                **self.details}


def resolve_out(out: Path | str | None, default_name: str, *, overwrite: bool) -> Path:
    """The file to write: `out`, or `default_name` inside `out` when it is an existing folder or ends with a path
    separator (a folder to create); the current folder for None.

    ExportError when the file exists and `overwrite` is false.
    """
    path = Path.cwd() / default_name if out is None else Path(out).expanduser()
    if path.is_dir() or str(out).endswith(("/", os.sep)):
        path = path / default_name
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists; choose another --out or pass --force to replace it.")
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give a file name with --out.")
    return path.absolute()


def ensure_folder(folder: Path) -> None:
    """Create `folder` (and parents) or raise ExportError naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create {folder} ({exc.strerror or exc}); choose a writable --out.") from None


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path` (ending in `suffix`, for writers that check it); on success it is
    fsynced and renamed over `path`, on failure removed.

    OSError while writing becomes ExportError; other exceptions propagate unchanged (after the cleanup).
    """
    ensure_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}")
    try:  # os.open with 0o666 keeps the user's umask (mkstemp would make it private)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise ExportError(f"Cannot write to {path.parent} ({exc.strerror or exc}); choose a writable --out.") from None
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"Could not write {path} ({exc.strerror or exc}); choose a writable --out with free "
                          "space.") from None
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(folder: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder beside `folder`; on success it replaces `folder` (when `overwrite`), else removed."""
    if folder.exists() and not overwrite and any(folder.iterdir()):
        raise ExportError(f"{folder} already exists; choose another --out or pass --force to replace it.")
    ensure_folder(folder.parent)
    tmp = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.mkdir()
    except OSError as exc:
        raise ExportError(f"Cannot write to {folder.parent} ({exc.strerror or exc}); choose a writable --out.") \
            from None
    old: Path | None = None
    try:
        yield tmp
        if folder.exists():
            old = folder.with_name(f"{tmp.name}.old")
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except OSError:
            if old is not None:  # put the previous export back
                os.replace(old, folder)
                old = None
            raise
    except OSError as exc:
        raise ExportError(f"Could not write {folder} ({exc.strerror or exc}); choose a writable --out with free "
                          "space.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
