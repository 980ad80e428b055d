"""Clip black / clip white (and gamma) of a matte: the levels every keyer has.

``alpha' = ((alpha - black) / (white - black)) ** gamma``, clipped to [0, 1]: values at or below
``black`` become 0 (haze on the background goes), at or above ``white`` become 1 (holes in the
core close), the rest is stretched linearly between. Pure function on float32 (H, W).
"""

from __future__ import annotations

import numpy as np

__all__ = ["clip_levels"]


def clip_levels(matte: np.ndarray, black: float = 0.0, white: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    """float32 (H, W) in [0, 1] (see module doc). ``black < white`` is required."""
    lo, hi = float(black), float(white)
    if not lo < hi:
        raise ValueError(f"clip black ({lo}) must be below clip white ({hi})")
    a = (np.asarray(matte, np.float32) - lo) / (hi - lo)
    a = np.clip(a, 0.0, 1.0)
    if gamma != 1.0:
        a = np.power(a, 1.0 / float(gamma))
    return a.astype(np.float32)
