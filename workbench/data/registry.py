"""The data set registry: one entry per data set, with its facts and the functions that load it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workbench.data.sources import DataSplits, Progress
from workbench.errors import InvalidOptionError, UnknownNameError, suggest

AVAILABILITY = ("bundled", "on disk", "needs download", "needs folder")


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set is: classes, channels, natural size, normalisation statistics, defaults."""

    name: str
    title: str
    description: str
    classes: tuple[str, ...]        # may be empty for imagefolder until the folder is read
    channels: int
    size: tuple[int, int]           # natural (H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool                     # default for horizontal-flip augmentation
    kind: str                       # "bundled" | "torchvision" | "folder" | "synthetic"
    crop_padding: int = 4           # default random-crop padding, in pixels of the model's input
    train_size: int | None = None   # images in the train split (None: unknown until loaded)
    val_size: int | None = None     # images in the validation split

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when unknown until loaded)."""
        return len(self.classes)


class Backend(Protocol):
    """How one data set is found, fetched and read."""

    def availability(self, spec: DatasetSpec, root: Path | None) -> str: ...

    def download(self, spec: DatasetSpec, root: Path, progress: Progress | None,
                 cancel: Callable[[], bool] | None) -> None: ...

    def load(self, spec: DatasetSpec, root: Path | None, *, download: bool, seed: int, val_fraction: float,
             progress: Progress | None, options: Mapping[str, Any]) -> DataSplits: ...


_SPECS: dict[str, DatasetSpec] = {}
_BACKENDS: dict[str, Backend] = {}


def register_dataset(spec: DatasetSpec, backend: Backend) -> None:
    """Add a data set to the registry (names are unique)."""
    if spec.name in _SPECS:
        raise ValueError(f"data set {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    _BACKENDS[spec.name] = backend


def _ensure_loaded() -> None:
    # The modules below register their data sets on import.
    from workbench.data import bundled, folder, tv_sets  # noqa: F401


def list_datasets() -> list[str]:
    """Names of all data sets, in display order."""
    _ensure_loaded()
    rank = {"bundled": 0, "torchvision": 1, "folder": 2, "synthetic": 3}
    return sorted(_SPECS, key=lambda n: rank.get(_SPECS[n].kind, 4))  # stable: registration order within a kind


def get_dataset(name: str) -> DatasetSpec:
    """The spec of data set `name`; UnknownNameError with close names otherwise."""
    _ensure_loaded()
    key = name.strip().lower().replace("-", "_")
    if key not in _SPECS:
        raise UnknownNameError(
            f"Unknown data set '{name}'.{suggest(name, list(_SPECS))} Run 'workbench list' to see them."
        )
    return _SPECS[key]


def _root(root: Path | str | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    from workbench.paths import default_data_root

    return default_data_root()


def availability(name: str, root: Path | str | None = None) -> str:
    """"bundled" | "on disk" | "needs download" | "needs folder" — checks files only, loads nothing.

    For `imagefolder`, `root` is the image folder itself.
    """
    spec = get_dataset(name)
    folder = Path(root).expanduser() if (root is not None) else None
    if spec.kind == "folder":
        return _BACKENDS[spec.name].availability(spec, folder)
    return _BACKENDS[spec.name].availability(spec, _root(root))


def download(name: str, root: Path | str | None = None, progress: Progress | None = None,
             cancel: Callable[[], bool] | None = None) -> None:
    """Fetch a data set's files into `root` (default data root). `progress(bytes_done, bytes_total)`
    is called while downloading (total 0 when unknown); `cancel()` returning True aborts with
    DataUnavailableError and leaves no partial file behind. No-op for bundled/synthetic sets."""
    spec = get_dataset(name)
    if spec.kind == "folder":
        raise InvalidOptionError("The imagefolder data set cannot be downloaded; point --data-root at your folder.")
    _BACKENDS[spec.name].download(spec, _root(root), progress, cancel)


def load_splits(name: str, *, root: Path | str | None = None, download: bool = False, seed: int = 0,
                val_fraction: float = 0.1, progress: Progress | None = None,
                options: Mapping[str, Any] | None = None) -> DataSplits:
    """Load a data set's train and validation splits.

    `progress(done, total)` reports download bytes, then decoded images (imagefolder). torchvision sets use
    their official test split for validation (`val_fraction` is ignored); digits and single-tree folders are
    split per class with `seed`. `options` holds per-data-set settings (see each backend): `fake` takes
    `train_size`, `val_size`, `image_shape` (C, H, W), `num_classes`; `imagefolder` takes `channels`,
    `image_size` (H, W), `memory_budget` (bytes), `streaming` (bool); `emnist` takes `split`.
    Raises DataUnavailableError (with where to put the files) when absent and `download` is False.
    """
    spec = get_dataset(name)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise InvalidOptionError(f"val_fraction must be in [0, 1), got {val_fraction}; pick e.g. 0.1.")
    folder = (Path(root).expanduser() if root is not None else None) if spec.kind == "folder" else _root(root)
    return _BACKENDS[spec.name].load(spec, folder, download=download, seed=seed,
                                     val_fraction=float(val_fraction), progress=progress,
                                     options=dict(options or {}))
