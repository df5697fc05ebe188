"""`workbench evaluate`, `predict` and `explain`: look at what a trained run learned.

All three read an existing workspace (none is created), load a run's `best` (default) or `last` checkpoint on the
CPU (or --device), and fail with exit 2 and one line for bad input. `explain` writes only into --out
(default: ./explain-RUN_ID), and only once everything has been computed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.cli.common import EXIT_OK, WORKSPACE_HELP, finite, print_json_line, workspace_arg

CHECKPOINT_HELP = "which checkpoint: best (highest validation accuracy, the default) or last"
TOP_LOSSES_JSON = 20
MATRIX_MAX_CLASSES = 20   # the readable report prints the confusion matrix up to this many classes


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `evaluate`, `predict` and `explain`."""
    p = sub.add_parser("evaluate", help="accuracy, per-class table, confusion matrix and top losses of a run")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--split", choices=("val", "train"), default="val", help="which split (default: val)")
    _common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files with a run's model")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP …)")
    p.add_argument("--top", metavar="K", type=int, default=5, help="how many classes to show per image (default: 5)")
    _common(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM, feature maps and filters of a run's model for one image")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--layer", metavar="NAME", default=None,
                   help="layer name as in `workbench summary` (default: the last convolution)")
    p.add_argument("--class", dest="class_name", metavar="NAME", default=None,
                   help="class to explain, by name or index (default: the predicted class)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for gradcam.png, features.png, filters.png (default: ./explain-RUN_ID)")
    _common(p)
    p.set_defaults(func=cmd_explain)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help=CHECKPOINT_HELP)
    p.add_argument("--device", default="cpu", help="device to run the model on (default: cpu)")
    p.add_argument("--workspace", metavar="DIR", default=None, help=WORKSPACE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _restore(args: argparse.Namespace) -> Any:
    from workbench.training.device import resolve_device
    from workbench.training.restore import restore_run

    device = resolve_device(args.device)
    return restore_run(args.run_id, workspace=workspace_arg(args.workspace), checkpoint=args.checkpoint,
                       device=device)


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.2f}%"


def _table(rows: Sequence[Sequence[str]], right: set[int] | None = None) -> list[str]:
    right = right or set()
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def _short(name: str, width: int = 14) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run's checkpoint on a split: a readable report, or one JSON object as the last line."""
    from workbench.analysis.evaluate import evaluate_run

    restored = _restore(args)
    ev = evaluate_run(restored, split=args.split)
    if args.json:
        print_json_line(ev.to_dict(top_losses=TOP_LOSSES_JSON))
        return EXIT_OK
    names = ev.classes
    print(f"Run {ev.run_id} ({ev.arch} on {ev.dataset}), {ev.checkpoint} checkpoint (epoch {ev.epoch}), "
          f"{ev.split} split: {ev.num_samples} samples in {ev.seconds:.2f} s")
    recorded = f" (recorded in training: {_pct(ev.recorded_accuracy)})" if ev.recorded_accuracy is not None else ""
    print(f"Accuracy {_pct(ev.accuracy)}  loss {ev.loss:.4f}{recorded}")
    if ev.history is not None:
        first, forgot = ev.first_correct_epoch() or [], ev.forgotten() or []
        never = sum(1 for e in first if e is None)
        print(f"History: {len(ev.history.epochs)} epochs recorded; {len(first) - never} samples learned, "
              f"{never} never, {sum(1 for f in forgot if f)} forgotten at least once")
    pc = ev.per_class
    print("\nPer class:")
    rows: list[tuple[str, ...]] = [("CLASS", "SUPPORT", "RECALL", "PRECISION")]
    rows += [(_short(names[k]), str(int(pc.support[k])), _pct(float(pc.recall[k])), _pct(float(pc.precision[k])))
             for k in range(ev.num_classes)]
    print("\n".join(_table(rows, right={1, 2, 3})))
    if ev.num_classes <= MATRIX_MAX_CLASSES:
        print("\nConfusion matrix (rows = true class, columns = predicted):")
        header = ("",) + tuple(_short(n, 6) for n in names)
        body = [(_short(names[k], 10),) + tuple(str(int(v)) for v in ev.confusion[k]) for k in range(ev.num_classes)]
        print("\n".join(_table([header, *body], right=set(range(1, ev.num_classes + 1)))))
    else:
        print(f"\n({ev.num_classes} classes: the confusion matrix is in --json.)")
    print("\nTop losses:")
    rows = [("INDEX", "SOURCE", "TRUE", "PREDICTED", "PROB", "LOSS")]
    for i in ev.top_losses(10):
        rows.append((str(int(i)), ev.sources[i], _short(names[ev.labels[i]]), _short(names[ev.predictions[i]]),
                     _pct(float(ev.probabilities[i])), f"{float(ev.losses[i]):.3f}"))
    print("\n".join(_table(rows, right={0, 4, 5})))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Top-k classes of each image: one line per image, or one JSON object as the last line."""
    from workbench.analysis.predict import predict_images
    from workbench.errors import InvalidOptionError

    if args.top < 1:
        raise InvalidOptionError(f"--top must be at least 1, got {args.top}.")
    restored = _restore(args)
    predictions = predict_images(restored, args.images, top=args.top)
    if args.json:
        print_json_line({"run_id": restored.run_id, "checkpoint": restored.checkpoint,
                         "predictions": [p.to_dict() for p in predictions]})
        return EXIT_OK
    for p in predictions:
        tops = ", ".join(f"{c} ({_pct(v)})" for c, v in zip(p.classes, p.probabilities))
        print(f"{p.image}: {tops}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """Grad-CAM, feature maps and filters for one image, written as PNGs into --out."""
    from workbench.analysis import render
    from workbench.analysis.explain import explain_image

    restored = _restore(args)
    ex = explain_image(restored, args.image, layer=args.layer, class_name=args.class_name)
    pictures = {"gradcam": render.gradcam_picture(ex.view, ex.gradcam.heatmap),
                "features": render.features_picture(ex.features)}
    if ex.filters is not None:
        pictures["filters"] = render.filters_picture(ex.filters)
    out = Path(args.out).expanduser() if args.out else Path(f"explain-{restored.run_id}")
    from workbench.errors import WorkspaceError

    try:
        out.mkdir(parents=True, exist_ok=True)
        files = {name: str(render.save_png(image, out / f"{name}.png")) for name, image in pictures.items()}
    except OSError as exc:
        raise WorkspaceError(f"Cannot write into {out} ({exc.strerror or exc}); choose another --out.") from None
    cam = ex.gradcam
    result = {"run_id": restored.run_id, "checkpoint": restored.checkpoint, "image": ex.image, "layer": cam.layer,
              "class": ex.class_name, "class_probability": finite(cam.class_probability),
              "predicted": restored.classes[cam.predicted_index], "probability": finite(cam.predicted_probability),
              "out": str(out), "files": {"gradcam": files["gradcam"], "features": files["features"],
                                         "filters": files.get("filters")}}
    if args.json:
        print_json_line(result)
        return EXIT_OK
    print(f"{ex.image}: predicted {result['predicted']} ({_pct(cam.predicted_probability)}); Grad-CAM of class "
          f"{ex.class_name} ({_pct(cam.class_probability)}) at layer {cam.layer}")
    for path in files.values():
        print(f"wrote {path}")
    return EXIT_OK
