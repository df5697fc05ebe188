"""GPU throughput of the real engine: ResNet-18 (CIFAR stem) on FakeData 32 px, bf16 + channels-last vs fp32.

Each setting is a whole `run_training` job (the engine behind `workbench train`: device-resident data,
on-device augmentation, the Trainer, the run store), run one after another in this process. Prints, per
setting, the training img/s of each epoch (cuDNN autotuning and compilation fall in the first) and over the
whole run, the peak GPU memory (cuDNN's autotuning workspaces included), and the last epoch's speed-up over
fp32 (always run first, as the baseline; its convolutions use TF32, PyTorch's cuDNN default). A short LeNet
job runs first so that no setting pays CUDA's start-up. The last epoch is one noisy sample: use --epochs 5 and
compare several runs before drawing conclusions.

    python bench/bench_gpu.py [--device auto] [--batch-size 256] [--train-size 25000] [--epochs 3]
                              [--settings auto,bf16-nchw] (names: see SETTINGS)
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path

import torch

from workbench.training.callbacks import Callback
from workbench.training.config import TrainConfig, TrainJob
from workbench.training.device import resolve_device
from workbench.training.events import EpochMetrics
from workbench.training.job import run_training

# name -> (label, TrainConfig fields); "fp32" is the baseline and always runs first.
SETTINGS: dict[str, tuple[str, dict[str, object]]] = {
    "fp32": ("fp32, NCHW", {"amp": "off", "channels_last": "off"}),
    "auto": ("auto (bf16/fp16 + channels-last)", {"amp": "auto", "channels_last": "auto"}),
    "bf16-nchw": ("bf16, NCHW", {"amp": "bf16", "channels_last": "off"}),
    "fp32-cl": ("fp32, channels-last", {"amp": "off", "channels_last": "on"}),
    "compile": ("auto + torch.compile", {"amp": "auto", "channels_last": "auto", "compile": True}),
    "compile-nchw": ("bf16, NCHW + torch.compile", {"amp": "bf16", "channels_last": "off", "compile": True}),
}


class _Epochs(Callback):
    def __init__(self) -> None:
        self.ips: list[float] = []

    def on_epoch_end(self, e: EpochMetrics) -> None:
        self.ips.append(e.images_per_second)


def run(args: argparse.Namespace, workspace: Path, label: str, settings: dict[str, object]) -> tuple[float, float]:
    """One training job; returns (last-epoch img/s, whole-run img/s) and prints a line."""
    device = resolve_device(args.device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the previous setting's cached blocks must not count towards this peak
        torch.cuda.reset_peak_memory_stats(device)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.1, device=str(device), **settings)
    job = TrainJob(arch="resnet18", dataset="fake", config=cfg, workspace=workspace, name=label,
                   dataset_options={"train_size": args.train_size, "val_size": args.val_size})
    epochs = _Epochs()
    result = run_training(job, [epochs])
    if result.status != "completed":
        print(f"{label}: run ended {result.status}: {result.message.splitlines()[0]}", flush=True)
        return float("nan"), float("nan")
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    per_epoch = " / ".join(f"{v:,.0f}" for v in epochs.ips)
    print(f"{label:38s} last epoch {epochs.ips[-1]:9,.0f} img/s   whole run {result.images_per_second:9,.0f} img/s"
          f"   peak {peak:5.2f} GiB   (epochs: {per_epoch})", flush=True)
    return epochs.ips[-1], float(result.images_per_second or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--train-size", type=int, default=25000)
    ap.add_argument("--val-size", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--settings", default="auto,bf16-nchw", help=f"comma-separated, of {', '.join(SETTINGS)}")
    args = ap.parse_args()
    names = [n for n in args.settings.split(",") if n and n != "fp32"]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        ap.error(f"unknown setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"device {device} ({name}), torch {torch.__version__}, ResNet-18 CIFAR stem 3x32x32, "
          f"batch {args.batch_size}, {args.train_size} FakeData images x {args.epochs} epochs per setting")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        warm = TrainJob(arch="lenet", dataset="fake", workspace=ws, name="warm-up",
                        config=TrainConfig(epochs=1, batch_size=256, device=str(device)),
                        dataset_options={"train_size": 2048, "val_size": 256})
        run_training(warm)
        base, _ = run(args, ws, *SETTINGS["fp32"])
        for name in names:
            last, _ = run(args, ws, *SETTINGS[name])
            print(f"{'':38s} {last / base:.2f}x fp32 (last epoch)")


if __name__ == "__main__":
    main()
