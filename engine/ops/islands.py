"""Remove small islands: specks of matte not connected to anything big enough to keep.

Islands are connected regions (8-neighbourhood) of ``alpha > threshold``, each grown by one
pixel so their soft rims go with them; those smaller than ``min_area`` px are removed (set to 0).
Soft pixels touching no island (faint haze) are kept unless ``clear_haze``. Pure function on
float32 (H, W).
"""

from __future__ import annotations

import numpy as np

__all__ = ["remove_islands"]


def remove_islands(matte: np.ndarray, min_area: int, *, threshold: float = 0.5, clear_haze: bool = False) -> np.ndarray:
    """float32 (H, W): ``matte`` without islands smaller than ``min_area`` pixels."""
    import cv2

    a = np.clip(np.asarray(matte, np.float32), 0.0, 1.0)
    if min_area <= 1:
        return a.copy()
    fg = (a > threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < int(min_area)
    out = a.copy()
    if small.any():
        drop = small[labels]
        keep = (labels > 0) & ~drop
        grown_drop = cv2.dilate(drop.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        grown_keep = cv2.dilate(keep.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        out[grown_drop & ~grown_keep] = 0.0
        out[drop] = 0.0
    if clear_haze:
        kept = cv2.dilate(((out > threshold)).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        out[~kept] = 0.0
    return out
