"""Render the real main window offscreen after a short training run and save docs/screenshot.png.

    python scripts/screenshot.py [--out docs/screenshot.png] [--arch lenet]
        [--tab curves|layers|analysis|compare|experiment] [--experiment-epochs 2]

`--tab experiment`: the Compare view after Train all of the degradation experiment on the digits (ResNet-20 and its
plain twin, --experiment-epochs each).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QSettings, QSize, QTimer

REPO = Path(__file__).resolve().parent.parent


def wait_for(signal: object, timeout_s: float) -> list:
    """Run the event loop until `signal` fires (returns its arguments) or the timeout passes."""
    loop = QEventLoop()
    got: list = []

    def done(*args: object) -> None:
        got.extend(args)
        loop.quit()

    signal.connect(done)  # type: ignore[attr-defined]
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(done)  # type: ignore[attr-defined]
    return got


def show_experiment(window: object, view: Any, epochs: int) -> None:
    """Tick ResNet-20 and its plain twin only, Train all on the panel's data set, wait for the experiment."""
    window.tabs.setCurrentWidget(view)  # type: ignore[attr-defined]
    for key in view.ticked():
        view.tick(key, False)
    view.tick("resnet20")
    wait_for(view.rowsShown, 120)
    plain = view.add_variant("resnet20")
    wait_for(view.rowsShown, 120)
    view.set_option(plain, "residual", "False")
    wait_for(view.rowsShown, 120)
    # The CIFAR ResNets' own recipe (the digits are not augmented by default).
    window.training_panel.settings.set_values(  # type: ignore[attr-defined]
        {"epochs": epochs, "optimizer": "sgd", "lr": 0.05, "schedule": "cosine", "batch_size": 128})
    if not view.train_all():
        print(f"cannot train all: {view.status.text()}", file=sys.stderr)
        return
    wait_for(view.trainingChanged, 1800)
    wait_for(view.rowsShown, 120)
    view.measureCheck.setChecked(True)   # train and infer each for about a second on the CPU
    wait_for(view.rowsShown, 300)
    print("experiment:", view.status.text())


def show_view(window: object, tab: str, run_id: str, epochs: int = 2) -> None:
    """The Analysis tab on the run (its most confused cell's images, the first one inspected), or the Compare
    view with the trained architecture ticked among the lecture's."""
    import numpy as np

    views = window.views  # type: ignore[attr-defined]
    if tab == "analysis":
        view = views.analysis
        window.tabs.setCurrentWidget(view)  # type: ignore[attr-defined]
        view.show_run(run_id)
        if view.analysis() is None:
            wait_for(view.runShown, 120)
        counts = np.asarray(view.confusion())
        np.fill_diagonal(counts, -1)
        t, p = np.unravel_index(int(counts.argmax()), counts.shape)
        view.select_cell(int(t), int(p))
        wait_for(view.galleryFilled, 60)
        view.gallery.setCurrentRow(0)
        wait_for(view.inspected, 60)
    elif tab == "experiment":
        show_experiment(window, views.compare, epochs)
    else:
        view = views.compare
        window.tabs.setCurrentWidget(view)  # type: ignore[attr-defined]
        arch = window.arch_panel.current_arch()  # type: ignore[attr-defined]
        if arch not in view.ticked():
            view.tick(arch)
            wait_for(view.rowsShown, 120)
        view.measureCheck.setChecked(True)   # train and infer each for about a second on the CPU
        wait_for(view.rowsShown, 300)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    parser.add_argument("--arch", default="lenet")
    parser.add_argument("--tab", choices=("curves", "layers", "analysis", "compare", "experiment"), default="curves")
    parser.add_argument("--experiment-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    from workbench.ui.app import make_application
    from workbench.ui.main_window import MainWindow

    app = make_application()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_HOME"] = tmp
        settings = QSettings(str(Path(tmp) / "screenshot.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace=Path(tmp), settings=settings)
        window.resize(QSize(1500, 900))
        window.show()
        app.processEvents()
        if window.worker.is_busy():
            wait_for(window.summaryShown, 60)
        if window.arch_panel.current_arch() != args.arch:
            window.arch_panel.select(args.arch)
            wait_for(window.summaryShown, 60)
        panel = window.training_panel
        panel.picker.select("digits")
        panel.settings.set_values({"epochs": args.epochs, "batch_size": 64, "device": "cpu", "lr": 0.05})
        app.processEvents()
        if not panel.trainButton.isEnabled():
            print(f"cannot train: {panel.trainButton.toolTip()}", file=sys.stderr)
            return 1
        panel.start_training()
        result = wait_for(panel.runFinished, 600)
        status, message = (result[0].status, result[0].message) if result else ("timed out", "")
        print("run:", status, message)
        window.plots.redraw()
        window.tabs.setCurrentIndex(2 if args.tab == "curves" else 0)
        if args.tab in ("analysis", "compare", "experiment") and result:
            show_view(window, args.tab, result[0].run_id, args.experiment_epochs)
        for _ in range(5):
            app.processEvents()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out))
        print(f"saved {out} ({window.width()}×{window.height()})")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
