"""Summary time in the window vs in a separate process, side by side, for the same calls.

In the window: the real MainWindow (shown offscreen, engine loaded), the architecture picked in its list, timed
from the selection to the summary shown (the session cache cleared and the shipped one off, so every summary
is computed); split into the computation in the worker thread and the display in the GUI thread. In a separate
process (started once, beside the window): `summarize(...)` with the same architecture, input, classes and
options. The two alternate call by call, so a machine whose load changes meanwhile affects both alike. First
calls (lazy imports of torchinfo, torchvision's builders) are reported apart from the median of the repeats;
"cpu" is the computing thread's own CPU time (what is left when the wall time also counts waiting for a core or
for the GIL). The window computes in its summary helper process (`workbench.models.summary_process`), so its
thread only waits: its "cpu" is near zero, and "compute" includes the pipe round trip.

    QT_QPA_PLATFORM=offscreen python bench/bench_summary_window.py [--repeats 3] [--arch resnet18 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["WORKBENCH_NO_SHIPPED_SUMMARIES"] = "1"   # measure computations, not the shipped cache

ARCHS = ("resnet18", "googlenet", "tv:mobilenet_v3_small")
OUTSIDE = """
import json, sys, time
from workbench.models import summarize
print("ready", flush=True)
for line in sys.stdin:
    arch, shape, classes, options = json.loads(line)
    start, cpu = time.perf_counter(), time.thread_time()
    summarize(arch, input_shape=tuple(shape), num_classes=classes, options=options)
    print(json.dumps([time.perf_counter() - start, time.thread_time() - cpu]), flush=True)
"""


class Outside:
    """A separate Python process that summarises on request."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", OUTSIDE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=dict(os.environ))
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def summarize(self, call: list[Any]) -> tuple[float, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(call) + "\n")
        self.proc.stdin.flush()
        wall, cpu = json.loads(self.proc.stdout.readline())
        return float(wall), float(cpu)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def measure(archs: list[str], repeats: int) -> tuple[dict[str, dict[str, list[float]]], list[Any]]:
    """Per architecture: window total / compute / display / cpu and separate-process wall / cpu seconds of each
    call; and the calls made."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    import workbench.ui.summary_worker as summary_worker
    from workbench.models.summary_cache import session_cache
    from workbench.ui.app import make_application

    make_application([])
    from workbench.ui.main_window import MainWindow

    compute_s: list[float] = []
    cpu_s: list[float] = []
    done_at: list[float] = []
    engine = summary_worker.engine_summarize

    def timed(*args: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        result = engine(*args)
        compute_s.append(time.perf_counter() - start)
        cpu_s.append(time.thread_time() - cpu)
        done_at.append(time.perf_counter())
        return result

    folder = Path(tempfile.mkdtemp(prefix="bench-summary-"))
    os.environ["WORKBENCH_HOME"] = str(folder)
    window = MainWindow(folder, QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat))
    window.worker._compute = timed
    window.resize(1400, 900)
    window.show()

    def run_until_shown() -> None:
        loop = QEventLoop()
        window.summaryShown.connect(loop.quit)
        QTimer.singleShot(300_000, loop.quit)
        loop.exec()
        window.summaryShown.disconnect(loop.quit)

    def settle(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    settle()
    outside = Outside()
    results: dict[str, dict[str, list[float]]] = {}
    calls = []
    for arch in archs:
        rows: dict[str, list[float]] = {k: [] for k in ("total", "compute", "display", "cpu", "outside",
                                                        "outside_cpu", "switch", "switch_charts")}
        for _ in range(repeats + 1):
            window.arch_panel.select("lenet" if arch != "lenet" else "alexnet")
            window.arch_panel.send_now()   # (a click's selection is otherwise sent a turn later)
            if window.worker.is_busy():
                run_until_shown()
            settle()
            session_cache().clear()
            start = time.perf_counter()
            window.arch_panel.select(arch)
            run_until_shown()
            end = time.perf_counter()
            rows["total"].append(end - start)
            rows["compute"].append(compute_s[-1])
            rows["cpu"].append(cpu_s[-1])
            rows["display"].append(end - done_at[-1])
            sel = window.arch_panel.selection()
            assert sel is not None
            call = [arch, list(sel.input_shape), sel.num_classes, sel.options]
            wall, cpu = outside.summarize(call)
            rows["outside"].append(wall)
            rows["outside_cpu"].append(cpu)
            # Back to it once another is shown: served from the session cache, tree and then charts.
            window.arch_panel.select("lenet" if arch != "lenet" else "alexnet")
            window.arch_panel.send_now()   # (a click's selection is otherwise sent a turn later)
            if window.worker.is_busy():
                run_until_shown()
            settle(100)
            start = time.perf_counter()
            window.arch_panel.select(arch)
            run_until_shown()
            rows["switch"].append(time.perf_counter() - start)
            while not window.summary_view.chart_is_current():
                settle(1)
            rows["switch_charts"].append(time.perf_counter() - start)
        calls.append(call)
        results[arch] = rows
    outside.close()
    window.close()
    return results, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arch", action="append", help=f"default: {', '.join(ARCHS)}")
    args = parser.parse_args()
    archs = args.arch or list(ARCHS)
    results, calls = measure(archs, args.repeats)
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; seconds, first call | median of "
          f"{args.repeats} repeats")
    columns = (("window total", "total"), ("compute", "compute"), ("cpu", "cpu"), ("display", "display"),
               ("separate", "outside"), ("its cpu", "outside_cpu"))
    print(f"{'architecture':22s} {'input':>9s} " + " ".join(f"{title:>13s}" for title, _ in columns) + "  ratio")
    for arch, shape, _classes, _options in calls:
        row = results[arch]

        def cell(values: list[float]) -> str:
            return f"{values[0]:5.2f}|{statistics.median(values[1:]):5.2f}"

        ratio = statistics.median(row["total"][1:]) / max(1e-9, statistics.median(row["outside"][1:]))
        print(f"{arch:22s} {'x'.join(map(str, shape)):>9s} "
              + " ".join(f"{cell(row[key]):>13s}" for _, key in columns) + f"  {ratio:4.1f}x")
    print("switching back to a summarised architecture (ms, median; goal < 50 ms to the layer tree):")
    for arch, *_ in calls:
        row = results[arch]
        print(f"  {arch:22s} layer tree {1000 * statistics.median(row['switch']):6.1f}   charts "
              f"{1000 * statistics.median(row['switch_charts']):6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
