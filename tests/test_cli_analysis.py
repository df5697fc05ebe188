"""`workbench evaluate | predict | explain`: JSON contracts, readable reports, and exit 2 for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from analysis_support import LenetRun
from PIL import Image

from workbench.cli import main
from workbench.runs import RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "one.png"
    img = np.zeros((24, 24), np.uint8)
    img[2:22, 10:14] = 255
    Image.fromarray(img).save(path)
    return path


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1])


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:   # argparse's own errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    return lines[0]


def test_evaluate_json_and_report(run: LenetRun, capsys: pytest.CaptureFixture[str]) -> None:
    ws = ["--workspace", str(run.workspace)]
    d = _json(capsys, ["evaluate", run.run_id, *ws, "--json"])
    assert {"run_id", "checkpoint", "split", "num_samples", "accuracy", "loss", "classes", "confusion", "per_class",
            "top_losses", "history"} == set(d)
    assert (d["run_id"], d["checkpoint"], d["split"], d["num_samples"]) == (run.run_id, "best", "val", 179)
    assert d["accuracy"] == run.best_val_accuracy and 0 <= d["accuracy"] <= 1
    assert d["classes"] == [str(i) for i in range(10)]
    assert sum(map(sum, d["confusion"])) == 179 and len(d["per_class"]) == 10
    assert [r["support"] for r in d["per_class"]] == [sum(row) for row in d["confusion"]]
    assert all(r["recall"] == d["confusion"][k][k] / r["support"] for k, r in enumerate(d["per_class"]))
    assert len(d["top_losses"]) == 20 and d["top_losses"][0]["source"].startswith("digits[")
    losses = [t["loss"] for t in d["top_losses"]]
    assert losses == sorted(losses, reverse=True)
    h = d["history"]
    assert h is None or (len(h["first_correct_epoch"]) == 179 and len(h["forgotten"]) == 179)
    t = _json(capsys, ["evaluate", run.run_id, *ws, "--split", "train", "--checkpoint", "last", "--json"])
    assert (t["split"], t["checkpoint"], t["num_samples"], t["history"]) == ("train", "last", 1618, None)
    assert main(["evaluate", run.run_id, *ws]) == 0
    text = capsys.readouterr().out
    for part in ("Accuracy", "Per class:", "Confusion matrix", "Top losses:", "digits["):
        assert part in text


def test_predict_json(run: LenetRun, image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["predict", run.run_id, str(image), str(image), "--top", "2", "--workspace",
                       str(run.workspace), "--json"])
    assert d["run_id"] == run.run_id and d["checkpoint"] == "best" and len(d["predictions"]) == 2
    first = d["predictions"][0]
    assert first["image"] == str(image) and len(first["top"]) == 2 and set(first["top"][0]) == {"class", "probability"}
    assert first["top"][0]["probability"] >= first["top"][1]["probability"]
    assert main(["predict", run.run_id, str(image), "--workspace", str(run.workspace)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")


def test_explain_writes_only_into_out(run: LenetRun, image: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "pics"
    d = _json(capsys, ["explain", run.run_id, str(image), "--out", str(out), "--workspace", str(run.workspace),
                       "--class", "7", "--json"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pics"]
    assert sorted(p.name for p in out.iterdir()) == ["features.png", "filters.png", "gradcam.png"]
    assert d["files"] == {k: str(out / f"{k}.png") for k in ("gradcam", "features", "filters")}
    assert d["layer"] == "model.3" and d["class"] == "7" and 0 <= d["probability"] <= 1
    assert d["predicted"] in [str(i) for i in range(10)]
    ws = str(run.workspace)
    d = _json(capsys, ["explain", run.run_id, str(image), "--workspace", ws, "--layer", "model.4", "--json"])
    default = tmp_path / f"explain-{run.run_id}"
    assert d["out"] == default.name and d["files"]["filters"] is None   # model.4 is not a convolution
    assert sorted(p.name for p in default.iterdir()) == ["features.png", "gradcam.png"]
    assert main(["explain", run.run_id, str(image), "--workspace", ws, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out


def test_bad_input_is_exit_2_with_one_line(run: LenetRun, image: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    ws = ["--workspace", str(run.workspace)]
    out = tmp_path / "never"
    _fails(capsys, ["evaluate", "20200101-000000-dead", *ws], "20200101-000000-dead")
    missing = tmp_path / "no-workspace"
    _fails(capsys, ["evaluate", run.run_id, "--workspace", str(missing)], "does not exist")
    _fails(capsys, ["predict", run.run_id, str(image), "--workspace", str(missing)], "does not exist")
    assert not missing.exists()
    with RunStore(tmp_path / "ws") as store:
        fresh = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={}, device="cpu")
    _fails(capsys, ["evaluate", fresh, "--workspace", str(tmp_path / "ws")], "no best checkpoint")
    _fails(capsys, ["explain", run.run_id, str(image), *ws, "--layer", "model.33", "--out", str(out)],
           "Did you mean")
    _fails(capsys, ["explain", run.run_id, str(image), *ws, "--class", "eleven", "--out", str(out)], "eleven")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 not really a jpeg")
    _fails(capsys, ["explain", run.run_id, str(garbage), *ws, "--out", str(out)], str(garbage))
    _fails(capsys, ["predict", run.run_id, str(image), str(garbage), *ws], str(garbage))
    _fails(capsys, ["predict", run.run_id, str(tmp_path / "absent.png"), *ws], "absent.png")
    _fails(capsys, ["predict", run.run_id, str(image), "--top", "0", *ws], "--top")
    _fails(capsys, ["evaluate", run.run_id, "--checkpoint", "middle", *ws], "invalid choice")
    _fails(capsys, ["evaluate", run.run_id, "--device", "cuda:7", *ws], "cuda:7")
    assert not out.exists()
