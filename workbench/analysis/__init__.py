"""Understanding models and runs: evaluation, predictions, Grad-CAM, per-sample history, architecture comparison.

Qt-free; each module is imported directly (`from workbench.analysis.evaluate import evaluate_run`).
"""
