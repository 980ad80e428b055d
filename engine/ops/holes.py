"""Fill holes: background enclosed by the matte (not reaching the frame border) becomes solid.

A hole is a connected region (4-neighbourhood) of ``alpha < threshold`` that does not touch the
image border; holes up to ``max_area`` px (None: any size) are filled. The soft rim of a filled
hole is raised to 1 too (it belonged to the hole's edge). Pure function on float32 (H, W).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fill_holes"]


def fill_holes(matte: np.ndarray, max_area: int | None = None, *, threshold: float = 0.5) -> np.ndarray:
    """float32 (H, W): ``matte`` with enclosed holes of at most ``max_area`` px filled."""
    import cv2

    a = np.clip(np.asarray(matte, np.float32), 0.0, 1.0)
    bg = (a < threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bg, connectivity=4)
    if n <= 1:
        return a.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fill = np.zeros(n, bool)
    fill[1:] = True
    fill[border] = False
    if max_area is not None:
        fill &= stats[:, cv2.CC_STAT_AREA] <= int(max_area)
    fill[0] = False
    region = fill[labels]
    if not region.any():
        return a.copy()
    rim = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    out = a.copy()
    out[rim] = np.maximum(out[rim], np.where(region[rim], 1.0, out[rim]))
    out[region] = 1.0
    return out
