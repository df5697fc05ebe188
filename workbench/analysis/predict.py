"""Classify image files with a run's model: any format, size, colour mode or bit depth, through the run's own
preprocessing (see `workbench.analysis.inference`); the top-k classes with softmax probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.analysis.inference import forward_logits, load_images, preprocess, resolve_run
from workbench.errors import InvalidOptionError
from workbench.training.restore import RestoredRun


@dataclass(frozen=True)
class Prediction:
    """The most probable classes for one image, most probable first."""

    image: str                          # the file (or caption) the prediction is for
    indices: tuple[int, ...]            # class indices
    classes: tuple[str, ...]            # their names
    probabilities: tuple[float, ...]    # softmax probabilities, descending

    @property
    def predicted(self) -> str:
        """The top class's name."""
        return self.classes[0]

    @property
    def probability(self) -> float:
        """The top class's probability."""
        return self.probabilities[0]

    def to_dict(self) -> dict[str, Any]:
        """{image, top: [{class, probability}]} (the `workbench predict --json` entry)."""
        return {"image": self.image, "top": [{"class": c, "probability": p}
                                             for c, p in zip(self.classes, self.probabilities)]}


def top_k(restored: RestoredRun, logits: torch.Tensor, names: Sequence[str], top: int = 5) -> list[Prediction]:
    """One Prediction per row of float logits [B, K]."""
    if top < 1:
        raise InvalidOptionError(f"--top must be at least 1, got {top}.")
    k = min(int(top), logits.shape[1])
    probs, idx = torch.softmax(logits.float(), dim=1).topk(k, dim=1)
    p_rows, i_rows = probs.cpu().tolist(), idx.cpu().tolist()
    return [Prediction(image=str(name), indices=tuple(i), classes=tuple(restored.classes[j] for j in i),
                       probabilities=tuple(float(v) for v in p))
            for name, p, i in zip(names, p_rows, i_rows)]


def predict_arrays(run: str | RestoredRun, images: Sequence[np.ndarray | torch.Tensor], names: Sequence[str], *,
                   top: int = 5, **restore: Any) -> list[Prediction]:
    """Predict images already decoded in the run's stored format (uint8 [C, h, w], e.g. from `sample_images`)."""
    restored = resolve_run(run, **restore)
    if not images:
        return []
    return top_k(restored, forward_logits(restored, preprocess(restored, images)), names, top)


def predict_images(run: str | RestoredRun, paths: Sequence[Path | str], *, top: int = 5,
                   workspace: Path | str | None = None, checkpoint: str = "best",
                   device: str | torch.device | None = None) -> list[Prediction]:
    """Top-`top` classes of each image file. `run`: a run id (restored from `workspace` at `checkpoint` onto
    `device`, default the CPU) or a `RestoredRun`. UnreadableImageError (a WorkbenchError) names the first
    file that cannot be read."""
    if top < 1:
        raise InvalidOptionError(f"--top must be at least 1, got {top}.")
    restored = resolve_run(run, workspace=workspace, checkpoint=checkpoint, device=device)
    images = load_images(restored, paths)
    return predict_arrays(restored, images, [str(p) for p in paths], top=top)
