"""Pictures of the analysis results as RGB uint8 arrays and PNG files: NumPy and PIL only (no Qt, no matplotlib).

Used by `workbench explain`; the GUI draws its own widgets but may reuse `colormap`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from workbench.analysis.features import FeatureMaps, Filters

# An "inferno"-like ramp (black → purple → red → orange → pale yellow): dark = nothing, bright = much.
_STOPS = np.linspace(0.0, 1.0, 8)
_COLOURS = np.array([(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85), (227, 89, 51),
                     (249, 149, 10), (252, 255, 164)], dtype=np.float64)
BACKGROUND = (32, 32, 32)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 (any shape; clipped, NaN → 0) → uint8 [..., 3] colours of the ramp."""
    v = np.nan_to_num(np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0))
    rgb = np.stack([np.interp(v, _STOPS, _COLOURS[:, c]) for c in range(3)], axis=-1)
    return np.rint(rgb).astype(np.uint8)


def normalise(a: np.ndarray) -> np.ndarray:
    """Min-max scaled to 0..1 (a constant array becomes zeros)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W], [H, W, 1] or [H, W, 3] → [H, W, 3]."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]


def _resize(a: np.ndarray, size: tuple[int, int], smooth: bool) -> np.ndarray:
    """Resize an [H, W] float or [H, W, 3] uint8 array to (H', W') with PIL (bilinear or nearest)."""
    from PIL import Image

    method = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    if a.ndim == 2:
        return np.asarray(Image.fromarray(a.astype(np.float32)).resize((size[1], size[0]), method))
    return np.asarray(Image.fromarray(a.astype(np.uint8)).resize((size[1], size[0]), method))


def _upscaled_size(h: int, w: int, min_side: int) -> tuple[int, int]:
    f = max(1, math.ceil(min_side / max(1, min(h, w))))
    return h * f, w * f


def overlay(view: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.5, min_side: int = 224) -> np.ndarray:
    """The image (uint8 [H, W, C]) with the heat map (0..1 [h, w]) blended over it, scaled up for viewing."""
    base = _rgb(view)
    size = _upscaled_size(base.shape[0], base.shape[1], min_side)
    base = _resize(base, size, smooth=True).astype(np.float64)
    heat = colormap(np.clip(_resize(np.asarray(heatmap, dtype=np.float32), size, smooth=True), 0, 1))
    return np.rint((1 - alpha) * base + alpha * heat).astype(np.uint8)


def gradcam_picture(view: np.ndarray, heatmap: np.ndarray, *, min_side: int = 224, gap: int = 8) -> np.ndarray:
    """Side by side: the image as the model sees it, and the Grad-CAM heat map over it (uint8 [H, W, 3])."""
    over = overlay(view, heatmap, min_side=min_side)
    plain = _resize(_rgb(view), over.shape[:2], smooth=True)
    out = np.empty((over.shape[0], 2 * over.shape[1] + gap, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    out[:, : over.shape[1]] = plain
    out[:, over.shape[1] + gap:] = over
    return out


def tile_grid(tiles: np.ndarray, *, cols: int | None = None, pad: int = 2, min_tile: int = 32) -> np.ndarray:
    """Tiles uint8 [N, h, w, 3] laid out in a grid (about square unless `cols`), each scaled up (nearest) to at
    least `min_tile` pixels a side, on a dark background: uint8 [H, W, 3]."""
    n, h, w = tiles.shape[:3]
    if n == 0:
        return np.full((min_tile, min_tile, 3), BACKGROUND, dtype=np.uint8)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    th, tw = _upscaled_size(h, w, min_tile)
    out = np.empty((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    f = th // h
    for i in range(n):  # at most a few hundred tiles; each is one block copy
        r, c = divmod(i, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        out[y:y + th, x:x + tw] = tiles[i].repeat(f, axis=0).repeat(f, axis=1)
    return out


def features_picture(features: FeatureMaps, *, max_maps: int = 64, min_tile: int = 32) -> np.ndarray:
    """The first `max_maps` feature maps, each scaled to its own 0..1 range and coloured, in a grid."""
    maps = features.maps[:max_maps]
    tiles = np.stack([colormap(normalise(m)) for m in maps]) if len(maps) else np.zeros((0, 1, 1, 3), np.uint8)
    return tile_grid(tiles, min_tile=min_tile)


def filters_picture(filters: Filters, *, max_filters: int = 64, max_inputs: int = 16, min_tile: int = 24) -> np.ndarray:
    """First-layer colour filters as colour tiles; deeper ones as one grey tile per input channel
    (rows = filters, at most `max_filters`; columns = input channels, at most `max_inputs`)."""
    images = filters.images()
    if filters.rgb:
        tiles = np.rint(images[:max_filters] * 255).astype(np.uint8)
        return tile_grid(tiles, min_tile=min_tile)
    sel = images[:max_filters, :max_inputs]               # [out, in, kh, kw]
    out_n, in_n = sel.shape[:2]
    grey = np.rint(sel.reshape(out_n * in_n, *sel.shape[2:]) * 255).astype(np.uint8)
    return tile_grid(np.repeat(grey[..., None], 3, axis=3), cols=in_n, min_tile=min_tile)


def save_png(image: np.ndarray, path: Path | str) -> Path:
    """Write uint8 [H, W, 3] (or [H, W]) as a PNG; returns the path."""
    from PIL import Image

    p = Path(path)
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(p, format="PNG")
    return p
