"""PNG pictures of analysis results without Qt: colour ramp, heat-map overlay, feature-map and filter grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from workbench.analysis import render
from workbench.analysis.features import FeatureMaps, Filters


def test_colormap_runs_from_dark_to_bright() -> None:
    ramp = render.colormap(np.linspace(0, 1, 11))
    assert ramp.shape == (11, 3) and ramp.dtype == np.uint8
    assert ramp[0].tolist() == [0, 0, 4] and ramp[-1].tolist() == [252, 255, 164]
    assert (np.diff(ramp.astype(int).sum(axis=1)) > 0).all()   # brighter as values grow
    assert render.colormap(np.array([-1.0, np.nan, 2.0])).tolist() == [[0, 0, 4], [0, 0, 4], [252, 255, 164]]
    assert render.normalise(np.array([2.0, 4.0])).tolist() == [0.0, 1.0]
    assert render.normalise(np.ones(3)).tolist() == [0.0, 0.0, 0.0]


def test_pictures_and_png_files(tmp_path: Path) -> None:
    view = np.zeros((28, 28, 1), np.uint8)
    heat = np.zeros((28, 28), np.float32)
    heat[:14] = 1.0
    over = render.overlay(view, heat)
    assert over.shape == (224, 224, 3)
    assert over[:100].mean() > over[-100:].mean()   # the hot half is brighter
    pic = render.gradcam_picture(view, heat, gap=8)
    assert pic.shape == (224, 2 * 224 + 8, 3)
    maps = FeatureMaps(layer="c", type="Conv2d", shape=(5, 10, 10), maps=np.random.default_rng(0).random((5, 10, 10)))
    grid = render.features_picture(maps, min_tile=32)
    assert grid.shape == (2 * (40 + 2) + 2, 3 * (40 + 2) + 2, 3)
    rgb = Filters(layer="c", weight=np.random.default_rng(1).normal(size=(6, 3, 5, 5)).astype(np.float32), rgb=True)
    grey = Filters(layer="d", weight=np.ones((4, 2, 3, 3), np.float32), rgb=False)
    assert render.filters_picture(rgb).shape[2] == 3
    assert render.filters_picture(grey, min_tile=24).shape == (4 * 26 + 2, 2 * 26 + 2, 3)
    path = render.save_png(pic, tmp_path / "g.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (pic.shape[1], pic.shape[0])
        assert (np.asarray(im) == pic).all()
