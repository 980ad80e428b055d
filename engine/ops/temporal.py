"""Temporal stability of mattes: what motion explains, what it does not, and smoothing.

The previous frame's matte is carried onto the current frame by optical flow
(:func:`engine.ops.flow.warp` with the flow *from the current frame to the previous one*).
Where the flow is trustworthy (forward–backward consistent) and the warped previous *image*
matches the current one, nothing in the picture changed there, so the matte should not change
either: such pixels are "static" for the matte, whatever the camera or object did.

* :func:`static_confidence` — float weight in [0, 1] per pixel: flow consistent and the
  motion-compensated image residual small.
* :func:`temporal_smooth` — blend a matte towards its motion-compensated predecessor by
  ``strength * confidence`` (a pure edge control; the matter itself uses the same prior inside
  its solver).
* :func:`unexplained_change` / :func:`flicker_terms` — the per-pixel change of the matte that the
  (motion-compensated) picture does not explain, on the soft edge: the flicker score of QC and
  of ``roto eval matting``; :func:`flicker_percent` sums it over a clip.

Images float (H, W, 3) in [0, 1] (working space) or uint8; mattes float32 (H, W). Pure functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_residual", "static_confidence", "temporal_smooth", "unexplained_change", "flicker_terms",
           "flicker_percent"]


def _float(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    return np.asarray(a, np.float32)


def image_residual(image: np.ndarray, prev_warped: np.ndarray, *, blur: int = 3) -> np.ndarray:
    """float32 (H, W): mean absolute colour difference between a frame and its warped predecessor,
    box-filtered over ``blur`` px (sensor noise averages out), then the largest value within
    ``blur`` px (a thin strand that moved is not averaged away by its unchanged neighbours)."""
    import cv2

    d = np.abs(_float(image) - _float(prev_warped))
    r = d.mean(axis=2) if d.ndim == 3 else d
    if blur > 1:
        r = cv2.blur(r, (blur, blur))
        r = cv2.dilate(r, np.ones((blur, blur), np.uint8))
    return r.astype(np.float32)


def static_confidence(image: np.ndarray, prev_warped: np.ndarray, consistent: np.ndarray | None = None, *,
                      tolerance: float = 0.02) -> np.ndarray:
    """float32 (H, W) in [0, 1]: how sure we are that nothing changed at each pixel.

    ``exp(-(residual / tolerance)^2)`` where the flow is consistent (``consistent`` bool, None =
    everywhere), 0 elsewhere. ``tolerance`` is in working-space units (0.02 ≈ 5 code values).
    """
    r = image_residual(image, prev_warped)
    c = np.exp(-(r / max(1e-6, tolerance)) ** 2)
    if consistent is not None:
        c = np.where(np.asarray(consistent, bool), c, 0.0)
    return c.astype(np.float32)


def temporal_smooth(alpha: np.ndarray, prev_warped: np.ndarray, confidence: np.ndarray | float, strength: float = 0.5) -> np.ndarray:
    """``alpha + strength * confidence * (prev_warped - alpha)``, float32 (H, W) in [0, 1]."""
    a = np.asarray(alpha, np.float32)
    k = float(np.clip(strength, 0.0, 1.0)) * np.clip(np.asarray(confidence, np.float32), 0.0, 1.0)
    return np.clip(a + k * (np.asarray(prev_warped, np.float32) - a), 0.0, 1.0).astype(np.float32)


def unexplained_change(alpha: np.ndarray, prev_warped: np.ndarray, image: np.ndarray, prev_image_warped: np.ndarray,
                       consistent: np.ndarray | None = None, *, min_contrast: float = 0.05,
                       soft: tuple[float, float] = (0.02, 0.98)) -> tuple[np.ndarray, np.ndarray]:
    """``(change, region)``: the matte's frame-to-frame change that the picture does not explain.

    With ``I = alpha F + (1 - alpha) B`` a change of alpha by ``d`` changes the picture by about
    ``d * |F - B|``; so the image change ``|dI|`` (motion-compensated, max over channels) explains
    an alpha change of up to ``|dI| / |F - B|``, with ``|F - B|`` bounded below by the local
    contrast (colour range over 5x5 px, at least ``min_contrast``). ``change = max(0, |dalpha| -
    explained)`` — sub-pixel misregistration, motion and real transparency changes cancel out;
    shimmer on a steady picture does not. ``region``: the soft edge of either matte (values
    strictly inside ``soft``) where the flow is consistent (``consistent``; None = everywhere).
    Images in the working space (float [0, 1] or uint8); mattes float32 (H, W).
    """
    import cv2

    a = np.asarray(alpha, np.float32)
    p = np.asarray(prev_warped, np.float32)
    img = _float(image)
    d_img = np.abs(img - _float(prev_image_warped))
    d_img = d_img.max(axis=2) if d_img.ndim == 3 else d_img
    k = np.ones((5, 5), np.uint8)
    rng = cv2.dilate(img, k) - cv2.erode(img, k)
    contrast = rng.max(axis=2) if rng.ndim == 3 else rng
    explained = d_img / np.maximum(contrast, min_contrast)
    change = np.maximum(0.0, np.abs(a - p) - explained).astype(np.float32)
    lo, hi = soft
    region = ((a > lo) & (a < hi)) | ((p > lo) & (p < hi))
    if consistent is not None:
        region &= np.asarray(consistent, bool)
    return change, region


def flicker_terms(alpha: np.ndarray, prev_alpha: np.ndarray, image: np.ndarray, prev_image: np.ndarray,
                  flow_to_prev: np.ndarray, consistent: np.ndarray | None = None) -> tuple[float, int]:
    """One frame's flicker: ``(sum of unexplained change on the region, region pixels)``.

    ``flow_to_prev``: flow from this frame to the previous one (:func:`engine.ops.flow.dis_flow`);
    the previous matte and image are warped onto this frame with it.
    """
    from engine.ops.flow import warp

    pa = warp(np.asarray(prev_alpha, np.float32), flow_to_prev, border="constant")
    pi = warp(_float(prev_image), flow_to_prev, border="replicate")
    change, region = unexplained_change(alpha, pa, image, pi, consistent)
    return float(change[region].sum()), int(region.sum())


def flicker_percent(changes: list[tuple[float, int]]) -> float:
    """Flicker of a clip in percent from per-frame ``(sum of |change| on region, region pixels)``."""
    total = sum(c for c, _ in changes)
    count = sum(n for _, n in changes)
    return 0.0 if count == 0 else 100.0 * total / count
