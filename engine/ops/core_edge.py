"""Core and edge mattes: the solid interior and the soft band, as separate outputs.

``core`` is 1 where the matte is solid (``alpha >= solid``) and at least ``inset`` px inside its
edge, 0 elsewhere, anti-aliased at its own boundary; ``edge`` is what remains,
``alpha - core`` (never negative). So ``core + edge == alpha`` everywhere: compositors grade or
blur the edge without touching the core and add them back losslessly. Pure function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["core_edge"]


def core_edge(matte: np.ndarray, *, solid: float = 0.98, inset: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(core, edge)``, float32 (H, W) each, with ``core + edge == matte`` (see module doc)."""
    from engine.ops.morphology import signed_distance

    a = np.clip(np.asarray(matte, np.float32), 0.0, 1.0)
    solid_mask = a >= float(solid)
    if not solid_mask.any():
        z = np.zeros_like(a)
        return z, a.copy()
    sdf = signed_distance(solid_mask)
    core = np.clip(0.5 - (sdf + float(inset)), 0.0, 1.0).astype(np.float32)
    core = np.minimum(core, a)
    edge = np.clip(a - core, 0.0, 1.0).astype(np.float32)
    return core, edge
