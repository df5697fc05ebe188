"""Model export: every lecture architecture to ONNX (run in onnxruntime) and pt2 (loaded without the project),
safetensors round trips, a real stored run through export_run, atomic writes, overwrite refusal, missing extras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from trained_run import train_lenet_digits

from workbench.errors import CheckpointError, UnknownNameError
from workbench.export import ExportError, MissingExtraError, ModelMetadata, export_model, export_run, trace
from workbench.models import build_model

# Every lecture architecture at a small input (and narrow where an option allows) so the matrix stays cheap.
ARCHS: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {
    "lenet": ((1, 28, 28), {}),
    "alexnet": ((3, 32, 32), {"stem": "small", "hidden": 64}),
    "vgg": ((3, 32, 32), {"block_info": ((1, 16), (1, 32), (2, 32), (2, 64), (2, 64)), "classifier_width": 64,
                          "batch_norm": True}),
    "nin": ((3, 32, 32), {}),
    "googlenet": ((3, 32, 32), {}),
    "resnet18": ((3, 32, 32), {}),
    "resnet20": ((3, 32, 32), {}),
}
TOLERANCE = 1e-4


class Exported:
    """One architecture built with random weights and traced once (shared by the ONNX and pt2 checks)."""

    def __init__(self, arch: str, folder: Path) -> None:
        shape, options = ARCHS[arch]
        torch.manual_seed(0)
        self.model = build_model(arch, num_classes=10, input_shape=shape, options=options).eval()
        self.meta = ModelMetadata(arch=arch, arch_options=options, input_shape=shape,
                                  classes=tuple(f"c{i}" for i in range(10)), mean=(0.5,) * shape[0],
                                  std=(0.25,) * shape[0])
        self.folder = folder
        self.program = trace(self.model, shape, arch)
        self.inputs = {b: torch.randn(b, *shape, generator=torch.Generator().manual_seed(b)) for b in (1, 3)}
        with torch.no_grad():
            self.expected = {b: self.model(x) for b, x in self.inputs.items()}
        self._pt2: Path | None = None

    def pt2(self) -> Path:
        """The program saved once as .pt2, with its inputs and expected logits beside it (`<file>.io`)."""
        if self._pt2 is None:
            path = self.folder / f"{self.meta.arch}.pt2"
            export_model(self.model, self.meta, format="pt2", out=path, program=self.program, overwrite=True)
            torch.save({"inputs": list(self.inputs.values()), "outputs": list(self.expected.values())},
                       str(path) + ".io")
            self._pt2 = path
        return self._pt2


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, Exported] = {}
    root = tmp_path_factory.mktemp("models")

    def get(arch: str) -> Exported:
        if arch not in cache:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                cache[arch] = Exported(arch, root)
            finally:
                torch.set_num_threads(threads)
        return cache[arch]

    return get


@pytest.mark.parametrize("arch", list(ARCHS))
def test_onnx_runs_in_onnxruntime_with_pytorch_logits(arch: str, exported: Any) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx
    import onnxruntime as ort

    e = exported(arch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = export_model(e.model, e.meta, format="onnx", out=e.folder / f"{arch}.onnx", program=e.program)
    assert [str(w.message) for w in caught] == []          # the current exporter: no deprecation warnings
    assert result.path.is_file() and result.details["opset"] >= 18 and result.input_shape == e.meta.input_shape
    model = onnx.load(str(result.path))
    assert len(model.graph.input) == 1 and len(model.graph.output) == 1   # GoogLeNet: eval graph, no aux heads
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value                  # dynamic batch
    props = {p.key: p.value for p in model.metadata_props}
    assert props["arch"] == arch and json.loads(props["classes"]) == [f"c{i}" for i in range(10)]
    assert json.loads(props["input_shape"]) == list(e.meta.input_shape)
    assert json.loads(props["mean"]) == [0.5] * e.meta.input_shape[0] and "std" in props and "image_size" in props
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    for batch, x in e.inputs.items():
        (logits,) = session.run(None, {"input": x.numpy()})
        assert logits.shape == (batch, 10)
        diff = float(abs(logits - e.expected[batch].numpy()).max())
        assert diff <= TOLERANCE, f"{arch} batch {batch}: max abs diff {diff}"


@pytest.mark.parametrize("arch", list(ARCHS))
def test_pt2_program_matches_pytorch(arch: str, exported: Any) -> None:
    from workbench.export import read_pt2_metadata

    e = exported(arch)
    path = e.pt2()
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        for batch, x in e.inputs.items():
            out = loaded(x)
            assert out.shape == (batch, 10)
            assert float((out - e.expected[batch]).abs().max()) <= TOLERANCE
    assert read_pt2_metadata(path)["arch"] == arch


_LOAD_WITHOUT_PROJECT = r"""
import json, sys
sys.modules["workbench"] = None          # even an editable install cannot provide it now
import torch
try:
    import workbench  # noqa: F401
    raise SystemExit("workbench is importable")
