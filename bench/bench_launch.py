"""Launch and quit times of `workbench`, measured in fresh processes, offscreen.

Runs the real entry point (`python -m workbench`) with WORKBENCH_LAUNCH_PROBE (see workbench/ui/app.py):
- `1`: prints the wall time of the first paint, of the layer tree shown and of the engine being ready, then quits;
- `quit`: quits right after the first paint (Ctrl+Q while the engine still loads); the process must be gone
  within 2 s of the quit.
Side by side it measures a bare `import torch` in a fresh process, so the figures read as a ratio on whatever
machine runs this. Goals: first paint <= 1.5 s, layer tree <= 1.0 s (2-core machine), quit <= 2 s.

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


def probe_once(workspace: str, mode: str) -> dict[str, float]:
    """Seconds from process spawn to each probe line, plus `exit` (spawn to the process gone)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_LAUNCH_PROBE=mode, WORKBENCH_HOME=workspace,
               XDG_CONFIG_HOME=os.path.join(workspace, "config"))
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "workbench"], env=env, capture_output=True, text=True, timeout=300)
    end = time.time()
    values: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.endswith("_unix") and name[:-5] not in values:
            values[name[:-5]] = float(value) - start
    if proc.returncode != 0 or "first_paint" not in values:
        raise SystemExit(f"launch failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    values["exit"] = end - start
    return values


def import_torch_once() -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=300)
    return time.time() - start


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r.get(key, float("nan")) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    launches: list[dict[str, float]] = []
    quits: list[dict[str, float]] = []
    torches: list[float] = []
    with tempfile.TemporaryDirectory() as workspace:
        probe_once(workspace, "1")  # warm the OS file cache and create the workspace
        for _ in range(args.runs):
            launches.append(probe_once(workspace, "1"))
            quits.append(probe_once(workspace, "quit"))
            torches.append(import_torch_once())
    paint, tree, ready = (_median(launches, k) for k in ("first_paint", "tree_shown", "engine_ready"))
    quit_after_paint = statistics.median(q["exit"] - q["quit_requested"] for q in quits)
    quit_after_ready = statistics.median(r["exit"] - r["engine_ready"] for r in launches)
    torch_s = statistics.median(torches)
    print(f"runs: {args.runs} (median), cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"launch -> window painted : {paint:6.2f} s   (goal <= 1.5 s: {'OK' if paint <= 1.5 else 'MISSED'})")
    print(f"launch -> layer tree     : {tree:6.2f} s   (goal <= 1.0 s: {'OK' if tree <= 1.0 else 'MISSED'})")
    print(f"launch -> engine ready   : {ready:6.2f} s   (zoo listed, summary shown)")
    print(f"quit while loading -> gone: {quit_after_paint:5.2f} s   (goal <= 2 s: "
          f"{'OK' if quit_after_paint <= 2 else 'MISSED'})")
    print(f"quit once ready -> gone  : {quit_after_ready:6.2f} s   (goal <= 2 s: "
          f"{'OK' if quit_after_ready <= 2 else 'MISSED'})")
    print(f"python -c 'import torch' : {torch_s:6.2f} s")
    print(f"ratio first paint / import torch: {paint / torch_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
