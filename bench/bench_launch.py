"""Launch time: `workbench` → first paint of the window, measured in a fresh process, offscreen.

Runs the real entry point (`python -m workbench`) with WORKBENCH_LAUNCH_PROBE=1, which prints the wall time of
the first paint and of the engine being ready, then quits. Side by side it measures a bare `import torch`
in a fresh process, so the figures read as a ratio on whatever machine runs this. Goal: first paint ≤ 1.5 s.

    python bench/bench_launch.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def launch_once(workspace: str) -> tuple[float, float]:
    """(seconds to first paint, seconds to engine ready), both from process spawn."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_LAUNCH_PROBE="1", WORKBENCH_HOME=workspace,
               XDG_CONFIG_HOME=os.path.join(workspace, "config"))
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "workbench"], env=env, capture_output=True, text=True, timeout=300)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if proc.returncode != 0 or "first_paint_unix" not in values:
        raise SystemExit(f"launch failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return float(values["first_paint_unix"]) - start, float(values.get("engine_ready_unix", "nan")) - start


def import_torch_once() -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=300)
    return time.time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    paints, readies, torches = [], [], []
    with tempfile.TemporaryDirectory() as workspace:
        launch_once(workspace)  # warm the OS file cache and create the workspace
        for _ in range(args.runs):
            paint, ready = launch_once(workspace)
            paints.append(paint)
            readies.append(ready)
            torches.append(import_torch_once())
    paint, ready, torch_s = statistics.median(paints), statistics.median(readies), statistics.median(torches)
    print(f"runs: {args.runs} (median), cores: {os.cpu_count()}")
    print(f"launch -> window painted : {paint:6.2f} s   (goal <= 1.5 s: {'OK' if paint <= 1.5 else 'MISSED'})")
    print(f"launch -> engine ready   : {ready:6.2f} s   (zoo listed, summary requested)")
    print(f"python -c 'import torch' : {torch_s:6.2f} s")
    print(f"ratio first paint / import torch: {paint / torch_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
