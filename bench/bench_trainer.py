"""Trainer vs a bare PyTorch loop of the lecture's do_train shape: same model, batches and device.

Prints training img/s of each and the ratio (goal >= 0.98). Both loops see the same in-memory batches
(already on the device), run the same number of warm-up and timed epochs, alternately, best of N.

    python bench/bench_trainer.py [--arch lenet] [--batch-size 128] [--batches 40] [--repeats 3] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from workbench.models import build_model, get_spec, split_outputs
from workbench.training.config import TrainConfig
from workbench.training.device import resolve_device, resolve_precision
from workbench.training.trainer import Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_epoch(model: nn.Module, batches: list, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
               device: torch.device) -> float:
    """The lecture's do_train: train mode, per-step .item() bookkeeping, zero_grad/backward/step."""
    _sync(device)
    start = time.perf_counter()
    model.train()
    loss_train, num_corrects, num_samples, num_trains = 0.0, 0, 0, 0
    for x, y in batches:
        output, aux = split_outputs(model(x))
        loss = loss_fn(output, y)
        for a in aux:
            loss = loss + 0.3 * loss_fn(a, y)
        loss_train += loss.item()
        num_corrects += torch.sum(torch.eq(torch.argmax(output, dim=1), y)).item()
        num_samples += len(x)
        num_trains += 1
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="lenet")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--amp", default="off", help="off keeps both loops in fp32 (the bare loop has no autocast)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    spec = get_spec(args.arch)
    c, h, w = spec.natural_input
    if args.image_size:
        h = w = args.image_size
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch_size, c, h, w, generator=g).to(device),
                torch.randint(0, 10, (args.batch_size,), generator=g).to(device)) for _ in range(args.batches)]
    cfg = TrainConfig(epochs=1000, batch_size=args.batch_size, optimizer="sgd", lr=0.01, momentum=0.9,
                      weight_decay=0.0, schedule="constant", amp=args.amp, channels_last="off", device=str(device))
    prec = resolve_precision(cfg, device)

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return build_model(args.arch, num_classes=10, input_shape=(c, h, w), device=device)

    bare_model = fresh()
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    trainer = Trainer(fresh(), cfg, device=device, precision=prec, train_loader=batches, val_loader=None)

    def trainer_epoch() -> float:
        _sync(device)
        before = trainer.train_seconds
        trainer.batch = 0  # a fresh epoch (the bench skips validation and the epoch-end bookkeeping)
        trainer._train_epoch()
        _sync(device)
        return trainer.train_seconds - before  # training-loop time, measured by the Trainer itself

    bare_epoch(bare_model, batches, bare_opt, loss_fn, device)  # warm-up both
    trainer_epoch()
    bare_t, tr_t = [], []
    for i in range(args.repeats):  # alternate which loop goes first, so neither profits from order
        if i % 2:
            tr_t.append(trainer_epoch())
        bare_t.append(bare_epoch(bare_model, batches, bare_opt, loss_fn, device))
        if not i % 2:
            tr_t.append(trainer_epoch())
    images = args.batch_size * args.batches
    bare_ips, tr_ips = images / min(bare_t), images / min(tr_t)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.arch} {c}x{h}x{w}, "
          f"batch {args.batch_size}, {args.batches} batches, best of {args.repeats}")
    print(f"bare loop : {bare_ips:10.0f} img/s")
    print(f"Trainer   : {tr_ips:10.0f} img/s")
    print(f"ratio     : {tr_ips / bare_ips:.3f}  (goal >= 0.98)")


if __name__ == "__main__":
    main()
