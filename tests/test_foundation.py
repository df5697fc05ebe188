"""Packaging and entry points: resources are found from a checkout and from an installed wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workbench import paths

ROOT = Path(__file__).resolve().parent.parent


def test_resources_found_in_checkout() -> None:
    assert paths.resources_dir() == ROOT / "resources"
    assert paths.resource("data").is_dir()


def test_workspace_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "ws"))
    assert paths.default_workspace() == tmp_path / "ws"
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    assert paths.default_data_root() == tmp_path / "ws" / "data"


def test_wheel_ships_resources_and_finds_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("cnn_workbench-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "site")
    assert any(n.startswith("workbench/resources/data/") for n in names)
    code = "import workbench.paths as p; r = p.resources_dir(); print(r); assert (r / 'data').is_dir()"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert str(tmp_path / "site") in out.stdout


def test_python_dash_m_workbench_help() -> None:
    out = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("list", "summary", "train", "runs", "gui"):
        assert command in out.stdout
