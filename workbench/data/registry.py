"""The data set registry: one entry per data set, with its facts and the functions that load it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workbench.data.sources import DataSplits, Progress
from workbench.errors import InvalidOptionError, UnknownNameError, suggest

AVAILABILITY = ("bundled", "on disk", "needs download", "needs folder")
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class DataOption:
    """One declared option of a data set: `--data-option KEY=VALUE`, the app's data-set form and `list --json`
    all read it. `default` None means "decided from the data" (the help says how)."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    allowed: str = ""      # what is allowed, in words, when `choices` does not say it

    def describe(self) -> str:
        """What values are allowed, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.allowed:
            return self.allowed
        kind = type(self.default)
        return {bool: "True or False", int: "a whole number", float: "a number", str: "a string"}.get(
            kind, f"a value like {self.default!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: name, default, help, choices, allowed."""
        listed = (lambda v: list(v) if isinstance(v, tuple) else v)
        return {"name": self.name, "default": listed(self.default), "help": self.help,
                "choices": [listed(c) for c in self.choices] if self.choices is not None else None,
                "allowed": self.describe()}


@dataclass(frozen=True)
class DataFacts:
    """What training on a data set with given options will see: classes, stored image channels and size, split
    sizes, and files skipped as unreadable. For an image folder it is read from the folder (`dataset_facts`)."""

    name: str
    classes: tuple[str, ...]
    channels: int
    size: tuple[int, int]           # (H, W) of the stored images (an image folder's common size)
    train_size: int | None
    val_size: int | None
    skipped: int = 0                # unreadable or unlabeled image files left out

    @property
    def num_classes(self) -> int:
        return len(self.classes)


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
    options: tuple[DataOption, ...] = ()   # the options load_splits accepts (the one declaration of them)

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when unknown until loaded)."""
        return len(self.classes)

    def option_defaults(self) -> dict[str, Any]:
        """Default value of every declared option."""
        return {o.name: o.default for o in self.options}

    def check_option_names(self, options: Mapping[str, Any]) -> None:
        """InvalidOptionError naming the declared options when `options` has a key that is not one of them."""
        names = [o.name for o in self.options]
        unknown = sorted(set(options) - set(names))
        if not unknown:
            return
        if not names:
            raise InvalidOptionError(f"{self.name} has no data-set options (got {unknown}); drop them.")
        raise InvalidOptionError(f"{self.name} has no option(s) {unknown}; use {', '.join(names)}.")


class Backend(Protocol):
    """How one data set is found, fetched and read."""

    def availability(self, spec: DatasetSpec, root: Path | None) -> str: ...

    def download(self, spec: DatasetSpec, root: Path, progress: Progress | None,
                 cancel: Callable[[], bool] | None) -> None: ...

    def load(self, spec: DatasetSpec, root: Path | None, *, download: bool, seed: int, val_fraction: float,
             progress: Progress | None, options: Mapping[str, Any]) -> DataSplits: ...

    def facts(self, spec: DatasetSpec, root: Path | None, *, val_fraction: float, options: Mapping[str, Any],
              progress: Progress | None, cancel: Cancel | None) -> DataFacts: ...


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
    spec.check_option_names(options or {})
    folder = (Path(root).expanduser() if root is not None else None) if spec.kind == "folder" else _root(root)
    return _BACKENDS[spec.name].load(spec, folder, download=download, seed=seed,
                                     val_fraction=float(val_fraction), progress=progress,
                                     options=dict(options or {}))


def dataset_facts(name: str, *, root: Path | str | None = None, options: Mapping[str, Any] | None = None,
                  val_fraction: float = 0.1, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> DataFacts:
    """What `load_splits` with these arguments would give — classes, channels, size, split sizes, skipped files —
    without decoding images. Options are validated as load_splits validates them (InvalidOptionError). For
    `imagefolder` the folder's headers are read (`progress(done, total)` per file; `cancel()` returning True
    stops with DataUnavailableError); other sets answer from their spec at once."""
    spec = get_dataset(name)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise InvalidOptionError(f"val_fraction must be in [0, 1), got {val_fraction}; pick e.g. 0.1.")
    spec.check_option_names(options or {})
    folder = (Path(root).expanduser() if root is not None else None) if spec.kind == "folder" else _root(root)
    return _BACKENDS[spec.name].facts(spec, folder, val_fraction=float(val_fraction), options=dict(options or {}),
                                      progress=progress, cancel=cancel)


def spec_facts(spec: DatasetSpec) -> DataFacts:
    """A spec's own facts (what a backend with nothing to read answers)."""
    return DataFacts(spec.name, spec.classes, spec.channels, spec.size, spec.train_size, spec.val_size)


def split_sizes(class_counts: Mapping[Any, int], val_fraction: float) -> tuple[int, int]:
    """(train, val) sizes of a per-class split of these class sizes, rounded as `stratified_split` rounds."""
    val = 0
    for n in class_counts.values():
        n_val = round(n * val_fraction)
        if val_fraction > 0 and n >= 2:
            n_val = max(1, n_val)
        val += max(0, min(n_val, n - 1))
    return sum(class_counts.values()) - val, val


def data_option_help() -> str:
    """One line naming every data set's options (the CLI's --data-option help)."""
    parts = []
    for name in list_datasets():
        spec = _SPECS[name]
        if spec.options:
            parts.append(f"{name} {', '.join(o.name for o in spec.options)}")
    return "data-set option (Python literal; image_shape=1,28,28): " + "; ".join(parts)
