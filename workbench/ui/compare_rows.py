"""The Compare view's background work, Qt-free: one `CompareRow` per ticked architecture, from the engine's
`compare_architectures` (summary figures, the workspace's runs, optionally measured speed).

Each architecture is compared at the input the app would train it at: the current data set's channels and
classes, at the architecture's natural size (images are resized to what the model needs), or its own natural
input and classes when no data set is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.analysis.compare import CompareRow
    from workbench.ui.tasks import TaskSink

MEASURE_SECONDS = 1.0     # per mode and architecture, when speed is measured in the app


@dataclass(frozen=True)
class CompareEntry:
    """One ticked architecture with its options (as typed in the form, resolved by the engine)."""

    arch: str
    options: dict[str, Any] = field(default_factory=dict)

    def key(self, channels: int | None, classes: int | None) -> str:
        """Identifies the network compared (for caching measured speeds)."""
        return f"{self.arch}|{sorted(self.options.items())!r}|{channels}|{classes}"


@dataclass(frozen=True)
class CompareOutcome:
    """One entry's row, or why it has none (e.g. options that do not build)."""

    entry: CompareEntry
    row: CompareRow | None
    error: str = ""


@dataclass(frozen=True)
class CompareResult:
    """The outcomes in the order the entries were ticked."""

    outcomes: tuple[CompareOutcome, ...]


def entry_input(arch: str, options: dict[str, Any], channels: int | None,
                classes: int | None) -> tuple[tuple[int, int, int], int]:
    """(C, H, W) and classes the app trains `arch` at: the data set's channels and classes, the natural size."""
    from workbench.models import get_spec

    spec = get_spec(arch)
    natural = spec.natural_input_for(options)
    return (int(channels or natural[0]), natural[1], natural[2]), int(classes or spec.default_classes)


def compare_task(entries: Sequence[CompareEntry], *, channels: int | None, classes: int | None,
                 workspace: Path, measure: Sequence[bool] = (),
                 duration_s: float = MEASURE_SECONDS) -> Callable[[TaskSink], CompareResult]:
    """A task: one outcome per entry (speed measured on the CPU for the entries whose `measure` flag is set);
    an entry that fails (bad options, too small an input) says why."""
    todo = tuple(entries)
    flags = tuple(measure) + (False,) * (len(todo) - len(measure))

    def task(sink: TaskSink) -> CompareResult:
        from workbench.analysis.compare import compare_architectures
        from workbench.errors import WorkbenchError
        from workbench.models import resolve_options
        from workbench.models.summary_process import SummaryProcessError, summarize_in_helper

        outcomes = []
        for n, (entry, timed) in enumerate(zip(todo, flags)):
            if sink.cancelled():
                break
            sink.progress(f"{'Measuring' if timed else 'Summarizing'} {entry.arch}…", n / max(1, len(todo)))
            try:
                options = resolve_options(entry.arch, entry.options)
                shape, k = entry_input(entry.arch, options, channels, classes)
                result = compare_architectures([entry.arch], input_shape=shape, num_classes=k,
                                               options={entry.arch: options}, measure=timed, device="cpu",
                                               duration_s=duration_s, workspace=workspace,
                                               summarize_fn=summarize_in_helper)
                outcomes.append(CompareOutcome(entry, result.rows[0]))
            except (WorkbenchError, SummaryProcessError) as exc:  # this entry's failure: the other rows stand
                outcomes.append(CompareOutcome(entry, None, str(exc)))
        return CompareResult(tuple(outcomes))

    return task


# (title, CompareRow field, how the table writes it, unit of the chart's axis)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Params", "params"), ("Mult-Adds", "mult_adds"), ("Params MB", "params_mb"), ("Activations MB", "activations_mb"),
    ("Conv layers", "conv_layers"), ("Linear layers", "linear_layers"), ("Receptive field", "receptive_field"),
    ("Train img/s", "train_images_per_second"), ("Infer img/s", "infer_images_per_second"),
    ("Best val acc", "best_val_accuracy"), ("Runs", "runs"),
)


def cell_text(key: str, value: float | int | None) -> str:
    """How the table writes one figure ("–" when unknown)."""
    from workbench.ui.summary_view import human

    if value is None:
        return "–"
    if key in ("params", "mult_adds"):
        return f"{int(value):,} ({human(value)})"
    if key in ("params_mb", "activations_mb"):
        return f"{value:,.2f}"
    if key.endswith("per_second"):
        return f"{value:,.0f}"
    if key == "best_val_accuracy":
        return f"{100 * value:.2f} %"
    return f"{value:,}"


def chart_value(key: str, value: float | int | None) -> float:
    """The bar height of one figure (accuracy in percent; unknown is 0)."""
    if value is None:
        return 0.0
    return 100.0 * float(value) if key == "best_val_accuracy" else float(value)


def entry_label(entry: CompareEntry, defaults: dict[str, Any]) -> str:
    """The architecture's name with the options that differ from its defaults, e.g. "resnet20 (residual=False)"."""
    changed = ", ".join(f"{k}={v!r}" for k, v in entry.options.items() if k in defaults and defaults[k] != v)
    return f"{entry.arch} ({changed})" if changed else entry.arch
