"""Classification metrics on plain NumPy arrays: the confusion matrix and what each class row/column says.

NumPy only (no torch), so the run store's history and the GUI can use it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [K, K]: rows = true class, columns = predicted class; entries count samples.

    One `bincount` over `true * K + predicted` (no Python loop); indices outside 0..K-1 raise ValueError.
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(predictions, dtype=np.int64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels ({y.size}) and predictions ({p.size}) differ in length")
    k = int(num_classes)
    if y.size and (min(int(y.min()), int(p.min())) < 0 or max(int(y.max()), int(p.max())) >= k):
        raise ValueError(f"class indices must lie in 0..{k - 1}")
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)


@dataclass(frozen=True, eq=False)
class ClassMetrics:
    """Per-class figures read off a confusion matrix (index = class)."""

    support: np.ndarray     # int64 [K]: samples whose true class is k (row sums)
    predicted: np.ndarray   # int64 [K]: samples predicted as k (column sums)
    correct: np.ndarray     # int64 [K]: the diagonal
    recall: np.ndarray      # float64 [K]: correct / support (= per-class accuracy); NaN for an absent class
    precision: np.ndarray   # float64 [K]: correct / predicted; NaN for a class never predicted


def class_metrics(confusion: np.ndarray) -> ClassMetrics:
    """Support, recall (per-class accuracy) and precision of every class of a confusion matrix."""
    m = np.asarray(confusion, dtype=np.int64)
    support, predicted, correct = m.sum(axis=1), m.sum(axis=0), np.diag(m).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, correct / np.maximum(support, 1), np.nan)
        precision = np.where(predicted > 0, correct / np.maximum(predicted, 1), np.nan)
    return ClassMetrics(support=support, predicted=predicted, correct=correct, recall=recall, precision=precision)


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """float64 [K, K]: each row divided by its sum (0..1; rows of absent classes stay 0)."""
    m = np.asarray(confusion, dtype=np.float64)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
