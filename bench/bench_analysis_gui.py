"""GUI event-loop lag while the Analysis tab computes, and how fast a confusion matrix renders.

Trains a short LeNet digits run (or uses --run in --workspace), shows the Analysis tab, and drives it like a
user clicking on for --seconds: evaluate the run, click each non-empty confusion cell (the gallery's thumbnails
are cut in the worker), open each cell's first image in the inspector (top-5, Grad-CAM, feature maps, filters),
switch the Grad-CAM layer, replay the epoch slider, toggle row %. A 10 ms QTimer records its actual intervals
meanwhile. Prints p50/p99/max lag (goal p99 <= 30 ms) and the render time of a 10- and a 100-class confusion
matrix (goal < 100 ms for 100 classes).

    QT_QPA_PLATFORM=offscreen python bench/bench_analysis_gui.py [--seconds 10] [--run RUN_ID --workspace DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def train_run(workspace: Path, epochs: int) -> str:
    """A LeNet digits run with per-sample history, trained on the CPU."""
    from workbench.training.config import TrainJob, recommended_config
    from workbench.training.job import run_training

    config = recommended_config("lenet", "digits", {"epochs": epochs, "device": "cpu"})
    result = run_training(TrainJob(arch="lenet", dataset="digits", config=config, workspace=workspace))
    assert result.status == "completed", result.message
    return str(result.run_id)


def render_ms(classes: int, repeats: int = 20, side: int = 800) -> tuple[float, float]:
    """(set_matrix + one synchronous paint, median ms; the first of them, ms) for a K-class matrix."""
    import numpy as np

    from workbench.ui.analysis_confusion import ConfusionMatrixView

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, size=(classes, classes)) + np.diag(rng.integers(50, 100, size=classes))
    names = [f"class {i}" for i in range(classes)]
    view = ConfusionMatrixView()
    view.resize(side, side)
    view.show()
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        view.set_matrix(counts, names)
        view.set_normalised(bool(i % 2))
        view.grab()      # paints now, into a pixmap (what a repaint costs, plus the pixmap)
        times.append((time.perf_counter() - start) * 1000)
    view.close()
    return float(np.median(times)), times[0]


SLOW: dict[str, list[float]] = {}


def profile_slots(tab: object) -> None:
    """Time the tab's GUI-thread slots into SLOW (wrapped on the instance before the driver connects; the
    tab's own connections made in its constructor keep calling the unwrapped methods, except through
    the wrapped callers)."""
    for owner, names in ((tab, ("_on_loaded", "_refill_gallery", "_on_thumbnails", "_on_inspected", "_show_epoch")),
                         (tab.matrix, ("set_matrix", "paintEvent")), (tab.chart, ("set_recall",)),  # type: ignore
                         (tab.inspector, ("set_inspection",))):  # type: ignore[attr-defined]
        for name in names:
            fn = getattr(owner, name)

            def timed(*a: object, _fn: Callable[..., object] = fn, _name: str = name) -> object:
                start = time.perf_counter()
                try:
                    return _fn(*a)
                finally:
                    SLOW.setdefault(_name, []).append((time.perf_counter() - start) * 1000)
            setattr(owner, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--run", default=None, help="an existing run id (with --workspace)")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--interval-ms", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="first measure the lag of an idle event loop this long (the machine's noise floor)")
    parser.add_argument("--pace-ms", type=int, default=50,
                        help="wait this long after each answer before the next click (0: click on at once)")
    parser.add_argument("--profile", action="store_true", help="print the slowest GUI-thread slots")
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.ui import gc_guard
    from workbench.ui.analysis_tab import AnalysisTab

    app = QApplication.instance() or QApplication([])
    gc_guard.install(app)   # as the app does: cyclic garbage is collected in the GUI thread
    workspace = Path(args.workspace) if args.workspace else Path(tempfile.mkdtemp(prefix="analysis-gui-"))
    run_id = args.run or train_run(workspace, args.epochs)

    tab = AnalysisTab(workspace)
    tab.resize(1200, 800)
    tab.show()
    intervals: list[float] = []
    clock = QElapsedTimer()
    state = {"last": 0, "measuring": False, "cells": [], "cell": 0, "actions": 0, "layer": 0,
             "loaded_ms": 0.0, "asked_ms": 0.0}
    layers = ("model.3", "model.0", "")

    def tick() -> None:
        now = clock.nsecsElapsed()
        if state["measuring"]:
            intervals.append((now - state["last"]) / 1e6)
        state["last"] = now

    def next_cell() -> None:
        cells = state["cells"]
        t, p = cells[state["cell"] % len(cells)]
        state["cell"] += 1
        state["actions"] += 1
        tab.normaliseCheck.setChecked(state["cell"] % 3 == 0)
        slider = tab.epochSlider
        if slider.isEnabled():
            slider.setValue(state["cell"] % (slider.maximum() + 1))
        tab.select_cell(t, p)

    def on_shown(_run: str) -> None:
        state["loaded_ms"] = clock.nsecsElapsed() / 1e6 - state["asked_ms"]
        counts = np.asarray(tab.confusion())
        state["cells"] = [tuple(int(v) for v in c) for c in np.argwhere(counts > 0)]
        state["measuring"] = True
        QTimer.singleShot(int(args.seconds * 1000), app.quit)
        next_cell()

    def on_gallery() -> None:
        if tab.gallery.count():
            tab.gallery.setCurrentRow(0)   # opens the first image in the inspector
        else:
            next_cell()

    def on_inspected(_ins: object) -> None:
        state["actions"] += 1
        state["layer"] += 1
        if state["layer"] % 3:
            tab.set_layer(layers[state["layer"] % len(layers)] or None)
        else:
            next_cell()

    def paced(fn: Callable[..., None]) -> Callable[..., None]:
        def slot(*a: object) -> None:
            QTimer.singleShot(args.pace_ms, lambda: fn(*a))
        return slot

    if args.profile:
        profile_slots(tab)
    tab.runShown.connect(paced(on_shown))
    tab.galleryFilled.connect(paced(on_gallery))
    tab.inspected.connect(paced(on_inspected))
    timer = QTimer()
    timer.setInterval(args.interval_ms)
    timer.timeout.connect(tick)
    idle: list[float] = []
    clock.start()
    timer.start()
    if args.idle_seconds > 0:   # the same timer on an idle loop: what the machine itself adds
        state["measuring"] = True
        QTimer.singleShot(int(args.idle_seconds * 1000), app.quit)
        app.exec()
        idle, intervals[:] = list(intervals), []
        state["measuring"] = False
    state["asked_ms"] = clock.nsecsElapsed() / 1e6
    tab.show_run(run_id)
    QTimer.singleShot(int((args.seconds + 120) * 1000), app.quit)   # safety net
    app.exec()
    timer.stop()
    tab.shutdown(10_000)
    if not intervals:
        print("no measurement: the run was never shown")
        return 1
    lag = np.maximum(np.asarray(intervals) - args.interval_ms, 0.0)
    if idle:
        base = np.maximum(np.asarray(idle) - args.interval_ms, 0.0)
        print(f"idle event loop (noise floor): p50={np.percentile(base, 50):.1f} ms "
              f"p99={np.percentile(base, 99):.1f} ms max={base.max():.1f} ms")
    print(f"run {run_id}: evaluated and shown after {state['loaded_ms']:.0f} ms; {state['actions']} clicks "
          f"(cells, images, layers) in {args.seconds:.0f} s; cores={os.cpu_count()}")
    print(f"GUI lag while computing: ticks={len(lag)} p50={np.percentile(lag, 50):.1f} ms "
          f"p99={np.percentile(lag, 99):.1f} ms max={lag.max():.1f} ms (goal p99 <= 30 ms)")
    for name, times in sorted(SLOW.items(), key=lambda kv: -max(kv[1])):
        print(f"  slot {name}: n={len(times)} median {np.median(times):.1f} ms max {max(times):.1f} ms")
    for k in (10, 100):
        median, first = render_ms(k)
        print(f"confusion matrix {k} classes, 800x800 px: {median:.1f} ms median, first {first:.1f} ms "
              "(goal < 100 ms for 100 classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
