"""File → Open Workspace…: the window, its runs, curves, analysis and compare views switch; recent ones remembered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from workbench.runs import RunStore
from workbench.ui.main_window import MainWindow
from workbench.ui.workspaces import NO_RECENT, recent_workspaces, startup_workspace


def _run_in(workspace: Path, name: str) -> str:
    store = RunStore(workspace)
    run = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 1}, device="cpu",
                           name=name)
    store.update_run(run, status="completed", epochs_completed=1, best_val_accuracy=0.5)
    store.close()
    return run


def test_open_workspace_switches_every_view_and_is_remembered(qtbot: Any, workspace: Path, settings: QSettings,
                                                              tmp_path: Path, monkeypatch: Any) -> None:
    here = _run_in(workspace, "here")
    other = tmp_path / "other-ws"
    there = _run_in(other, "there")
    w = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(w)
    assert w.runs_panel is not None and w.training_panel is not None and w.views is not None
    assert [r.run_id for r in w.runs_panel.records] == [here]
    assert w.switch_workspace(other)
    assert w.workspace == other and w.training_panel.workspace == other
    assert [r.run_id for r in w.runs_panel.records] == [there]
    assert w.views.analysis.cache.workspace == other and w.views.compare.workspace == other
    assert recent_workspaces(settings)[0] == other
    recent_menu = next(a.menu() for a in w.menuBar().actions()[0].menu().actions() if a.menu())
    assert recent_menu.menuAction().isEnabled()            # it can always be opened
    recent_menu.aboutToShow.emit()
    assert [(a.text(), a.isEnabled()) for a in recent_menu.actions()] == [(NO_RECENT, False)]  # not the current one
    assert w.switch_workspace(workspace)
    assert recent_menu.menuAction().isEnabled()
    recent_menu.aboutToShow.emit()
    assert [a.text() for a in recent_menu.actions()] == [str(other)]
    recent_menu.actions()[0].trigger()
    assert w.workspace == other
    monkeypatch.delenv("WORKBENCH_HOME")
    assert startup_workspace(settings) == other  # the next launch without a workspace opens the last one
    w.close()


def test_switching_is_refused_while_a_run_trains(qtbot: Any, workspace: Path, settings: QSettings,
                                                 tmp_path: Path, monkeypatch: Any) -> None:
    w = MainWindow(workspace=workspace, settings=settings)
    qtbot.addWidget(w)
    assert w.training_panel is not None
    monkeypatch.setattr(w.training_panel, "is_training", lambda: True)
    shown: list[str] = []
    monkeypatch.setattr("workbench.ui.main_window.show_error", lambda _w, message, details="": shown.append(message))
    assert not w.switch_workspace(tmp_path / "elsewhere")
    assert w.workspace == workspace and shown and "stop it" in shown[0]
    monkeypatch.undo()
    w.close()
