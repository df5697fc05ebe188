"""Architectures side by side: the summary's numbers per architecture, optionally measured speed on a device,
and the best validation accuracy of the workspace's runs of each (the lecture's comparison slide, made live).

Every static figure comes from `workbench.models.summarize` (meta device, no weights), so a compare row equals
that architecture's `summary`. Speeds are measured with real weights on random data: training = forward,
backward and one SGD step; inference = a forward pass in eval mode; both fp32 at a fixed batch size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.json_tags import plain

Shape = tuple[int, int, int]
Progress = Callable[[str], None]

DEFAULT_BATCH = 64
DEFAULT_DURATION_S = 2.0


@dataclass(frozen=True)
class CompareRow:
    """One architecture's figures; the measured and workspace fields are None when not asked for or absent."""

    arch: str
    options: dict
    input: list[int]
    classes: int
    params: int
    mult_adds: int
    params_mb: float
    activations_mb: float                # torchinfo's forward/backward pass size at batch 1
    conv_layers: int
    linear_layers: int
    receptive_field: int | None          # of the model's (main) output, theoretical (not clipped to the input)
    train_images_per_second: float | None = None
    infer_images_per_second: float | None = None
    best_val_accuracy: float | None = None
    runs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples in options become lists)."""
        data: dict[str, Any] = plain(asdict(self))
        return data


@dataclass(frozen=True)
class Comparison:
    """The rows, with the input and classes every row was asked for (None: each architecture's own)."""

    input: list[int] | None
    classes: int | None
    rows: tuple[CompareRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """`{input, classes, rows: [...]}`, JSON-ready."""
        return {"input": self.input, "classes": self.classes, "rows": [r.to_dict() for r in self.rows]}


def row_from_summary(summary: Any) -> CompareRow:
    """The static figures of a `ModelSummary` (conv/linear layers counted once per module)."""
    convs = {r.name for r in summary.layers if r.is_leaf and r.type.startswith("Conv")}
    linears = {r.name for r in summary.layers if r.is_leaf and r.type.endswith("Linear")}
    t = summary.totals
    return CompareRow(
        arch=summary.arch, options=dict(summary.options), input=list(summary.input_shape),
        classes=summary.num_classes, params=t.total_params, mult_adds=t.mult_adds, params_mb=t.params_mb,
        activations_mb=t.forward_backward_mb, conv_layers=len(convs), linear_layers=len(linears),
        receptive_field=summary.layers[0].receptive_field if summary.layers else None,
    )  # fmt: skip


def compare_architectures(
    archs: Sequence[str],
    *,
    input_shape: Shape | None = None,
    num_classes: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    measure: bool = False,
    device: str = "auto",
    duration_s: float = DEFAULT_DURATION_S,
    batch_size: int = DEFAULT_BATCH,
    workspace: Path | None = None,
    progress: Progress | None = None,
    summarize_fn: Callable[..., Any] | None = None,
) -> Comparison:
    """One row per architecture (each at its natural input unless `input_shape` is given).

    `options` maps an architecture name to its options. Every architecture is summarised (and so validated)
    before anything is measured. With `measure`, each is trained and run for about `duration_s` seconds per
    mode on `device`. The workspace is only read; one without a database gives None for runs and accuracy.
    `summarize_fn` (called like `workbench.models.summarize`) computes the summaries: the app's computes them in a
    helper process, through its session cache.
    """
    from workbench.models import summarize as engine_summarize

    summarize = summarize_fn or engine_summarize
    if not archs:
        raise WorkbenchError("Name at least one architecture to compare, e.g. `workbench compare vgg_cifar nin`.")
    options = options or {}
    rows = [row_from_summary(summarize(a, input_shape=input_shape, num_classes=num_classes,
                                       options=options.get(a))) for a in archs]  # fmt: skip
    history = _workspace_records(workspace)
    if history is not None:
        rows = [_with_runs(row, history) for row in rows]
    if measure:
        measured = []
        for row in rows:
            if progress is not None:
                progress(f"measuring {row.arch} ({'x'.join(map(str, row.input))}, batch {batch_size}) on {device}")
            train, infer = measure_throughput(row.arch, input_shape=_shape(row.input), num_classes=row.classes,
                                              options=row.options, device=device, batch_size=batch_size,
                                              duration_s=duration_s)  # fmt: skip
            measured.append(_replace(row, train_images_per_second=train, infer_images_per_second=infer))
        rows = measured
    shape = list(input_shape) if input_shape is not None else None
    return Comparison(shape, num_classes, tuple(rows))


def _shape(values: list[int]) -> Shape:
    return (int(values[0]), int(values[1]), int(values[2]))


def _replace(row: CompareRow, **changes: Any) -> CompareRow:
    import dataclasses

    return dataclasses.replace(row, **changes)


# --- the workspace's runs --------------------------------------------------------------------------------------


def _workspace_records(workspace: Path | None) -> list[Any] | None:
    """The workspace's runs, or None when it has no run database (nothing is created)."""
    from workbench.paths import default_workspace
    from workbench.runs.db import DB_NAME

    folder = Path(workspace).expanduser() if workspace is not None else default_workspace()
    if not (folder / DB_NAME).is_file():
        return None
    from workbench.runs import RunStore

    store = RunStore(folder)
    try:
        return list(store.list_runs())
    finally:
        store.close()


def _with_runs(row: CompareRow, records: list[Any]) -> CompareRow:
    """Runs of the same architecture whose resolved options equal the row's (the same network)."""
    from workbench.models import resolve_options
    from workbench.models.init import as_recorded

    same = []
    for record in records:
        if record.arch != row.arch:
            continue
        try:
            if resolve_options(row.arch, as_recorded(row.arch, record.arch_options)) != row.options:
                continue
        except WorkbenchError:  # options of an older version of the architecture
            continue
        same.append(record)
    if not same:
        return row
    scores = [r.best_val_accuracy for r in same if r.best_val_accuracy is not None]
    return _replace(row, best_val_accuracy=max(scores) if scores else None, runs=len(same))


# --- measured speed ------------------------------------------------------------------------------------------


def measure_throughput(
    arch: str,
    *,
    input_shape: Shape,
    num_classes: int,
    options: dict[str, Any] | None = None,
    device: str = "auto",
    batch_size: int = DEFAULT_BATCH,
    duration_s: float = DEFAULT_DURATION_S,
) -> tuple[float, float]:
    """(training, inference) images per second of `arch` on `device`, each timed for about `duration_s`
    after one warm-up step; random data, fp32, SGD with momentum, aux heads weighted 0.3 like training."""
    import torch
    from torch.nn import functional

    from workbench.models import build_model, split_outputs
    from workbench.training.device import is_out_of_memory, resolve_device

    dev = resolve_device(device)
    torch.manual_seed(0)
    try:
        model = build_model(arch, num_classes=num_classes, input_shape=input_shape, options=options, device=dev)
        x = torch.randn(batch_size, *input_shape, device=dev)
        y = torch.randint(0, num_classes, (batch_size,), device=dev)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def train_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            main, aux = split_outputs(model(x))
            loss = functional.cross_entropy(main, y)
            for logits in aux:
                loss = loss + 0.3 * functional.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()

        model.train()
        train = _rate(train_step, batch_size, duration_s, dev)
        model.eval()
        with torch.inference_mode():
            infer = _rate(lambda: model(x), batch_size, duration_s, dev)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise WorkbenchError(
                f"{arch} ran out of memory on {dev} at batch {batch_size} of {'x'.join(map(str, input_shape))}; "
                "compare it without --measure or at a smaller --input."
            ) from None
        raise
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return train, infer


def _rate(step: Callable[[], Any], batch_size: int, duration_s: float, device: Any) -> float:
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up: allocations, cuDNN algorithm choice
    sync()
    images, start = 0, time.perf_counter()
    while True:
        step()
        sync()
        images += batch_size
        elapsed = time.perf_counter() - start
        if elapsed >= duration_s:
            return round(images / elapsed, 1)
