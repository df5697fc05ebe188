"""Time a meta-device summary of VGG16 at 224 px against torchinfo's real CPU forward pass, side by side.

Run: python bench/bench_summary.py [--arch vgg16] [--repeat 5]
Prints the median time of each and their ratio; the goal is <= 100 ms for the meta summary.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="vgg16")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch
    import torchinfo

    from workbench.models import build_model, get_spec, summarize

    shape = get_spec(args.arch).natural_input
    summarize(args.arch)  # warm-up (first-call import and dispatch costs)
    meta_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = summarize(args.arch)
        meta_times.append(time.perf_counter() - start)

    model = build_model(args.arch)  # real weights on the CPU, built once (not timed)
    torchinfo.summary(model, input_size=(1, *shape), device="cpu", verbose=0)  # warm-up
    cpu_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        real = torchinfo.summary(model, input_size=(1, *shape), device="cpu", verbose=0)
        cpu_times.append(time.perf_counter() - start)
    assert real.total_params == result.totals.total_params

    meta_ms, cpu_ms = statistics.median(meta_times) * 1e3, statistics.median(cpu_times) * 1e3
    print(f"arch={args.arch} input={'x'.join(map(str, shape))} params={result.totals.total_params:,} "
          f"threads={torch.get_num_threads()}")  # fmt: skip
    print(f"workbench summarize (meta, build+summary): {meta_ms:8.1f} ms   (goal <= 100 ms)")
    print(f"torchinfo.summary (real CPU forward)     : {cpu_ms:8.1f} ms")
    print(f"ratio cpu/meta                           : {cpu_ms / meta_ms:8.1f}x")


if __name__ == "__main__":
    main()
