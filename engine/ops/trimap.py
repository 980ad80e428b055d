"""Trimaps from masks: an unknown band whose width adapts to resolution, motion and confidence.

* :func:`band_width` — the base half-width of the unknown band in pixels for a plate size:
  tracked masks are typically off by a fixed *fraction* of the frame, so the band scales with the
  short side (3 px at 270p, ~10 px at 1080p, ~20 px at 4K).
* :func:`motion_width` — per-pixel extra half-width from optical flow: a 180° shutter smears an
  edge over half the motion per frame, so the band grows by ``shutter * |flow|`` where the object
  moves (taken as the largest motion nearby, since flow at an edge is unreliable).
* :func:`trimap_from_mask` — float32 trimap (0 background, 1 foreground, 0.5 unknown) from a
  mask and a scalar or per-pixel half-width, inner and outer widths separately.

Masks ``bool (H, W)``; flow ``float32 (H, W, 2)`` (see :mod:`engine.ops.flow`). Pure functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UNKNOWN", "band_width", "motion_width", "trimap_from_mask", "unknown_of"]

UNKNOWN = 0.5


def band_width(shape: tuple[int, int], *, fraction: float = 0.0095, minimum: float = 2.5,
               confidence: float = 1.0) -> float:
    """Base half-width (pixels) of the unknown band for a ``(H, W)`` plate.

    ``fraction`` of the short side, at least ``minimum``; a backend ``confidence`` below 1 widens
    it (up to twice at confidence 0), since a doubtful mask is further from the true edge.
    """
    short = float(min(shape[0], shape[1]))
    base = max(float(minimum), fraction * short)
    c = float(np.clip(confidence, 0.0, 1.0))
    return base * (1.0 + (1.0 - c))


def motion_width(flow: np.ndarray, *, shutter: float = 0.5, reach: int = 7, limit: float = 64.0) -> np.ndarray:
    """float32 (H, W): extra band half-width from motion, ``shutter * max |flow|`` within ``reach`` px."""
    import cv2

    f = np.asarray(flow, np.float32)
    mag = np.sqrt(f[..., 0] ** 2 + f[..., 1] ** 2)
    if reach > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        mag = cv2.dilate(mag, k)
    return np.minimum(shutter * mag, limit).astype(np.float32)


def trimap_from_mask(mask: np.ndarray, inner: float | np.ndarray, outer: float | np.ndarray | None = None,
                     *, sdf: np.ndarray | None = None) -> np.ndarray:
    """float32 (H, W) trimap: 1 where the mask is more than ``inner`` px inside its edge, 0 where
    more than ``outer`` px outside (default ``inner``), 0.5 between. Widths may be per-pixel arrays.
    ``sdf`` (from :func:`engine.ops.morphology.signed_distance`) saves recomputing it.
    """
    from engine.ops.morphology import signed_distance

    d = signed_distance(np.asarray(mask, bool)) if sdf is None else np.asarray(sdf, np.float32)
    inner_ = np.asarray(inner, np.float32)
    outer_ = inner_ if outer is None else np.asarray(outer, np.float32)
    tri = np.full(d.shape, UNKNOWN, np.float32)
    tri[d <= -inner_] = 1.0
    tri[d >= outer_] = 0.0
    return tri


def unknown_of(trimap: np.ndarray) -> np.ndarray:
    """bool (H, W): the trimap's unknown pixels (neither 0 nor 1)."""
    t = np.asarray(trimap, np.float32)
    return (t > 0.01) & (t < 0.99)


def expand_by_evidence(trimap: np.ndarray, image: np.ndarray, *, reach: float, bg_sigma: float,
                       fg_sigma: float, threshold: float = 0.1, min_confidence: float = 0.5,
                       separation: float = 0.05, residual: float = 0.03, thin: int = 0,
                       near_band: float = 0.0, grow: int = 1) -> np.ndarray:
    """Widen the unknown band where pixels beyond it carry some foreground.

    Fine detail beyond a mask (hair, fur, frayed edges) lies on what the trimap calls known
    background. Within ``reach`` px of the band, each known-background pixel's colour is
    projected on the line from its local background (robust normalised convolution over the known
    background, ``bg_sigma`` px: the detail itself is left out) to the nearest foreground colour
    (``fg_sigma`` px over the known foreground); a projection above ``threshold`` whose colour the
    mix of the two explains (sampling confidence above ``min_confidence``, see
    :func:`engine.ops.colour_sampling.sampled_alpha`) is foreground evidence — a bright light or a
    differently coloured object next to the subject is not. With ``thin`` > 0 only thin evidence
    (gone after an opening by a disc of that radius: strands, fur) reaches further than
    ``near_band`` px from the band — solid regions beyond are lights, props, other people. Evidence connected to the band becomes unknown (grown by ``grow`` px to take in
    its soft rim). Returns a new float32 trimap.
    """
    import cv2

    from engine.ops.colour_sampling import local_colour, robust_local_colour, sampled_alpha

    t = np.asarray(trimap, np.float32)
    img = np.asarray(image, np.float32)
    unknown = (t > 0.01) & (t < 0.99)
    bg = t <= 0.01
    fg = t >= 0.99
    if not unknown.any() or not bg.any() or not fg.any() or reach <= 0:
        return t.copy()
    d_band = cv2.distanceTransform((~unknown).astype(np.uint8), cv2.DIST_L2, 3)
    near = bg & (d_band <= reach)
    if not near.any():
        return t.copy()
    B, sb = robust_local_colour(img, bg.astype(np.float32), bg_sigma)
    F, sf = local_colour(img, fg.astype(np.float32), fg_sigma)
    a, conf = sampled_alpha(img, F, B, separation=separation, residual=residual)
    evidence = near & (a > threshold) & (conf > min_confidence) & (sb > 0.05) & (sf > 1e-3)
    if thin > 0 and evidence.any():
        # hair and fur are thin: evidence that survives an opening by a disc of radius ``thin`` is a
        # solid region (a light, another object), kept only close to the band
        from engine.ops.morphology import disc

        solid = cv2.morphologyEx(evidence.astype(np.uint8), cv2.MORPH_OPEN, disc(int(thin))).astype(bool)
        evidence &= ~solid | (d_band <= near_band)
    if grow > 0 and evidence.any():
        evidence = cv2.dilate(evidence.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(bool) & bg
    if not evidence.any():
        return t.copy()
    # keep evidence connected (8-neighbourhood) to the unknown band
    _n, labels = cv2.connectedComponents((evidence | unknown).astype(np.uint8), connectivity=8)
    touching = np.unique(labels[unknown])
    keep = np.isin(labels, touching[touching > 0]) & evidence
    out = t.copy()
    out[keep] = UNKNOWN
    return out
