"""Spill suppression: remove the screen colour bounced onto the subject.

The screen channel is limited by the other two: ``S' = min(S, limit)`` with ``limit`` the
average of the other channels (``average``, the gentle default), their maximum (``max``,
keeps yellows/cyans) or their minimum (``min``, strongest). ``amount`` blends between the plate
(0) and the fully despilled result (1). The removed spill can be put back as grey
(``restore_luma``) so despilled edges keep their brightness.

* :func:`despill` — the despilled image, float32 (H, W, 3).
* :func:`spill_map` — how much spill each pixel had, float32 (H, W).

Images float32 (H, W, 3) RGB. Pure functions.
"""

from __future__ import annotations

import numpy as np

from engine.ops.keyer import screen_channel

__all__ = ["despill", "spill_map"]

_LIMITS = ("average", "max", "min")


def _limit(img: np.ndarray, screen: str, method: str) -> np.ndarray:
    if method not in _LIMITS:
        raise ValueError(f"despill method is one of {_LIMITS}, not {method!r}")
    _s, a, c = screen_channel(screen)
    if method == "average":
        return 0.5 * (img[..., a] + img[..., c])
    if method == "max":
        return np.maximum(img[..., a], img[..., c])
    return np.minimum(img[..., a], img[..., c])


def spill_map(image: np.ndarray, screen: str = "green", method: str = "average") -> np.ndarray:
    """float32 (H, W) >= 0: the screen channel's excess over the limit."""
    img = np.asarray(image, np.float32)
    s, _a, _c = screen_channel(screen)
    return np.clip(img[..., s] - _limit(img, screen, method), 0.0, None).astype(np.float32)


def despill(image: np.ndarray, screen: str = "green", method: str = "average", amount: float = 1.0,
            restore_luma: bool = False) -> np.ndarray:
    """float32 (H, W, 3): the image with its screen-coloured spill removed (see module doc)."""
    img = np.asarray(image, np.float32)
    s, _a, _c = screen_channel(screen)
    spill = spill_map(img, screen, method) * float(np.clip(amount, 0.0, 1.0))
    out = img.copy()
    out[..., s] -= spill
    if restore_luma:
        # Rec.709 luma of the removed colour, given back equally to all channels
        weights = np.array([0.2126, 0.7152, 0.0722], np.float32)
        out += (spill * weights[s])[..., None]
    return out
