"""`workbench runs`: the table, the JSON last line, and exit 2 for an unusable workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.runs import RunStore


def _populate(workspace: Path) -> tuple[str, str]:
    store = RunStore(workspace)
    done = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 5}, device="cpu",
                            name="baseline")
    store.update_run(done, status="completed", epochs_completed=5, best_val_accuracy=0.9731,
                     final_metrics={"val_accuracy": 0.97})
    live = store.create_run(arch="resnet18", arch_options={"stem": "cifar"}, dataset="cifar10",
                            config={"epochs": 30}, device="cpu")
    store.update_run(live, epochs_completed=2)
    store.close()
    return done, live


def test_runs_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done, live = _populate(tmp_path)
    assert main(["runs", "--workspace", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "NAME"]
    assert lines[1].startswith(live) and lines[2].startswith(done)  # newest first
    assert "resnet18" in lines[1] and "running" in lines[1] and "2/30" in lines[1] and " - " in lines[1]
    assert "baseline" in lines[2] and "completed" in lines[2] and "5/5" in lines[2] and "97.31%" in lines[2]


def test_runs_json_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done, live = _populate(tmp_path)
    assert main(["runs", "--workspace", str(tmp_path), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["run_id"] for r in runs] == [live, done]
    first, second = runs
    assert (first["status"], first["arch"], first["dataset"], first["epochs_completed"]) == (
        "running", "resnet18", "cifar10", 2)
    assert first["best_val_accuracy"] is None
    assert second["best_val_accuracy"] == pytest.approx(0.9731) and second["status"] == "completed"


def test_runs_empty_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "new").mkdir()
    assert main(["runs", "--workspace", str(tmp_path / "new")]) == 0
    assert "No runs" in capsys.readouterr().out
    assert main(["runs", "--workspace", str(tmp_path / "new"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == []
    assert list((tmp_path / "new").iterdir()) == []  # listing creates nothing


def test_a_mistyped_workspace_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["runs"], ["train", "--resume", "20250101-000000-abcd"]):
        assert main([*argv, "--workspace", str(tmp_path / "typo")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "does not exist" in err[0]
    assert not (tmp_path / "typo").exists()


def test_runs_uses_workbench_home(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    done, _ = _populate(tmp_path)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    assert main(["runs", "--json"]) == 0
    assert done in {r["run_id"] for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])}


def test_runs_unwritable_workspace_exits_2_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "workbench", "runs", "--workspace", str(blocker / "ws")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "workspace" in err[0] and "Traceback" not in proc.stderr
