"""Motion blur of a matte along optical flow: what a real shutter would have smeared.

Each pixel averages the matte sampled along its motion vector over the shutter interval:
``alpha'(p) = mean_s alpha(p + t_s * flow(p))`` with ``t_s`` spread over
``[-shutter/2, +shutter/2]`` (centred shutter; ``shutter`` 0.5 = 180 degrees), using as many
samples as the longest smear needs (about one per pixel, at most ``max_samples``). ``flow`` is the
per-frame motion in pixels (:mod:`engine.ops.flow`, the flow from this frame to the next is
the usual choice). Pure function: float32 (H, W) matte, float32 (H, W, 2) flow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["motion_blur"]


def motion_blur(matte: np.ndarray, flow: np.ndarray, shutter: float = 0.5, *, max_samples: int = 32) -> np.ndarray:
    """float32 (H, W): the matte smeared along ``flow`` over the ``shutter`` (see module doc)."""
    import cv2

    a = np.clip(np.asarray(matte, np.float32), 0.0, 1.0)
    f = np.asarray(flow, np.float32)
    if f.shape[:2] != a.shape:
        raise ValueError(f"matte {a.shape} and flow {f.shape[:2]} differ in size")
    sh = float(shutter)
    if sh <= 0:
        return a.copy()
    longest = float(np.sqrt((f ** 2).sum(axis=2)).max()) * sh
    n = int(min(max_samples, max(1, np.ceil(longest) + 1)))
    if n <= 1:
        return a.copy()
    h, w = a.shape
    gx = np.arange(w, dtype=np.float32)[None, :]
    gy = np.arange(h, dtype=np.float32)[:, None]
    acc = np.zeros_like(a)
    for i in range(n):
        t = (i / (n - 1) - 0.5) * sh
        acc += cv2.remap(a, gx + t * f[..., 0], gy + t * f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(acc / n, 0.0, 1.0).astype(np.float32)
