"""GUI event-loop lag while training runs at full speed in the worker thread.

A 10 ms QTimer records its actual intervals while the TrainingPanel trains (default LeNet on the bundled
digits) for --seconds; the live plots are shown, so their 20 Hz redraw is part of the measurement.
Prints p50/p99/max lag (interval - 10 ms; goal p99 <= 30 ms) and the training throughput.

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_lag.py [--arch resnet18] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="lenet")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--interval-ms", type=int, default=10)
    parser.add_argument("--torch-threads", type=int, default=0, help="0: leave torch's default")
    parser.add_argument("--hide-plots", action="store_true", help="measure without the plot redraws")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    import numpy as np
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.training.events import StepMetrics
    from workbench.ui import gc_guard
    from workbench.ui.architecture_panel import ArchSelection
    from workbench.ui.main_window import wire_training
    from workbench.ui.plots import LivePlots
    from workbench.ui.runs_panel import RunsPanel
    from workbench.ui.training_panel import TrainingPanel

    app = QApplication.instance() or QApplication([])
    gc_guard.install(app)  # as the app does: cyclic garbage is collected in the GUI thread
    workspace = Path(tempfile.mkdtemp(prefix="gui-lag-"))
    panel, plots, runs = TrainingPanel(workspace), LivePlots(), RunsPanel(workspace)
    wire_training(panel, plots, runs)  # as the main window wires them
    panel.ensure_engine()
    panel.picker.select(args.dataset)
    panel.set_architecture(ArchSelection(args.arch, {}, None, None, (1, 28, 28), 10))
    panel.settings.set_values({"epochs": 1000, "batch_size": args.batch_size, "device": "cpu"})
    panel.show()
    if not args.hide_plots:
        plots.resize(1000, 700)
        plots.show()

    intervals: list[float] = []
    ips: list[float] = []
    clock = QElapsedTimer()
    state = {"last": 0, "measuring": False}

    def tick() -> None:
        now = clock.nsecsElapsed()
        if state["measuring"]:
            intervals.append((now - state["last"]) / 1e6)
        state["last"] = now

    def on_step(m: StepMetrics) -> None:
        ips.append(m.images_per_second)
        if not state["measuring"]:  # start measuring once training really runs
            state["measuring"] = True
            QTimer.singleShot(int(args.seconds * 1000), panel.request_stop)

    panel.stepReported.connect(on_step)
    panel.runFinished.connect(lambda _r: app.quit())
    timer = QTimer()
    timer.setInterval(args.interval_ms)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    panel.start_training()
    QTimer.singleShot(int((args.seconds + 300) * 1000), app.quit)  # safety net
    app.exec()
    timer.stop()
    panel.wait_stopped(5000)
    if not intervals:
        print("no measurement: training never started")
        return 1
    lag = np.maximum(np.asarray(intervals) - args.interval_ms, 0.0)
    print(f"arch={args.arch} dataset={args.dataset} batch={args.batch_size} torch threads={_torch_threads()} "
          f"cores={os.cpu_count()}")
    print(f"ticks={len(lag)} lag p50={np.percentile(lag, 50):.1f} ms p99={np.percentile(lag, 99):.1f} ms "
          f"max={lag.max():.1f} ms (goal p99 <= 30 ms)")
    print(f"training throughput: {np.median(ips[len(ips) // 2:]) if ips else 0:.0f} img/s (median, 2nd half)")
    print(f"plot redraws: {plots.redraw_count}")
    return 0


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
