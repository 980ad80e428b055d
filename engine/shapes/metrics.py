"""How faithful shapes are to their matte, and how steady their points are.

* **IoU** of the rasterised shapes against the source matte thresholded at 0.5.
* **Mean boundary distance** (px): the symmetric mean distance between the shapes' curves and
  the matte's 0.5 iso-lines (sub-pixel: both are dense polylines, not pixel edges).
* **Jitter** (px/frame): how far each point is, on average, from a smooth path through its
  positions (the 5-frame quadratic Savitzky–Golay fit) — 0 for points moving, turning or
  accelerating smoothly, the size of the frame-to-frame wobble otherwise.
* **Slip** (px/frame, synthetic plates only): how far a point ends up from the physical point
  it sat on one frame earlier (the ground truth knows where that point went) — a point on the
  chin that stays on the chin slips 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine.shapes.bezier import curve_distance, sample_key
from engine.shapes.model import BezierKey, Shape

__all__ = ["iou", "boundary_distance", "jitter", "shape_jitter"]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a) > 0.5 if np.asarray(a).dtype != bool else np.asarray(a)
    b = np.asarray(b) > 0.5 if np.asarray(b).dtype != bool else np.asarray(b)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def boundary_distance(keys: Iterable[BezierKey], contours: Sequence[np.ndarray]) -> tuple[float, float]:
    """``(mean, max)`` symmetric distance in px between curves and iso-line contours."""
    curves = [sample_key(k, 0.5) for k in keys]
    contours = [np.asarray(c) for c in contours if len(c)]
    if not curves and not contours:
        return 0.0, 0.0
    if not curves or not contours:
        return float("inf"), float("inf")
    all_curve = np.vstack(curves)
    all_cont = np.vstack(contours)
    # distance of each sample to the nearest polyline of the other set (densified, closed loops)
    d1 = np.min([curve_distance(all_cont, c) for c in curves], axis=0)
    d2 = np.min([curve_distance(all_curve, c) for c in contours], axis=0)
    both = np.concatenate([d1, d2])
    return float(both.mean()), float(both.max())


_SG5 = np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0  # Savitzky-Golay, 5 frames, quadratic


def jitter(track: np.ndarray) -> float:
    """Mean px by which points stray from a smooth (locally quadratic) path through their positions.

    ``track`` is ``(F, N, 2)``: N points over F consecutive frames. Each position is compared
    with the 5-frame Savitzky–Golay (quadratic) fit around it, so steady motion, turning and
    accelerating included, measures 0 and only frame-to-frame wobble counts.
    """
    t = np.asarray(track, np.float64)
    if t.shape[0] < 5:
        if t.shape[0] < 3:
            return 0.0
        mid = 0.5 * (t[:-2] + t[2:])
        return float(np.linalg.norm(t[1:-1] - mid, axis=2).mean())
    smooth = sum(c * t[i:len(t) - 4 + i] for i, c in enumerate(_SG5))
    return float(np.linalg.norm(t[2:-2] - smooth, axis=2).mean())


def shape_jitter(shape: Shape) -> tuple[float, int]:
    """Jitter of a shape's anchors over its keyed consecutive frames; ``(px/frame, samples)``."""
    frames = shape.key_frames
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][-1] + 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    total, count = 0.0, 0
    for run in runs:
        if len(run) < 5:
            continue
        track = np.stack([shape.keys[f].points for f in run])
        n = (len(run) - 4) * track.shape[1]
        total += jitter(track) * n
        count += n
    return (total / count if count else 0.0), count
