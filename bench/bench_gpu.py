"""GPU throughput of the real engine: ResNet-18 (CIFAR stem) on FakeData 32 px, bf16 + channels-last vs fp32.

Each setting is a whole `run_training` job (the engine behind `workbench train`: device-resident data,
on-device augmentation, the Trainer, the run store), run one after another in this process. Prints, per
setting, the training img/s of the last epoch (cuDNN autotuning and compilation fall in the first) and over
the whole run, the peak GPU memory, and each setting's speed-up over fp32.

    python bench/bench_gpu.py [--device auto] [--batch-size 256] [--train-size 25000] [--epochs 3] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from workbench.training.callbacks import Callback
from workbench.training.config import TrainConfig, TrainJob
from workbench.training.device import resolve_device
from workbench.training.events import EpochMetrics
from workbench.training.job import run_training


class _Epochs(Callback):
    def __init__(self) -> None:
        self.ips: list[float] = []

    def on_epoch_end(self, e: EpochMetrics) -> None:
        self.ips.append(e.images_per_second)


def run(args: argparse.Namespace, workspace: Path, label: str, **settings: object) -> tuple[float, float]:
    """One training job; returns (last-epoch img/s, whole-run img/s) and prints a line."""
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.1, device=str(device), **settings)
    job = TrainJob(arch="resnet18", dataset="fake", config=cfg, workspace=workspace, name=label,
                   dataset_options={"train_size": args.train_size, "val_size": args.val_size})
    epochs = _Epochs()
    result = run_training(job, [epochs])
    if result.status != "completed":
        raise SystemExit(f"{label}: run ended {result.status}: {result.message}")
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    print(f"{label:34s} last epoch {epochs.ips[-1]:9,.0f} img/s   whole run {result.images_per_second:9,.0f} img/s"
          f"   peak {peak:5.2f} GiB", flush=True)
    return epochs.ips[-1], float(result.images_per_second or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--train-size", type=int, default=25000)
    ap.add_argument("--val-size", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time bf16 + channels-last + torch.compile")
    args = ap.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"device {device} ({name}), torch {torch.__version__}, ResNet-18 CIFAR stem 3x32x32, "
          f"batch {args.batch_size}, {args.train_size} FakeData images x {args.epochs} epochs per setting")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        base, _ = run(args, ws, "fp32, NCHW", amp="off", channels_last="off")
        settings = [("bf16 + channels-last (auto)", {"amp": "bf16", "channels_last": "on"}),
                    ("bf16, NCHW", {"amp": "bf16", "channels_last": "off"})]
        if args.compile:
            settings.append(("bf16 + channels-last + compile", {"amp": "bf16", "channels_last": "on", "compile": True}))
        for label, s in settings:
            last, _ = run(args, ws, label, **s)
            print(f"{'':34s} {last / base:.2f}x fp32 (last epoch)")


if __name__ == "__main__":
    main()
