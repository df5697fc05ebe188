"""ThreadRunner: the shared QThread + worker life cycle of the training and download runners."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot

from workbench.ui.download_worker import DownloadRunner
from workbench.ui.thread_runner import ThreadRunner
from workbench.ui.training_worker import TrainingRunner


class _Worker(QObject):
    done = Signal()
    said = Signal(str)

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    @Slot()
    def run(self) -> None:
        self.gate.wait(30)
        self.said.emit("bye")
        self.done.emit()


class _Runner(ThreadRunner):
    ended = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.heard: list[str] = []
        self.ended_count = 0

    def request_stop(self) -> None:
        self.gate.set()

    def thread_ended(self) -> None:
        self.ended_count += 1
        self.ended.emit()


def test_both_runners_share_the_base() -> None:
    assert issubclass(TrainingRunner, ThreadRunner) and issubclass(DownloadRunner, ThreadRunner)


def test_thread_ends_once_after_the_last_signal(qtbot) -> None:
    runner = _Runner()
    worker = _Worker(runner.gate)
    worker.said.connect(runner.heard.append)
    runner.launch(worker, "testThread")
    assert runner.is_running()
    with qtbot.waitSignal(runner.ended, timeout=10_000):
        runner.gate.set()
    assert runner.heard == ["bye"] and runner.ended_count == 1 and not runner.is_running()


def test_wait_requests_stop_and_delivers_queued_signals(qtbot) -> None:
    runner = _Runner()
    worker = _Worker(runner.gate)
    worker.said.connect(runner.heard.append)
    runner.launch(worker, "testThread")
    assert runner.wait(10_000)  # request_stop opened the gate
    assert runner.heard == ["bye"] and runner.ended_count == 1 and not runner.is_running()
    assert runner.wait(0)  # nothing left to wait for
