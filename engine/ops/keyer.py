"""Colour-difference keying for green and blue screens, uneven screens included.

The colour-difference key of a pixel is how much its screen channel exceeds the other two:
``K = S - (balance * A + (1 - balance) * C)`` for screen channel ``S`` (G for green, B for blue)
and the other channels ``A``, ``C`` (R and B, or R and G). A pure screen pixel has the screen's
own key ``K_s``; foreground has ``K <= 0``; a mix ``alpha F + (1 - alpha) screen`` has
``K = alpha K_F + (1 - alpha) K_s``, so ``alpha = 1 - K / K_s`` where ``K_F <= 0`` is clipped away.

Real screens are lit unevenly (fall-off, wrinkles, shadows), so ``K_s`` is taken *per pixel*
from an estimate of the clean screen behind the subject (:func:`estimate_screen`): the colours
of pixels confidently on screen, spread under the subject by normalised convolution at two scales
(fine where screen pixels are near, coarse elsewhere) — the image-based keyer idea.

* :func:`screen_key` — the colour-difference signal of an image, float32 (H, W).
* :func:`estimate_screen` — a clean-screen colour map from the pixels known to be screen.
* :func:`colour_difference_key` — alpha from an image and a screen map, with black/white clip.
* :func:`screen_channel` — which channel a named screen uses.

Images are float32 (H, W, 3) RGB, linear light preferred (keying is a linear mix). Pure functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["screen_channel", "screen_key", "estimate_screen", "colour_difference_key", "detect_screen"]


def screen_channel(screen: str) -> tuple[int, int, int]:
    """``(screen, other1, other2)`` channel indices for ``"green"`` or ``"blue"``."""
    s = screen.lower()
    if s == "green":
        return 1, 0, 2
    if s == "blue":
        return 2, 0, 1
    raise ValueError(f"the screen is green or blue, not {screen!r}")


def screen_key(image: np.ndarray, screen: str = "green", balance: float = 0.5) -> np.ndarray:
    """float32 (H, W): ``S - (balance * A + (1 - balance) * C)`` (see the module doc)."""
    img = np.asarray(image, np.float32)
    s, a, c = screen_channel(screen)
    b = float(np.clip(balance, 0.0, 1.0))
    return (img[..., s] - (b * img[..., a] + (1 - b) * img[..., c])).astype(np.float32)


def detect_screen(image: np.ndarray, screen: str = "green", *, min_key: float = 0.08, min_fraction: float = 0.25) -> bool:
    """True when at least ``min_fraction`` of the pixels have a key above ``min_key`` of the
    brightest screen pixels (a quick test that a plate is shot on ``screen``)."""
    k = screen_key(image, screen)
    top = float(np.percentile(k, 95))
    if top <= 0.02:
        return False
    return float((k > min_key * top / 0.5).mean()) >= min_fraction


def estimate_screen(image: np.ndarray, on_screen: np.ndarray, *, sigma_fine: float, sigma_coarse: float,
                    min_support: float = 0.2) -> np.ndarray:
    """float32 (H, W, 3): the clean screen colour at every pixel.

    ``on_screen`` (bool or weights (H, W)) marks pixels known to show bare screen. Their colours
    are spread by normalised Gaussian convolution at ``sigma_fine`` px (follows the screen's
    unevenness) and ``sigma_coarse`` px (reaches under a large subject); the fine estimate is used
    where its support is at least ``min_support``, blended into the coarse one below that.
    Large scales are computed on a reduced image (the result is smooth at that scale anyway).
    """
    img = np.asarray(image, np.float32)
    wt = np.asarray(on_screen, np.float32)
    fine, sf = _spread(img, wt, sigma_fine)
    coarse, sc = _spread(img, wt, sigma_coarse)
    t = np.clip(sf / max(1e-6, min_support), 0.0, 1.0)[:, :, None]
    out = t * fine + (1 - t) * coarse
    empty = sc <= 1e-6
    if empty.any():  # no screen within reach even at the coarse scale: the mean screen colour
        sel = wt > 0.5
        out[empty] = img[sel].mean(axis=0) if sel.any() else 0.0
    return out.astype(np.float32)


def _spread(img: np.ndarray, wt: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution at ``sigma`` px, on a reduced copy when sigma is large."""
    import cv2

    from engine.ops.colour_sampling import local_colour

    h, w = wt.shape
    f = max(1, int(sigma // 4))
    if f == 1:
        return local_colour(img, wt, sigma)
    sw, sh = max(1, w // f), max(1, h // f)
    small_w = cv2.resize(wt, (sw, sh), interpolation=cv2.INTER_AREA)
    small_i = cv2.resize(img * wt[:, :, None], (sw, sh), interpolation=cv2.INTER_AREA)
    small_i = small_i / np.maximum(small_w, 1e-6)[:, :, None]
    col, sup = local_colour(small_i, small_w, sigma / f)
    col = cv2.resize(col, (w, h), interpolation=cv2.INTER_LINEAR)
    sup = cv2.resize(sup, (w, h), interpolation=cv2.INTER_LINEAR)
    return col.astype(np.float32), sup.astype(np.float32)


def colour_difference_key(image: np.ndarray, screen_map: np.ndarray, screen: str = "green", *, balance: float = 0.5,
                          black: float = 0.0, white: float = 1.0, fg_key: np.ndarray | float | None = None) -> np.ndarray:
    """Alpha float32 (H, W) in [0, 1] from the per-pixel screen key ``K_s`` of ``screen_map`` (an
    (H, W, 3) clean-screen estimate, or one RGB colour), then the levels ``black`` (alpha at or
    below becomes 0) and ``white`` (at or above becomes 1).

    Without ``fg_key``: ``1 - K / K_s`` (the classic difference key, exact for a foreground
    without screen excess). With ``fg_key`` (the foreground's own key ``K_F``, scalar or per pixel,
    clipped to <= 0): ``(K_s - K) / (K_s - K_F)``, exact for any foreground colour, since
    ``K = alpha K_F + (1 - alpha) K_s``.
    """
    k = screen_key(image, screen, balance)
    sm = np.asarray(screen_map, np.float32)
    if sm.ndim == 1:
        sm = np.broadcast_to(sm, np.asarray(image).shape).astype(np.float32)
    ks = screen_key(sm, screen, balance)
    kf = 0.0 if fg_key is None else np.minimum(np.asarray(fg_key, np.float32), 0.0)
    span = ks - kf
    a = (ks - k) / np.maximum(span, 1e-4)
    a = np.where(ks > 1e-4, a, 1.0)
    lo, hi = float(black), float(white)
    a = (a - lo) / max(1e-6, hi - lo)
    return np.clip(a, 0.0, 1.0).astype(np.float32)
