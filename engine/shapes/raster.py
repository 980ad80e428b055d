"""Rasterise shapes back to mattes (to measure them, and to turn imported roto into masks).

Polygons are filled exactly by an even-odd scanline at pixel centres: a pixel is inside when its\ncentre is.
Hole shapes are subtracted from the union of their object's outer shapes. With ``soft=True`` a
feathered shape gets a linear ramp of its ``feather`` width centred on the curve (the model of
:mod:`engine.shapes.model`), so thresholding the soft matte at 0.5 gives the hard one.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from engine.shapes.bezier import sample_key
from engine.shapes.model import BezierKey, Shape

__all__ = ["fill_polygons", "rasterize_key", "rasterize_shapes", "rasterize_frame"]

def _fill_one(poly: np.ndarray, out: np.ndarray) -> None:
    """Even-odd scanline fill of one closed polygon into ``out`` (uint8 ``(H, W)``), exact at pixel centres."""
    h, w = out.shape
    p0 = poly
    p1 = np.roll(poly, -1, axis=0)
    y0, y1 = p0[:, 1], p1[:, 1]
    lo = np.minimum(y0, y1)
    hi = np.maximum(y0, y1)
    # rows whose centre (r + 0.5) lies in [lo, hi): half-open so shared vertices count once
    r_first = np.ceil(lo - 0.5).astype(np.int64)
    r_last = np.ceil(hi - 0.5).astype(np.int64) - 1
    r_first = np.maximum(r_first, 0)
    r_last = np.minimum(r_last, h - 1)
    counts = np.maximum(0, r_last - r_first + 1)
    if counts.sum() == 0:
        return
    e = np.repeat(np.arange(len(poly)), counts)
    starts = np.repeat(r_first, counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = starts + offs
    yc = rows + 0.5
    t = (yc - y0[e]) / (y1[e] - y0[e])
    xs = p0[e, 0] + t * (p1[e, 0] - p0[e, 0])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    if len(rows) % 2:  # degenerate numerics: drop the last crossing of the odd row
        return
    r_in, x_in = rows[0::2], xs[0::2]
    x_out = xs[1::2]
    c0 = np.clip(np.ceil(x_in - 0.5).astype(np.int64), 0, w)
    c1 = np.clip(np.floor(x_out - 0.5).astype(np.int64) + 1, 0, w)
    keep = c1 > c0
    if not keep.any():
        return
    r_in, c0, c1 = r_in[keep], c0[keep], c1[keep]
    ra, rb = int(r_in.min()), int(r_in.max()) + 1
    ca, cb = int(c0.min()), int(c1.max())
    diff = np.zeros((rb - ra, cb - ca + 1), np.int32)
    np.add.at(diff, (r_in - ra, c0 - ca), 1)
    np.add.at(diff, (r_in - ra, c1 - ca), -1)
    out[ra:rb, ca:cb] |= (np.cumsum(diff[:, :-1], axis=1) > 0).view(np.uint8)


def fill_polygons(polys: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """bool ``(H, W)``: pixels whose centres lie inside any of the closed polygons (engine coordinates).

    Each polygon is filled even-odd (a simple closed curve: its inside), polygons are united.
    """
    h, w = shape
    out = np.zeros((h, w), np.uint8)
    for p in polys:
        p = np.asarray(p, np.float64)
        if len(p) < 3 or not np.all(np.isfinite(p)):
            continue
        _fill_one(p, out)
    return out.astype(bool)


def rasterize_key(key: BezierKey, shape: tuple[int, int], spacing: float = 0.5) -> np.ndarray:
    """bool ``(H, W)`` of one closed key."""
    return fill_polygons([sample_key(key, spacing)], shape)


def _ramp(hard: np.ndarray, feather: float) -> np.ndarray:
    """A linear 0→1 ramp ``feather`` px wide centred on the edge of ``hard`` (float32)."""
    if feather <= 0:
        return hard.astype(np.float32)
    u8 = hard.astype(np.uint8)
    d_in = cv2.distanceTransform(u8, cv2.DIST_L2, 5)  # inside pixels: distance to the nearest outside one
    d_out = cv2.distanceTransform(1 - u8, cv2.DIST_L2, 5)
    # signed distance to the edge (positive inside); pixel centres sit half a pixel from it
    sd = np.where(hard, d_in - 0.5, -(d_out - 0.5))
    return np.clip(0.5 + sd / float(feather), 0.0, 1.0).astype(np.float32)


def rasterize_shapes(items: Iterable[tuple[BezierKey, bool, float]], shape: tuple[int, int], *,
                     soft: bool = False) -> np.ndarray:
    """Union of outer keys minus hole keys: ``items`` are ``(key, is_hole, feather)``.

    Returns bool ``(H, W)``, or float32 in [0, 1] when ``soft``.
    """
    items = list(items)
    outer = [(k, f) for k, h, f in items if not h]
    holes = [(k, f) for k, h, f in items if h]
    if not soft:
        m = fill_polygons([sample_key(k) for k, _ in outer], shape)
        if holes:
            m &= ~fill_polygons([sample_key(k) for k, _ in holes], shape)
        return m
    acc = np.zeros(shape, np.float32)
    for k, f in outer:
        acc = np.maximum(acc, _ramp(rasterize_key(k, shape), f))
    for k, f in holes:
        acc = acc * (1.0 - _ramp(rasterize_key(k, shape), f))
    return acc


def rasterize_frame(shapes: Iterable[Shape], frame: int, shape: tuple[int, int], *, soft: bool = False,
                    object_id: int | None = None) -> np.ndarray:
    """The matte of ``shapes`` (optionally one object's) on ``frame``."""
    items = []
    for s in shapes:
        if object_id is not None and s.object_id != object_id:
            continue
        k = s.at(frame)
        if k is not None:
            items.append((k, s.hole, s.feather))
    if not items:
        return np.zeros(shape, np.float32 if soft else bool)
    return rasterize_shapes(items, shape, soft=soft)
