"""Blur a matte: a Gaussian of ``sigma`` px, optionally keeping the solid core solid.

``keep_core`` leaves pixels that were fully opaque at 1, so the blur only softens the edge
outwards and the partial pixels, without greying the inside of the object along its edge.
Mattes float32 (H, W) in [0, 1]. Pure function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blur"]


def blur(matte: np.ndarray, sigma: float, *, keep_core: bool = False) -> np.ndarray:
    """float32 (H, W): the Gaussian-blurred matte (see module doc)."""
    import cv2

    a = np.clip(np.asarray(matte, np.float32), 0.0, 1.0)
    s = float(sigma)
    if s <= 0:
        return a.copy()
    k = int(2 * np.ceil(3 * s) + 1)
    b = cv2.GaussianBlur(a, (k, k), s, borderType=cv2.BORDER_REPLICATE)
    if keep_core:
        b = np.where(a >= 1.0, 1.0, b)
    return np.clip(b, 0.0, 1.0).astype(np.float32)
