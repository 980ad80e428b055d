"""Local foreground/background colours and the alpha they imply (a sampling estimate).

* :func:`local_colour` — normalised convolution: the Gaussian-weighted mean colour of the pixels
  selected by ``weight`` around every pixel (the known foreground or background spread into the
  unknown band), and how much support it had.
* :func:`robust_local_colour` — the same with outliers (thin foreign detail) left out.
* :func:`sampled_alpha` — project each pixel's colour on the line between its local background
  ``B`` and foreground ``F``: ``alpha = (I - B).(F - B) / |F - B|^2``, with a confidence that is
  high when ``F`` and ``B`` are well separated and ``alpha F + (1 - alpha) B`` explains the
  pixel (Wang & Cohen's robust matting uses the same two cues).

Images float ``(H, W, 3)``; weights/masks ``(H, W)``; results float32. Pure functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["local_colour", "robust_local_colour", "sampled_alpha"]


def local_colour(image: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(colour float32 (H, W, 3), support float32 (H, W))`` by normalised Gaussian convolution.

    ``support`` is the blurred weight (≈ the fraction of selected pixels nearby); colour is the
    weighted mean where support > 0 and 0 elsewhere. Scales of 6 px and more are computed on a
    reduced copy (area-averaged, then bilinear back).
    """
    import cv2

    img = np.asarray(image, np.float32)
    wt = np.asarray(weight, np.float32)
    s = max(0.5, float(sigma))
    h, w = wt.shape
    f = int(s // 3)  # large scales on a reduced copy: the result is smooth at that scale anyway
    if f >= 2 and min(h, w) >= 8 * f:
        sw, sh = max(1, w // f), max(1, h // f)
        small_w = cv2.resize(wt, (sw, sh), interpolation=cv2.INTER_AREA)
        small_n = cv2.resize(img * wt[:, :, None], (sw, sh), interpolation=cv2.INTER_AREA)
        ss = s / f
        k = int(2 * np.ceil(3 * ss) + 1)
        num = cv2.GaussianBlur(small_n, (k, k), ss, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(small_w, (k, k), ss, borderType=cv2.BORDER_REFLECT)
        num = cv2.resize(num, (w, h), interpolation=cv2.INTER_LINEAR)
        den = cv2.resize(den, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        k = int(2 * np.ceil(3 * s) + 1)
        num = cv2.GaussianBlur(img * wt[:, :, None], (k, k), s, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(wt, (k, k), s, borderType=cv2.BORDER_REFLECT)
    colour = np.asarray(num, np.float32)  # a fresh array from the blur/resize: divided in place
    colour /= np.maximum(den, 1e-6)[:, :, None]
    colour[den <= 1e-6] = 0.0
    return colour, den.astype(np.float32, copy=False)


def robust_local_colour(image: np.ndarray, weight: np.ndarray, sigma: float, *, k: float = 2.0,
                        floor: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`local_colour`, but pixels further than ``k`` local spreads (at least ``floor``)
    from the first estimate are left out of a second one: thin foreign detail (hair over the
    background) does not drag the local background colour towards itself."""
    img = np.asarray(image, np.float32)
    wt = np.asarray(weight, np.float32)
    # in place where it can be: on a 4K band's region each (H, W, 3) temporary is tens of MB
    mean, _ = local_colour(img, wt, sigma)
    sq, _ = local_colour(np.square(img), wt, sigma)
    sq -= mean * mean
    np.clip(sq, 0.0, None, out=sq)
    spread = np.sqrt(sq.sum(axis=2))
    del sq
    diff = img - mean
    del mean
    np.square(diff, out=diff)
    dev = np.sqrt(diff.sum(axis=2))
    del diff
    inlier = wt * (dev <= k * np.maximum(spread, floor))
    return local_colour(img, inlier, sigma)


def sampled_alpha(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, *, separation: float = 0.05,
                  residual: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, confidence)``, float32 (H, W) in [0, 1], from local ``fg``/``bg`` colours.

    ``separation``: the colour distance |F - B| at which confidence reaches one half;
    ``residual``: the reconstruction error at which it falls to exp(-1) of that.
    """
    img = np.asarray(image, np.float32)
    d = np.asarray(fg, np.float32) - np.asarray(bg, np.float32)
    e = img - np.asarray(bg, np.float32)
    dd = np.einsum("ijk,ijk->ij", d, d)
    a = np.clip(np.einsum("ijk,ijk->ij", e, d) / np.maximum(dd, 1e-8), 0.0, 1.0)
    e -= a[:, :, None] * d  # the residual I - (a F + (1 - a) B), in place
    del d
    err2 = np.einsum("ijk,ijk->ij", e, e)
    conf = dd / (dd + separation * separation) * np.exp(-err2 / (residual * residual))
    return a.astype(np.float32), conf.astype(np.float32)
