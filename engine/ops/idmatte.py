"""Object-id matte: each pixel belongs to at most one object.

``id_matte(items, shape)`` takes ``(object_id, mask bool (H, W), confidence)`` triples and returns
``uint16 (H, W)`` where 0 is background. Where masks overlap, the object with the higher
confidence wins; at equal confidence the pixel goes to the object it lies deeper inside
(distance to that mask's edge). Per-object masks are not modified.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def id_matte(items: Iterable[tuple[int, np.ndarray, float]], shape: tuple[int, int]) -> np.ndarray:
    import cv2

    ids = np.zeros(shape, np.uint16)
    best = np.full(shape, -np.inf, np.float32)
    for obj_id, mask, confidence in items:
        m = np.asarray(mask, bool)
        if m.shape != tuple(shape):
            raise ValueError(f"mask of object {obj_id} is {m.shape}, expected {tuple(shape)}")
        if not m.any():
            continue
        depth = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 3)
        # confidence dominates; depth (capped, scaled below one confidence step) breaks ties
        score = np.where(m, float(confidence) * 1000.0 + np.minimum(depth, 999.0), -np.inf).astype(np.float32)
        take = score > best
        ids[take] = obj_id
        best[take] = score[take]
    return ids
