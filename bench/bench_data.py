"""Data path speed: workbench's in-memory device loader vs a torchvision DataLoader with per-image PIL transforms.

Both feed LeNet (forward, backward, SGD step) with the same images, batch size and augmentation
(resize 8→28, random crop with 2 px padding, horizontal flip, normalisation) on the CPU, in the memory
format the engine picks for the CPU (channels-last unless --channels-last off). The classic
pipeline runs ToPILImage → Resize → RandomCrop → RandomHorizontalFlip → ToTensor → Normalize per image in a
DataLoader with 2 workers: as a notebook writes it (workers start anew each epoch, the DataLoader default)
and tuned (persistent_workers=True). Prints images/second for each and the ratio (goal: ≥ 5x).

    python bench/bench_data.py [--dataset digits|fake] [--epochs 3] [--batch-size 128] [--repeats 2] [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from workbench.data import InMemoryImages, load_splits, make_loader
from workbench.training.config import TrainConfig
from workbench.training.device import resolve_precision


def lenet(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """The lecture's LeNet (sigmoid, average pooling) for 28x28 inputs, from the model registry."""
    from workbench.models import build_model

    return build_model("lenet", num_classes=num_classes, input_shape=(in_channels, 28, 28))


class PilDataset(Dataset):
    """The classic per-image pipeline over the same uint8 images."""

    def __init__(self, src: InMemoryImages, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        from torchvision import transforms as T

        self.src = src
        self.transform = T.Compose([T.ToPILImage(), T.Resize((28, 28)), T.RandomCrop(28, padding=2),
                                    T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.src.images[i]), int(self.src.labels[i])


def run_epochs(batches, model: nn.Module, epochs: int, train: bool, channels_last: bool) -> tuple[float, int]:
    """Seconds and images for `epochs` passes over `batches` (a re-iterable), with or without training."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    images = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in batches:
            images += x.shape[0]
            if train:
                if channels_last:  # what the Trainer does with every batch (a no-op for the in-memory path)
                    x = x.contiguous(memory_format=torch.channels_last)
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                opt.step()
    return time.perf_counter() - start, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits", choices=("digits", "fake"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="alternating rounds; the best round of each counts")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads in the main process (0: default)")
    ap.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (both paths; ~40 s to compile)")
    args = ap.parse_args()
    cl = resolve_precision(TrainConfig(channels_last=args.channels_last), torch.device("cpu")).channels_last
    if args.threads:
        torch.set_num_threads(args.threads)

    opts = {"image_shape": (1, 8, 8), "train_size": 2000, "val_size": 0} if args.dataset == "fake" else None
    splits = load_splits(args.dataset, options=opts)
    src, spec = splits.train, splits.spec
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    fast = make_loader(src, batch_size=args.batch_size, device="cpu", train=True, image_size=(28, 28), channels=1,
                       mean=spec.mean[:1], std=spec.std[:1], crop_padding=2, hflip=True, generator=gen,
                       channels_last=cl)
    pil = PilDataset(src, spec.mean[:1], spec.std[:1])
    # The plain DataLoader a notebook writes (workers start anew each epoch), and one tuned to keep them.
    slow = DataLoader(pil, batch_size=args.batch_size, shuffle=True, num_workers=2,
                      generator=torch.Generator().manual_seed(0))
    kept = DataLoader(pil, batch_size=args.batch_size, shuffle=True, num_workers=2, persistent_workers=True,
                      generator=torch.Generator().manual_seed(0))
    model = lenet().to(memory_format=torch.channels_last if cl else torch.contiguous_format)
    if args.compile:
        model = torch.compile(model)
    print(f"data: {args.dataset} train split, {len(src)} images {tuple(src.images.shape[1:])} -> 1x28x28, "
          f"batch {args.batch_size}, {args.epochs} epochs per round, torch threads {torch.get_num_threads()}, "
          f"channels-last {'on' if cl else 'off'}{', torch.compile' if args.compile else ''}")
    run_epochs(fast, model, 1, True, cl)   # warm-up: prepares the device store, starts the workers
    run_epochs(slow, model, 1, True, cl)
    run_epochs(kept, model, 1, True, cl)

    fixed = [next(iter(fast))] * len(fast)   # one batch reused: LeNet with free data, the ceiling
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, batches, train in (("workbench loader + LeNet", fast, True), ("PIL DataLoader + LeNet", slow, True),
                                     ("PIL, persistent workers + LeNet", kept, True),
                                     ("workbench loader only", fast, False), ("PIL DataLoader only", slow, False),
                                     ("PIL, persistent workers only", kept, False),
                                     ("LeNet alone (data free)", fixed, True)):
            secs, n = run_epochs(batches, model, args.epochs, train, cl)
            best[name] = max(best.get(name, 0.0), n / secs)
    for name, ips in best.items():
        print(f"{name:32s} {ips:12,.0f} img/s")
    ours = best["workbench loader + LeNet"]
    print(f"ratio (LeNet training, in-memory vs PIL DataLoader):      {ours / best['PIL DataLoader + LeNet']:.1f}x"
          "  (goal >= 5x)")
    print(f"ratio (LeNet training, in-memory vs persistent workers):  "
          f"{ours / best['PIL, persistent workers + LeNet']:.1f}x  (goal >= 5x)")
    print(f"ratio (data path only, vs PIL DataLoader / persistent):   "
          f"{best['workbench loader only'] / best['PIL DataLoader only']:.1f}x / "
          f"{best['workbench loader only'] / best['PIL, persistent workers only']:.1f}x")
    print(f"in-memory training reaches {best['workbench loader + LeNet'] / best['LeNet alone (data free)']:.0%} of "
          f"the LeNet-alone ceiling; the best possible training ratios here are "
          f"{best['LeNet alone (data free)'] / best['PIL DataLoader + LeNet']:.1f}x / "
          f"{best['LeNet alone (data free)'] / best['PIL, persistent workers + LeNet']:.1f}x")


if __name__ == "__main__":
    main()
