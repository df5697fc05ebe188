"""Write resources/summaries.json: the summaries the app shows without computing them.

Every lecture architecture (the registry's own, not torchvision's) at its natural input and classes, and at the
bundled digits' input (1 channel, 10 classes), as `workbench.models.summary_cache.shipped_requests()` lists them.
Run it after changing anything under workbench/models/ (tests/test_summary_cache.py fails until you do):

    python scripts/make_summary_cache.py [--out resources/summaries.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workbench.models import summarize
from workbench.models.summary_cache import shipped_path, shipped_requests, write_shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=shipped_path())
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summaries = []
    for arch, shape, classes in shipped_requests():
        summaries.append(summarize(arch, input_shape=shape, num_classes=classes))
        print(f"{arch:12s} {'x'.join(map(str, shape)):>10s} {classes:5d} classes", flush=True)
    count = write_shipped(args.out, summaries)
    size = args.out.stat().st_size / 1e6
    print(f"wrote {count} summaries to {args.out} ({size:.2f} MB) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
