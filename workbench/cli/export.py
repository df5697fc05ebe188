"""`workbench export`: a run's model as ONNX / pt2 / safetensors, or its metrics as TensorBoard logs."""

from __future__ import annotations

import argparse

from workbench.cli.common import EXIT_OK, WORKSPACE_HELP, print_json_line, workspace_arg

FORMAT_CHOICES = ("onnx", "pt2", "safetensors", "tensorboard")   # workbench.export.FORMATS, without importing it


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `export`."""
    p = sub.add_parser(
        "export", help="export a run's model (ONNX, pt2, safetensors) or its metrics (TensorBoard)",
        description="Export a stored run. onnx needs pip install 'cnn-workbench[onnx]', safetensors "
                    "'cnn-workbench[safetensors]', tensorboard 'cnn-workbench[tensorboard]'; pt2 needs only torch.")
    p.add_argument("run_id", metavar="RUN_ID", help="the run to export (see `workbench runs`)")
    p.add_argument("--format", required=True, choices=FORMAT_CHOICES,
                   help="onnx (Netron, onnxruntime), pt2 (torch.export program), safetensors (weights only), "
                        "tensorboard (scalars and hyper-parameters)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint's weights to export (model formats; default: best)")
    p.add_argument("--out", default=None, metavar="FILE_OR_DIR",
                   help="file to write, or a folder for RUN_ID-CHECKPOINT.SUFFIX (default: the current folder); "
                        "for tensorboard the log dir, the run going to DIR/RUN_ID (default: ./tensorboard)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--workspace", default=None, help=WORKSPACE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export one run; a summary line, or a JSON object as the last line."""
    from workbench.export import export_run

    result = export_run(args.run_id, format=args.format, workspace=workspace_arg(args.workspace),
                        checkpoint=args.checkpoint, out=args.out, overwrite=args.force)
    if args.json:
        print_json_line(result.to_dict())
        return EXIT_OK
    size = _size(result.bytes)
    if result.format == "tensorboard":
        d = result.details
        print(f"Wrote {d.get('scalars', 0)} scalars and {d.get('hparams', 0)} hyper-parameters of run "
              f"{result.run_id} to {result.path} ({size}); view them with: tensorboard --logdir {d.get('logdir')}")
        return EXIT_OK
    shape = "x".join(str(v) for v in result.input_shape or ())
    extra = f", opset {result.details['opset']}" if result.details.get("opset") else ""
    print(f"Wrote run {result.run_id} ({result.arch}, {result.checkpoint} checkpoint) as {result.format}{extra}: "
          f"{result.path} ({size}; input N x {shape}, {result.num_classes} classes).")
    return EXIT_OK


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024**2 else f"{n / 1024**2:.1f} MB"
