"""Export a stored run: its checkpoint as a model file, or its metrics as TensorBoard logs."""

from __future__ import annotations

from pathlib import Path

from workbench.export.common import MODEL_FORMATS, ExportResult, ModelMetadata, check_format, require_extra


def export_run(run_id: str, *, format: str, workspace: Path | str | None = None, checkpoint: str = "best",
               out: Path | str | None = None, overwrite: bool = False) -> ExportResult:
    """Export run `run_id` as `format`: onnx | pt2 | safetensors (the `checkpoint` "best" or "last"), or
    tensorboard (the run's metrics and hyper-parameters; `checkpoint` is not used).

    `out`: the file to write (a folder: a `<run_id>-<checkpoint>.<suffix>` file in it; None: the current folder);
    for tensorboard the log dir (None: `./tensorboard`), the run going to `<out>/<run_id>/`. An existing output
    is only replaced with `overwrite`. Raises WorkbenchError subclasses for what the user can fix: unknown run or
    workspace (UnknownNameError), missing checkpoint (CheckpointError), missing optional extra
    (MissingExtraError), unwritable or existing output and untraceable models (ExportError).
    """
    check_format(format)
    if format == "tensorboard":
        from workbench.export.tensorboard import export_tensorboard

        return export_tensorboard(run_id, workspace=workspace, out=out, overwrite=overwrite)
    assert format in MODEL_FORMATS
    if format in ("onnx", "safetensors"):  # before the checkpoint is loaded: fail fast
        require_extra(format, "ONNX export" if format == "onnx" else "safetensors export")
    from workbench.export.formats import export_model
    from workbench.training.restore import restore_run

    restored = restore_run(run_id, workspace=workspace, checkpoint=checkpoint, device="cpu")
    meta = ModelMetadata(
        arch=restored.arch, arch_options=dict(restored.arch_options), input_shape=restored.input_shape,
        classes=restored.classes, mean=restored.preprocessing.mean, std=restored.preprocessing.std,
        run_id=restored.run_id, checkpoint=restored.checkpoint, epoch=restored.epoch, dataset=restored.dataset,
        dataset_options=dict(restored.dataset_options))
    return export_model(restored.model, meta, format=format, out=out, overwrite=overwrite)
