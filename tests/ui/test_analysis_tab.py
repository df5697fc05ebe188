"""The Analysis tab on a short LeNet digits run: the confusion matrix is the engine's, a cell's images fill the
gallery by loss, the epoch slider replays the history, per-class bars, the image inspector (Predict image…, drag
and drop, the layer tree's layer), gallery orders, and stale requests dropped."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from analysis_support import LenetRun
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QListView, QSlider

from workbench.analysis.evaluate import Evaluation, evaluate_run
from workbench.ui.analysis_session import Inspection, gallery_order
from workbench.ui.analysis_tab import AnalysisTab
from workbench.ui.latest_task import LatestTask
from workbench.ui.tasks import TaskSink

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def engine(run: LenetRun) -> Evaluation:
    return evaluate_run(run.run_id, workspace=run.workspace)


@pytest.fixture
def tab(qtbot, run: LenetRun):
    widget = AnalysisTab(run.workspace)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    yield widget
    assert widget.shutdown(10_000)


def show(qtbot, tab: AnalysisTab, run_id: str) -> None:
    with qtbot.waitSignal(tab.runShown, timeout=WAIT_MS):
        tab.show_run(run_id)


def digit_png(path: Path, evaluation_image: np.ndarray | None = None) -> Path:
    """A white "1" on black, 64×64 (or a given image), as a PNG."""
    if evaluation_image is None:
        evaluation_image = np.zeros((64, 64), np.uint8)
        evaluation_image[8:56, 28:36] = 255
    Image.fromarray(evaluation_image).save(path)
    return path


def off_diagonal_cell(ev: Evaluation, minimum: int = 1) -> tuple[int, int]:
    m = ev.confusion.copy()
    np.fill_diagonal(m, -1)
    t, p = np.unravel_index(int(m.argmax()), m.shape)
    assert m[t, p] >= minimum, "the run has no confusion to look at"
    return int(t), int(p)


def test_confusion_matrix_is_the_engines_and_a_click_fills_the_gallery_by_loss(qtbot, tab, run, engine) -> None:
    show(qtbot, tab, run.run_id)
    assert tab.objectName() == "analysisTab"
    assert tab.confusion() == engine.confusion.tolist()
    assert sum(map(sum, tab.confusion())) == 179
    gallery = tab.findChild(QListView, "sampleGallery")
    assert gallery is tab.gallery
    t = int(np.argmax(np.diag(engine.confusion)))   # the biggest diagonal cell: many images to sort
    with qtbot.waitSignal(tab.galleryFilled, timeout=WAIT_MS):
        qtbot.mouseClick(tab.matrix, Qt.MouseButton.LeftButton, pos=tab.matrix.cell_center(t, t))
    assert tab.matrix.selected() == (t, t)
    assert gallery.count() == engine.confusion[t, t]
    assert tab.gallery.indices() == engine.cell(t, t).tolist()          # highest loss first
    losses = engine.losses[tab.gallery.indices()]
    assert all(losses[:-1] >= losses[1:])
    assert tab.gallery.has_thumbnails()
    first = gallery.item(0).text()
    name = engine.classes[t]
    assert first.startswith(f"{name} → {name}") and "%" in first    # true / predicted / probability
    t2, p2 = off_diagonal_cell(engine)
    with qtbot.waitSignal(tab.galleryFilled, timeout=WAIT_MS):
        tab.select_cell(t2, p2)
    assert gallery.count() == engine.confusion[t2, p2] and tab.gallery.indices() == engine.cell(t2, p2).tolist()


def test_row_percent_toggle_keeps_counts(qtbot, tab, run, engine) -> None:
    show(qtbot, tab, run.run_id)
    tab.normaliseCheck.setChecked(True)
    assert tab.matrix.is_normalised() and tab.confusion() == engine.confusion.tolist()
    image = tab.matrix.grab().toImage()
    assert not image.isNull()


def test_per_class_chart_shows_recall_in_percent(qtbot, tab, run, engine) -> None:
    show(qtbot, tab, run.run_id)
    assert tab.findChild(type(tab.chart), "perClassChart") is tab.chart
    assert tab.chart.values() == pytest.approx((100 * engine.per_class.recall).tolist())


def test_epoch_slider_replays_the_history(qtbot, tab, run, engine) -> None:
    show(qtbot, tab, run.run_id)
    history = engine.history
    assert history is not None and history.epochs == (1, 2)
    slider = tab.findChild(QSlider, "epochSlider")
    assert slider.isEnabled() and slider.maximum() == len(history.epochs)
    slider.setValue(0)
    assert tab.confusion() == history.confusion_at(1, engine.labels, 10).tolist()
    assert tab.chart.values() == pytest.approx(
        [100 * np.mean(history.predictions[0][engine.labels == k] == k) for k in range(10)])
    t, p = off_diagonal_cell(engine)
    with qtbot.waitSignal(tab.galleryFilled, timeout=WAIT_MS):
        tab.select_cell(t, p)
    at_epoch_1 = np.flatnonzero((engine.labels == t) & (history.predictions[0] == p))
    assert tab.gallery.count() == len(at_epoch_1)
    slider.setValue(slider.maximum())   # back to the checkpoint
    assert tab.confusion() == engine.confusion.tolist()
    assert tab.gallery.count() == engine.confusion[t, p]


def test_a_run_without_history_disables_the_slider(qtbot, tmp_path, run, engine) -> None:
    from workbench.runs import RunStore
    from workbench.runs.history import discard_history_after

    workspace = tmp_path / "copy"
    shutil.copytree(run.workspace, workspace)
    with RunStore(workspace) as store:
        discard_history_after(store, run.run_id, 0)
    tab = AnalysisTab(workspace)
    qtbot.addWidget(tab)
    tab.show()
    try:
        show(qtbot, tab, run.run_id)
        assert not tab.epochSlider.isEnabled()
        assert "no per-sample history" in tab.epochLabel.text()
        assert not tab.sortCombo.model().item(1).isEnabled() and not tab.sortCombo.model().item(2).isEnabled()
        assert tab.confusion() == engine.confusion.tolist()
    finally:
        assert tab.shutdown(10_000)


def test_a_run_without_a_best_checkpoint_shows_its_last(qtbot, tmp_path, run) -> None:
    workspace = tmp_path / "copy"
    shutil.copytree(run.workspace, workspace)
    (next(workspace.glob(f"runs/{run.run_id}")) / "best.pt").unlink()
    last = evaluate_run(run.run_id, workspace=workspace, checkpoint="last")
    tab = AnalysisTab(workspace)
    qtbot.addWidget(tab)
    tab.show()
    try:
        show(qtbot, tab, run.run_id)
        assert tab.analysis().checkpoint == "last" and tab.checkpoint() == "last"
        assert tab.confusion() == last.confusion.tolist()
    finally:
        assert tab.shutdown(10_000)


def test_gallery_orders(qtbot, tab, run, engine) -> None:
    show(qtbot, tab, run.run_id)
    analysis = tab.analysis()
    assert analysis is not None and analysis.first_correct is not None and analysis.forgotten is not None
    t = int(np.argmax(np.diag(engine.confusion)))
    with qtbot.waitSignal(tab.galleryFilled, timeout=WAIT_MS):
        tab.select_cell(t, t)
    tab.set_sort("learned last")
    first = analysis.first_correct[tab.gallery.indices()].astype(float)
    first[first < 0] = np.inf
    assert all(first[:-1] >= first[1:]) and tab.gallery.count() == engine.confusion[t, t]
    tab.set_sort("forgotten most")
    forgotten = analysis.forgotten[tab.gallery.indices()]
    assert all(forgotten[:-1] >= forgotten[1:])
    tab.set_sort("loss")
    assert tab.gallery.indices() == engine.cell(t, t).tolist()


def test_gallery_order_by_hand() -> None:
    losses = np.array([0.1, 0.9, 0.5, 0.3, 0.7])
    first = np.array([1, 3, -1, 2, 3])     # -1: never correct
    forgotten = np.array([0, 2, 1, 0, 2])
    idx = np.array([0, 1, 2, 3, 4])
    assert gallery_order(idx, losses, "loss").tolist() == [1, 4, 2, 3, 0]
    assert gallery_order(idx, losses, "learned last", first, forgotten).tolist() == [2, 1, 4, 3, 0]
    assert gallery_order(idx, losses, "forgotten most", first, forgotten).tolist() == [1, 4, 2, 3, 0]
    assert gallery_order(idx[[0, 3]], losses, "forgotten most", first, forgotten).tolist() == [3, 0]
    assert gallery_order(idx, losses, "learned last", None, None).tolist() == [1, 4, 2, 3, 0]  # no history


def test_inspector_explains_a_file_and_follows_the_layer(qtbot, tab, run, tmp_path) -> None:
    from workbench.analysis.predict import predict_images

    show(qtbot, tab, run.run_id)
    png = digit_png(tmp_path / "one.png")
    with qtbot.waitSignal(tab.inspected, timeout=WAIT_MS) as got:
        tab.inspect_file(png)
    ins: Inspection = got.args[0]
    expected = predict_images(run.run_id, [png], workspace=run.workspace)[0]
    assert [c for c, _ in tab.inspector.top()] == list(expected.classes)
    assert [p for _, p in tab.inspector.top()] == pytest.approx(list(expected.probabilities), abs=1e-5)
    assert ins.layer == tab.analysis().default_layer == "model.3"   # LeNet's last convolution
    assert ins.overlay.ndim == 3 and ins.overlay.shape[2] == 3 and not tab.inspector.overlay.pixmap().isNull()
    assert ins.feature_count == 16 and ins.filters is not None and ins.filters_layer == "model.0"
    with qtbot.waitSignal(tab.inspected, timeout=WAIT_MS) as got:
        tab.set_layer("model.0")
    assert got.args[0].layer == "model.0" and got.args[0].feature_count == 6
    with qtbot.waitSignal(tab.inspected, timeout=WAIT_MS) as got:
        tab.set_layer("features.99")   # a layer of another architecture (the layer tree shows the selected one)
    assert got.args[0].layer == "model.3" and "not in this run" in got.args[0].note


def test_an_unreadable_file_is_one_sentence(qtbot, tab, run, tmp_path) -> None:
    show(qtbot, tab, run.run_id)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with qtbot.waitSignal(tab.errorOccurred, timeout=WAIT_MS) as got:
        tab.inspect_file(bad)
    assert "broken.png" in got.args[0] and got.args[1] == ""
    assert tab.inspector.inspection() is None


def test_a_stale_inspection_is_dropped(qtbot, tab, run, engine) -> None:
    show(qtbot, tab, run.run_id)
    seen: list[Inspection] = []
    tab.inspected.connect(seen.append)
    dropped: list[int] = []
    tab.inspects.dropped.connect(dropped.append)
    first = tab.inspect_sample(0)
    with qtbot.waitSignal(tab.inspected, timeout=WAIT_MS):
        last = tab.inspect_sample(5)
    qtbot.waitUntil(lambda: not tab.inspects.is_busy(), timeout=WAIT_MS)
    assert [s.caption for s in seen] == [engine.sources[5]]
    assert first in dropped and last not in dropped


def test_latest_task_runs_one_at_a_time_and_delivers_only_the_latest(qtbot) -> None:
    task = LatestTask("test")
    release = threading.Event()
    ran: list[str] = []

    def job(name: str, wait: bool):
        def fn(sink: TaskSink) -> str:
            ran.append(name)
            if wait:
                assert release.wait(10)
            return name
        return fn

    done: list[tuple[int, object]] = []
    dropped: list[int] = []
    task.done.connect(lambda rid, result: done.append((rid, result)))
    task.dropped.connect(dropped.append)
    a = task.request(job("a", True))
    qtbot.waitUntil(lambda: ran == ["a"])
    b = task.request(job("b", False))     # waits behind a
    c = task.request(job("c", False))     # replaces b, which never runs
    assert dropped == [b]
    release.set()
    with qtbot.waitSignal(task.idle, timeout=10_000):
        pass
    assert ran == ["a", "c"] and done == [(c, "c")] and dropped == [b, a]
    progress: list[tuple[int, str, float]] = []
    task.progressed.connect(lambda rid, stage, fraction: progress.append((rid, stage, fraction)))

    def reporting(sink: TaskSink) -> str:
        sink.progress("half way", 0.5)
        return "d"

    with qtbot.waitSignal(task.done, timeout=10_000):
        d = task.request(reporting)
    assert progress == [(d, "half way", 0.5)]
    assert task.shutdown(1000)


def test_runs_list_predict_image_drop_and_layer_tree_in_the_window(qtbot, tmp_path, run, engine, settings,
                                                                   monkeypatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    from workbench.ui.main_window import MainWindow

    workspace = tmp_path / "ws"
    shutil.copytree(run.workspace, workspace)
    window = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(window)
    window.show()
    views = window.views
    assert views is not None and window.tabs.tabText(window.tabs.indexOf(views.analysis)) == "Analysis"
    window.tabs.setCurrentWidget(views.analysis)
    with qtbot.waitSignal(views.analysis.runShown, timeout=WAIT_MS) as shown:
        window.runs_panel.select_runs([run.run_id])    # the runs list's selection is analysed
    assert shown.args == [run.run_id] and views.analysis.confusion() == engine.confusion.tolist()
    window.tabs.setCurrentIndex(0)
    png = digit_png(tmp_path / "drawn.png")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(png)], ""))
    with qtbot.waitSignal(views.analysis.inspected, timeout=WAIT_MS) as got:
        window.predict_action.trigger()    # no run selected: the newest run's model
    assert window.tabs.currentWidget() is views.analysis and views.analysis.run_id() == run.run_id
    assert got.args[0].caption == "drawn.png" and len(views.analysis.inspector.top()) == 5
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt")), QUrl.fromLocalFile(str(png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(views.analysis.inspected, timeout=WAIT_MS):
        window.dropEvent(event)
    assert event.isAccepted()
    if window.arch_panel.current_arch() != "lenet" or window.worker.is_busy():
        with qtbot.waitSignal(window.summaryShown, timeout=WAIT_MS):
            window.arch_panel.select("lenet")
    row = next(r for r in window.summary_view.model.layers() if r.name == "model.0")
    with qtbot.waitSignal(views.analysis.inspected, timeout=WAIT_MS) as got:
        window.summary_view.select_layer(row.index)
    assert got.args[0].layer == "model.0" and got.args[0].caption == "drawn.png"
    window.close()
