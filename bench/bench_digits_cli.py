"""`workbench train --arch lenet --dataset digits --epochs 5` on the CPU as a user would run it.

Prints wall time including start-up and the validation accuracy (goal: >= 95 % in < 30 s).

    python bench/bench_digits_cli.py [--threads N]   (N sets OMP_NUM_THREADS for the child; default: unset)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as ws:
        cmd = [sys.executable, "-m", "workbench", "train", "--arch", "lenet", "--dataset", "digits", "--epochs", "5",
               "--device", "cpu", "--workspace", ws, "--json"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"workbench train exited {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    acc = result["val_accuracy"]
    print(f"command   : {' '.join(cmd[1:6])} ... --epochs 5 --device cpu")
    print(f"wall time : {wall:.1f} s (incl. start-up; goal < 30 s)")
    print(f"val acc   : {100 * acc:.1f} % (goal >= 95 %)")
    print(f"train img/s: {result['images_per_second']:.0f}")
    print(f"goal met  : {acc >= 0.95 and wall < 30}")


if __name__ == "__main__":
    main()
