"""Time the analysis engine side by side with bare PyTorch (one run, interleaved repeats, medians).

1. evaluate_run of a LeNet digits run (179 validation images; checkpoint and data already loaded) vs a bare
   `torch.inference_mode()` loop over the same model and the same (already preprocessed) batches; also the
   batched hot path alone (infer_split: the run's loader, the model, the logits buffer).
   Goals: ratio (bare time / evaluate time) >= 0.9, evaluate < 1 s.
2. The array side of a 100-class evaluation's confusion view (confusion matrix, per-class figures, row-normalised
   matrix, one cell's samples sorted by loss, top losses) for 10,000 samples. Goal < 100 ms. (Drawing it is the
   GUI's part.)
3. One Grad-CAM of a 32x32 image through ResNet-18 (CIFAR stem) on the CPU vs a bare forward+backward.
   Goal < 200 ms.

Run: python bench/bench_analysis.py [--repeat 15] [--threads N] [--workspace DIR --run RUN_ID]
Without --run it trains a 2-epoch LeNet digits run in a temporary workspace first (a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _interleaved(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of each function, the functions taking turns (so load changes hit all alike)."""
    for fn in fns:  # warm-up
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            ts.append(_timed(fn))
    return [statistics.median(ts) for ts in times]


def bench_evaluate(workspace: str | None, run_id: str | None, repeat: int) -> None:
    import torch

    from workbench.analysis.evaluate import evaluate_run, infer_split
    from workbench.analysis.inference import prepare_model
    from workbench.data import make_loader
    from workbench.training.restore import restore_run

    tmp = None
    if run_id is None:
        from workbench.training.config import TrainJob, recommended_config
        from workbench.training.job import run_training

        tmp = tempfile.TemporaryDirectory()
        workspace = tmp.name
        cfg = recommended_config("lenet", "digits", {"epochs": 2, "device": "cpu"})
        run_id = run_training(TrainJob(arch="lenet", dataset="digits", config=cfg, workspace=workspace)).run_id
    restored = restore_run(run_id, workspace=workspace)
    splits = restored.load_splits()
    precision = prepare_model(restored)
    p = restored.preprocessing
    loader = make_loader(splits.val, batch_size=restored.config.batch_size, device="cpu", train=False,
                         image_size=p.image_size, channels=p.channels, mean=p.mean, std=p.std,
                         channels_last=precision.channels_last, generator=torch.Generator())
    batches = [x for x, _ in loader]   # the same tensors evaluate feeds the model, made once
    model = restored.model

    def bare() -> None:
        with torch.inference_mode():
            for x in batches:
                model(x)

    def hot_path() -> None:
        infer_split(restored, splits.val)

    def evaluate() -> None:
        evaluate_run(restored, splits=splits)

    t_bare, t_hot, t_eval = _interleaved([bare, hot_path, evaluate], repeat)
    ev = evaluate_run(restored, splits=splits)
    print(f"[1] evaluate LeNet digits ({ev.num_samples} val images, batch {restored.config.batch_size}, "
          f"accuracy {100 * ev.accuracy:.2f}% = recorded {100 * (ev.recorded_accuracy or 0):.2f}%, "
          f"history {'yes' if ev.history is not None else 'no'})")
    print(f"    bare inference_mode loop (pre-made batches) : {t_bare * 1e3:8.2f} ms")
    print(f"    infer_split (loader + model + logits buffer): {t_hot * 1e3:8.2f} ms   ratio bare/this "
          f"{t_bare / t_hot:5.2f} (goal >= 0.9)")
    print(f"    evaluate_run (+ per-sample figures, history): {t_eval * 1e3:8.2f} ms   ratio bare/this "
          f"{t_bare / t_eval:5.2f} (goal >= 0.9; < 1000 ms)")
    if tmp is not None:
        tmp.cleanup()


def bench_confusion(repeat: int) -> None:
    import numpy as np

    from workbench.analysis.evaluate import Evaluation
    from workbench.analysis.metrics import confusion_matrix, row_normalised

    rng = np.random.default_rng(0)
    n, k = 10_000, 100
    labels = rng.integers(0, k, n)
    preds = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
    top = np.concatenate([preds[:, None], rng.integers(0, k, (n, 4))], axis=1)
    probs = np.sort(rng.random((n, 5)).astype(np.float32), axis=1)[:, ::-1] / 5

    def arrays() -> None:
        ev = Evaluation(run_id="r", checkpoint="best", split="val", epoch=1, arch="a", dataset="d",
                        classes=tuple(f"class {i}" for i in range(k)), labels=labels, predictions=preds,
                        top_classes=top, top_probabilities=probs, losses=rng.random(n).astype(np.float32),
                        sources=(), confusion=confusion_matrix(labels, preds, k))
        ev.per_class  # noqa: B018 - computed on first access
        row_normalised(ev.confusion)
        ev.cell(3, 7)
        ev.top_losses(20)

    (t,) = _interleaved([arrays], repeat)
    print(f"[2] confusion view arrays ({k} classes, {n} samples: matrix, per-class, row %, one cell, top losses): "
          f"{t * 1e3:.2f} ms (goal < 100 ms)")


def bench_gradcam(repeat: int) -> None:
    import torch

    from workbench.analysis.gradcam import grad_cam
    from workbench.models import build_model

    model = build_model("resnet18", num_classes=10, input_shape=(3, 32, 32), options={"stem": "cifar"}).eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def bare() -> None:
        out = model(x.clone().requires_grad_(True))
        out[0, 0].backward()
        model.zero_grad(set_to_none=True)

    t_bare, t_cam = _interleaved([bare, lambda: grad_cam(model, x)], repeat)
    print(f"[3] Grad-CAM ResNet-18 (CIFAR stem) 32x32 at {grad_cam(model, x).layer}")
    print(f"    bare forward+backward    : {t_bare * 1e3:8.2f} ms")
    print(f"    grad_cam                 : {t_cam * 1e3:8.2f} ms   (goal < 200 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--run", default=None, help="an existing LeNet digits run to evaluate")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    bench_evaluate(args.workspace, args.run, args.repeat)
    bench_confusion(args.repeat)
    bench_gradcam(args.repeat)


if __name__ == "__main__":
    main()
