"""Signed distance and sub-pixel grow/shrink (dilate/erode) of masks and soft mattes.

* :func:`signed_distance` — Euclidean distance to the edge of a mask, negative inside, positive
  outside, in pixels; the edge lies halfway between a pixel inside and its neighbour outside.
  A soft matte's 0.5 iso-line is located to sub-pixel accuracy from its partial pixels.
* :func:`grow` — move an edge outwards (``amount > 0``, dilate) or inwards (``< 0``, erode) by a
  fractional number of pixels. A binary mask becomes an anti-aliased matte whose 0.5 iso-line sits
  ``amount`` pixels from the original edge; a soft matte keeps its edge profile (hair stays hair):
  grey-scale morphology with disc kernels of radius ``floor(|amount|)`` and ``ceil(|amount|)``,
  blended by the fractional part, so the result moves continuously with ``amount``.

Masks are ``bool (H, W)``; mattes ``float32 (H, W)`` in [0, 1]. Pure functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["signed_distance", "grow", "disc"]


def disc(radius: int) -> np.ndarray:
    """A filled disc structuring element of integer ``radius`` (uint8, (2r+1, 2r+1))."""
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return ((xx * xx + yy * yy) <= r * r + r).astype(np.uint8)  # r*r + r: rounder small discs


def signed_distance(matte: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """float32 (H, W): distance in pixels to the matte's edge, negative inside, positive outside.

    For a ``bool`` mask the edge is halfway between pixel centres. For a soft matte the edge is
    its ``threshold`` iso-line: pixels next to it are moved by their partial coverage, so a
    matte shifted by a fraction of a pixel gives a distance shifted by the same fraction.
    A matte with nothing inside (or nothing outside) gives +inf-like (or -inf-like) large values.
    """
    import cv2

    m = np.asarray(matte)
    if m.dtype == bool:
        inside = m
        soft = None
    else:
        soft = np.clip(np.asarray(m, np.float32), 0.0, 1.0)
        inside = soft >= threshold
    h, w = inside.shape
    big = float(h + w)
    if not inside.any():
        return np.full((h, w), big, np.float32)
    if inside.all():
        return np.full((h, w), -big, np.float32)
    u8 = inside.astype(np.uint8)
    d_out = cv2.distanceTransform(1 - u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # outside: to nearest inside
    d_in = cv2.distanceTransform(u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # inside: to nearest outside
    sdf = np.where(inside, -(d_in - 0.5), d_out - 0.5).astype(np.float32)
    if soft is not None:
        # sub-pixel: on the one-pixel rim, coverage says where the edge crosses the pixel
        rim = np.abs(sdf) <= 0.5
        sdf[rim] = threshold - soft[rim]
    return sdf


def grow(matte: np.ndarray, amount: float) -> np.ndarray:
    """Dilate (``amount > 0``) or erode (``< 0``) by ``|amount|`` pixels, sub-pixel; float32 (H, W)."""
    import cv2

    a = float(amount)
    m = np.asarray(matte)
    if m.dtype == bool:
        sdf = signed_distance(m)
        return np.clip(0.5 - (sdf - a), 0.0, 1.0).astype(np.float32)
    soft = np.clip(np.asarray(m, np.float32), 0.0, 1.0)
    if a == 0:
        return soft.copy()
    r = abs(a)
    r0 = int(np.floor(r))
    frac = r - r0
    op = cv2.dilate if a > 0 else cv2.erode

    def morph(radius: int) -> np.ndarray:
        if radius == 0:
            return soft
        return op(soft, disc(radius), borderType=cv2.BORDER_REPLICATE)

    lo = morph(r0)
    if frac == 0:
        return lo.astype(np.float32, copy=True)
    hi = morph(r0 + 1)
    return ((1 - frac) * lo + frac * hi).astype(np.float32)
