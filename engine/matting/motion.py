"""Optical flow on a region of interest, shared by the matters (one flow pair per frame).

:func:`roi_flow` computes DIS flow from the current frame to the previous one on a region
(reduced scale when the region is large) and its forward–backward consistency;
:func:`temporal_prior` carries a previous alpha onto the current frame with the confidence that
nothing changed there (:mod:`engine.ops.temporal`), fading out with speed.
"""

from __future__ import annotations

import numpy as np

Roi = tuple[int, int, int, int]  # y0, y1, x0, x1


def roi_flow(prev_grey: np.ndarray, grey: np.ndarray, roi: Roi, *, preset: str = "medium",
             max_pixels: int = 600_000) -> tuple[np.ndarray, np.ndarray]:
    """``(flow current→previous float32 (h, w, 2), consistent bool (h, w))`` on ``roi``."""
    from engine.ops.flow import dis_flow, fb_consistency

    y0, y1, x0, x1 = roi
    a = grey[y0:y1, x0:x1]
    b = prev_grey[y0:y1, x0:x1]
    n = a.shape[0] * a.shape[1]
    scale = 1.0 if n <= max_pixels else float(np.sqrt(max_pixels / n))
    f_cp = dis_flow(a, b, preset=preset, scale=scale)
    f_pc = dis_flow(b, a, preset=preset, scale=scale)
    ok, _err = fb_consistency(f_cp, f_pc)
    return f_cp, ok


def crop(a: np.ndarray, outer: Roi, inner: Roi) -> np.ndarray:
    """The part of ``a`` (which covers ``outer``) that covers ``inner`` (inside ``outer``)."""
    oy0, _oy1, ox0, _ox1 = outer
    y0, y1, x0, x1 = inner
    return a[y0 - oy0:y1 - oy0, x0 - ox0:x1 - ox0]


def temporal_prior(prev_alpha: np.ndarray, prev_image: np.ndarray, image: np.ndarray, flow: np.ndarray,
                   consistent: np.ndarray, *, tolerance: float, speed: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(warped previous alpha, confidence, static)`` on the current grid, float32 (h, w) each.

    ``prev_alpha`` / ``prev_image`` and ``image`` are crops of the same region; images in the
    working space. ``static``: :func:`engine.ops.temporal.static_confidence` (nothing changed
    after motion compensation); ``confidence``: that times ``exp(-(|flow| / speed)^2)``
    (sub-pixel warping errors grow with motion).
    """
    from engine.ops.flow import warp
    from engine.ops.temporal import static_confidence

    at = warp(prev_alpha, flow, border="constant")
    prev_w = warp(prev_image, flow, border="replicate")
    sc = static_confidence(image, prev_w, consistent, tolerance=tolerance)
    mag = np.sqrt((flow ** 2).sum(axis=2))
    conf = sc * np.exp(-(mag / max(1e-3, speed)) ** 2)
    return at.astype(np.float32), conf.astype(np.float32), sc.astype(np.float32)
