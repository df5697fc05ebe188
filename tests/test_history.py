"""Per-sample learning history: stored compactly per epoch, read back, and what it says about each sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.analysis.metrics import class_metrics, confusion_matrix, row_normalised
from workbench.errors import UnknownNameError
from workbench.runs import RunStore
from workbench.runs.history import discard_history_after, load_history, record_samples

LABELS = [0, 1, 2, 1]
# epoch -> predictions of the four samples
PREDS = {
    1: [1, 1, 0, 0],   # right: s1
    2: [0, 1, 0, 1],   # right: s0 s1 s3
    3: [0, 0, 2, 1],   # right: s0 s2 s3   (s1 forgotten)
    4: [2, 1, 2, 0],   # right: s1 s2      (s0, s3 forgotten)
}


def _store_with_run(tmp_path: Path) -> tuple[RunStore, str]:
    store = RunStore(tmp_path)
    run_id = store.create_run(arch="lenet", arch_options={}, dataset="digits", config={}, device="cpu")
    return store, run_id


def _write(store: RunStore, run_id: str) -> None:
    for epoch, preds in PREDS.items():
        record_samples(store, run_id, epoch, np.array(preds), [0.5 * epoch, 1.0, 2.0, float(epoch)])


def test_history_round_trip_and_derived_figures(tmp_path: Path) -> None:
    store, run_id = _store_with_run(tmp_path)
    assert load_history(store, run_id) is None  # runs without history (e.g. from before the feature)
    _write(store, run_id)
    h = load_history(store, run_id)
    assert h is not None
    assert h.epochs == (1, 2, 3, 4) and h.num_samples == 4
    assert h.predictions.tolist() == [PREDS[e] for e in (1, 2, 3, 4)]
    assert h.losses.dtype == np.float32 and h.losses[:, 0].tolist() == [0.5, 1.0, 1.5, 2.0]
    assert h.first_correct_epoch(LABELS) == [2, 1, 3, 2]
    assert h.forgotten(LABELS) == [1, 1, 0, 1]
    assert h.confusion_at(3, LABELS, 3).tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert h.accuracy_at(3, LABELS) == 0.75
    never = h.first_correct_epoch([2, 2, 1, 2])
    assert never == [4, None, None, None]
    with pytest.raises(KeyError, match="recorded"):
        h.confusion_at(7, LABELS, 3)
    with pytest.raises(ValueError):
        h.forgotten([0, 1])


def test_history_storage_is_compact_and_replaceable(tmp_path: Path) -> None:
    store, run_id = _store_with_run(tmp_path)
    record_samples(store, run_id, 1, [3] * 10, [0.25] * 10)
    record_samples(store, run_id, 1, [4] * 10, [float("nan")] + [1e6] * 9)   # same epoch again: replaced
    (pred_blob, loss_blob), = store._read("SELECT predictions, losses FROM sample_history WHERE run_id = ?", (run_id,))
    assert len(pred_blob) == 20 and len(loss_blob) == 20   # 4 bytes per sample per epoch
    h = load_history(store, run_id)
    assert h is not None and h.predictions.tolist() == [[4] * 10]
    assert np.isnan(h.losses[0, 0]) and np.isinf(h.losses[0, 1])


def test_discard_after_and_errors(tmp_path: Path) -> None:
    store, run_id = _store_with_run(tmp_path)
    _write(store, run_id)
    assert discard_history_after(store, run_id, 2) == 2
    h = load_history(store, run_id)
    assert h is not None and h.epochs == (1, 2)
    with pytest.raises(UnknownNameError):
        record_samples(store, "no-such-run", 1, [0], [0.0])
    with pytest.raises(ValueError):
        record_samples(store, run_id, 3, [0, 1], [0.0])
    with pytest.raises(ValueError):
        record_samples(store, run_id, 3, [70000], [0.0])
    store.delete_run(run_id, force=True)
    assert load_history(store, run_id) is None   # deleted with its run


def test_metrics_from_a_confusion_matrix() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 0, 1])
    m = confusion_matrix(y, p, 4)
    assert m.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert m.sum() == y.size
    c = class_metrics(m)
    assert c.support.tolist() == [3, 2, 1, 0]
    assert c.recall[:3].tolist() == [2 / 3, 0.5, 0.0] and np.isnan(c.recall[3])
    assert c.precision[:2].tolist() == [2 / 3, 1 / 3] and np.isnan(c.precision[2])
    assert row_normalised(m)[0].tolist() == [2 / 3, 1 / 3, 0, 0] and row_normalised(m)[3].sum() == 0
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 4]), np.array([0, 0]), 4)