except ImportError:
    pass
worst = {}
with torch.no_grad():
    for arch, path in json.loads(sys.argv[1]).items():
        module = torch.export.load(path).module()
        data = torch.load(path + ".io", weights_only=True)
        worst[arch] = max(float((module(x) - y).abs().max()) for x, y in zip(data["inputs"], data["outputs"]))
print(json.dumps(worst))
"""


# Loading is the same for every architecture; the default suite checks two (a subprocess imports torch afresh),
# the slow suite all of them.
@pytest.mark.parametrize("archs", [("lenet", "resnet20"), pytest.param(tuple(ARCHS), marks=pytest.mark.slow)],
                         ids=["two", "all"])
def test_pt2_loads_without_the_project(archs: tuple[str, ...], exported: Any, tmp_path: Path) -> None:
    files = {arch: str(exported(arch).pt2()) for arch in archs}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_PROJECT, json.dumps(files)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    worst = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(worst) == set(archs) and max(worst.values()) <= TOLERANCE, worst


@pytest.mark.parametrize("arch", ["lenet", "googlenet", "resnet20"])
def test_safetensors_round_trip(arch: str, tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from workbench.export import load_safetensors, read_safetensors_metadata

    shape, options = ARCHS[arch]
    torch.manual_seed(1)
    model = build_model(arch, num_classes=7, input_shape=shape, options=options).eval()
    meta = ModelMetadata(arch=arch, arch_options=options, input_shape=shape, classes=tuple("abcdefg"),
                         mean=(0.1,), std=(0.3,))
    result = export_model(model, meta, format="safetensors", out=tmp_path)
    assert result.path == tmp_path / f"{arch}.safetensors" and result.details["tensors"] == len(model.state_dict())
    assert read_safetensors_metadata(result.path)["classes"] == list("abcdefg")
    loaded = load_safetensors(result.path)
    assert not loaded.training
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workspace = tmp_path_factory.mktemp("ws")
    return workspace, train_lenet_digits(workspace)


def test_export_run_onnx_matches_the_restored_model(stored_run: tuple[Path, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx
    import onnxruntime as ort

    from workbench.training.restore import restore_run

    workspace, run_id = stored_run
    monkeypatch.chdir(tmp_path)
    result = export_run(run_id, format="onnx", workspace=workspace)
    assert result.path == tmp_path / f"{run_id}-best.onnx" and result.checkpoint == "best"
    assert result.to_dict()["run_id"] == run_id and result.input_shape == (1, 28, 28)
    restored = restore_run(run_id, workspace=workspace)
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert props["run_id"] == run_id and props["checkpoint"] == "best" and props["dataset"] == "digits"
    assert json.loads(props["classes"]) == list(restored.classes) == [str(i) for i in range(10)]
    assert json.loads(props["mean"]) == pytest.approx(list(restored.preprocessing.mean))
    assert json.loads(props["std"]) == pytest.approx(list(restored.preprocessing.std))
    assert json.loads(props["arch_options"]) == restored.arch_options and props["channels"] == "1"
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        expected = restored.model(x).numpy()
    (logits,) = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    assert float(abs(logits - expected).max()) <= TOLERANCE


def test_export_run_pt2_and_safetensors_of_the_last_checkpoint(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from workbench.export import load_safetensors
    from workbench.training.restore import restore_run

    workspace, run_id = stored_run
    restored = restore_run(run_id, workspace=workspace, checkpoint="last")
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = restored.model(x)
    pt2 = export_run(run_id, format="pt2", workspace=workspace, checkpoint="last", out=tmp_path / "m.pt2")
    assert pt2.path == tmp_path / "m.pt2" and pt2.checkpoint == "last"
    assert torch.allclose(torch.export.load(str(pt2.path)).module()(x), expected, atol=TOLERANCE)
    st = export_run(run_id, format="safetensors", workspace=workspace, checkpoint="last", out=f"{tmp_path}/sub/")
    assert st.path == tmp_path / "sub" / f"{run_id}-last.safetensors"
    with torch.no_grad():
        assert torch.equal(load_safetensors(st.path)(x), expected)


def test_existing_output_is_refused_unless_overwrite(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    workspace, run_id = stored_run
    target = tmp_path / "model.pt2"
    target.write_bytes(b"keep me")
    with pytest.raises(ExportError, match=r"already exists.*--force"):
        export_run(run_id, format="pt2", workspace=workspace, out=target)
    assert target.read_bytes() == b"keep me"
    export_run(run_id, format="pt2", workspace=workspace, out=target, overwrite=True)
    assert target.stat().st_size > 1000


def test_a_failed_write_leaves_nothing_behind(stored_run: tuple[Path, str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.export import formats

    def half_written(program: Any, path: Path, meta: ModelMetadata) -> dict[str, Any]:
        path.write_bytes(b"partial")
        raise RuntimeError("disk went away")

    monkeypatch.setattr(formats, "write_pt2", half_written)
    workspace, run_id = stored_run
    with pytest.raises(RuntimeError, match="disk went away"):
        export_run(run_id, format="pt2", workspace=workspace, out=tmp_path / "m.pt2")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_an_export_error(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    workspace, run_id = stored_run
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="choose a writable --out"):
        export_run(run_id, format="pt2", workspace=workspace, out=blocker / "m.pt2")


def test_unknown_run_and_missing_checkpoint(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    from workbench.runs import RunStore

    workspace, _ = stored_run
    with pytest.raises(UnknownNameError, match="nope"):
        export_run("nope", format="pt2", workspace=workspace, out=tmp_path)
    with pytest.raises(UnknownNameError, match="nope"):
        export_run("nope", format="pt2", workspace=tmp_path / "empty", out=tmp_path)
    assert not (tmp_path / "empty").exists()
    store = RunStore(workspace)
    fresh = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={"epochs": 1}, device="cpu")
    store.update_run(fresh, status="stopped")
    store.close()
    with pytest.raises(CheckpointError, match="no best checkpoint"):
        export_run(fresh, format="pt2", workspace=workspace, out=tmp_path)
    with pytest.raises(ExportError, match="Unknown export format 'jit'"):
        export_run(fresh, format="jit", workspace=workspace)


@pytest.mark.parametrize(("fmt", "module", "extra"), [("onnx", "onnxscript", "onnx"),
                                                       ("safetensors", "safetensors", "safetensors"),
                                                       ("tensorboard", "tensorboard", "tensorboard")])
def test_missing_extra_names_the_pip_command(fmt: str, module: str, extra: str, stored_run: tuple[Path, str],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import of it now fails, as when it is not installed
    workspace, run_id = stored_run
    with pytest.raises(MissingExtraError) as info:
        export_run(run_id, format=fmt, workspace=workspace, out=tmp_path / "x")
    message = str(info.value)
    assert f"pip install 'cnn-workbench[{extra}]'" in message and module in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_an_untraceable_model_is_an_export_error(tmp_path: Path) -> None:
    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) if x.sum() > 0 else -x.flatten(1)   # data-dependent control flow

    meta = ModelMetadata(arch="branchy", arch_options={}, input_shape=(1, 2, 2), classes=("a", "b", "c", "d"),
                         mean=(0.0,), std=(1.0,))
    with pytest.raises(ExportError, match=r"torch\.export could not trace branchy"):
        export_model(Branchy(), meta, format="pt2", out=tmp_path / "b.pt2")
    assert list(tmp_path.iterdir()) == []
