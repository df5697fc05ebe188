"""`workbench export`: the JSON last line for each format, the summary line, and exit 2 with one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trained_run import train_lenet_digits

from workbench.cli import main
from workbench.runs import RunStore


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workspace = tmp_path_factory.mktemp("ws")
    return workspace, train_lenet_digits(workspace)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(["export", *argv])
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(("fmt", "module"), [("pt2", "torch"), ("safetensors", "safetensors"),
                                             ("onnx", "onnxscript"), ("tensorboard", "tensorboard")])
def test_json_last_line(fmt: str, module: str, stored_run: tuple[Path, str], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(module)
    workspace, run_id = stored_run
    rc, out, err = _run([run_id, "--format", fmt, "--workspace", str(workspace), "--out", str(tmp_path), "--json"],
                        capsys)
    assert rc == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["run_id"] == run_id and data["format"] == fmt and data["files"]
    assert all(Path(p).is_file() for p in data["files"]) and data["bytes"] > 0
    if fmt == "tensorboard":
        assert data["checkpoint"] is None and data["path"] == str(tmp_path / run_id) and data["scalars"] > 0
    else:
        assert data["checkpoint"] == "best" and data["input_shape"] == [1, 28, 28] and data["num_classes"] == 10
        assert data["path"] == str(tmp_path / f"{run_id}-best.{fmt}") == data["files"][0]


def test_summary_line_and_last_checkpoint(stored_run: tuple[Path, str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    workspace, run_id = stored_run
    target = tmp_path / "lenet.pt2"
    rc, out, err = _run([run_id, "--format", "pt2", "--checkpoint", "last", "--workspace", str(workspace),
                         "--out", str(target)], capsys)
    assert rc == 0, err
    assert out.startswith(f"Wrote run {run_id} (lenet, last checkpoint) as pt2: {target}") and "1x28x28" in out
    rc, _, err = _run([run_id, "--format", "pt2", "--workspace", str(workspace), "--out", str(target)], capsys)
    assert rc == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run([run_id, "--format", "pt2", "--workspace", str(workspace), "--out", str(target), "--force"],
                      capsys)
    assert rc == 0, err


def test_bad_input_exits_2_with_one_line(stored_run: tuple[Path, str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, run_id = stored_run
    store = RunStore(workspace)
    fresh = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 1}, device="cpu")
    store.update_run(fresh, status="stopped")
    store.close()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setitem(sys.modules, "onnxscript", None)   # as if the onnx extra were not installed
    cases = [
        (["nope", "--format", "pt2", "--workspace", str(workspace)], "nope"),
        ([fresh, "--format", "pt2", "--workspace", str(workspace), "--out", str(tmp_path)], "no best checkpoint"),
        ([run_id, "--format", "pt2", "--workspace", str(workspace), "--out", str(blocker / "m.pt2")], "writable"),
        ([run_id, "--format", "onnx", "--workspace", str(workspace), "--out", str(tmp_path)],
         "pip install 'cnn-workbench[onnx]'"),
        ([run_id, "--format", "jit", "--workspace", str(workspace)], "invalid choice"),
        ([run_id, "--workspace", str(workspace)], "--format"),
    ]
    for argv, needle in cases:
        rc, out, err = _run(argv, capsys)
        assert rc == 2, (argv, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_missing_extra_in_a_real_process(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    """The message a user without the extra sees: exit 2, one line naming the pip command."""
    workspace, run_id = stored_run
    code = ("import sys; sys.modules['safetensors'] = None; from workbench.cli import main; "
            f"sys.exit(main(['export', {run_id!r}, '--format', 'safetensors', '--workspace', {str(workspace)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("workbench: error: safetensors export needs the optional package safetensors: run "
                                   "pip install 'cnn-workbench[safetensors]' (or pip install -e '.[safetensors]' in a "
                                   "checkout).")
