"""Feather: a soft edge of a chosen width, placed on, inside or outside the matte's edge.

The matte's 0.5 iso-line is located to sub-pixel accuracy (:func:`engine.ops.morphology.signed_distance`)
and alpha is re-made as a ramp across it: ``width`` px from 1 to 0, centred on the edge
(``placement="centre"``), ending at it (``"inside"``, nothing grows) or starting at it
(``"outside"``, nothing shrinks). ``falloff`` is ``"linear"`` or ``"smooth"`` (smoothstep).
Only the edge region (``|distance| < width``) is changed; partial pixels of the original (hair,
strands) are kept where they are denser than the ramp (``keep_detail``: the maximum of the
two there), so feathering never erases fine detail.

Mattes float32 (H, W) in [0, 1] (bool masks accepted). Pure function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["feather"]


def feather(matte: np.ndarray, width: float, *, placement: str = "centre", falloff: str = "linear",
            keep_detail: bool = True) -> np.ndarray:
    """float32 (H, W): ``matte`` with its edge re-made as a ``width``-pixel ramp (see module doc)."""
    from engine.ops.morphology import signed_distance

    m = np.asarray(matte)
    soft = m.astype(np.float32) if m.dtype == bool else np.clip(np.asarray(m, np.float32), 0.0, 1.0)
    wdt = float(width)
    if wdt <= 0:
        return soft.copy()
    if placement not in ("centre", "inside", "outside"):
        raise ValueError(f"placement is centre, inside or outside, not {placement!r}")
    if falloff not in ("linear", "smooth"):
        raise ValueError(f"falloff is linear or smooth, not {falloff!r}")
    sdf = signed_distance(m if m.dtype == bool else soft)
    shift = {"centre": 0.0, "inside": -wdt / 2, "outside": wdt / 2}[placement]
    t = np.clip(0.5 - (sdf - shift) / wdt, 0.0, 1.0)
    if falloff == "smooth":
        t = t * t * (3 - 2 * t)
    out = t.astype(np.float32)
    if keep_detail:
        partial = (soft > 0.0) & (soft < 1.0)
        out = np.where(partial, np.maximum(out, soft), out)
    return out.astype(np.float32)
