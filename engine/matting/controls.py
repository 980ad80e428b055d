"""Edge controls applied to a matter's alpha, in a fixed order, each a pure op of :mod:`engine.ops`.

Order (a compositor's usual chain): fill holes → remove islands → clip black/white → grow/shrink
(sub-pixel) → feather → blur → temporal smoothing → motion blur. Core and edge mattes are cut
from the final result (:func:`engine.ops.core_edge.core_edge`). Everything at its default leaves
the alpha untouched, so :meth:`EdgeControls.is_identity` lets callers skip the work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EdgeControls:
    fill_holes: int = 0  # fill enclosed holes up to this many pixels (0 off, -1 any size)
    min_island: int = 0  # remove specks smaller than this many pixels (0 off)
    black: float = 0.0  # clip black: alpha at or below becomes 0
    white: float = 1.0  # clip white: alpha at or above becomes 1
    grow: float = 0.0  # pixels, sub-pixel: > 0 dilate, < 0 erode
    feather: float = 0.0  # width in pixels of a re-made edge ramp (0 off)
    feather_placement: str = "centre"  # centre | inside | outside
    blur: float = 0.0  # Gaussian sigma in pixels (0 off)
    temporal: float = 0.0  # 0..1 blend towards the motion-compensated previous alpha where nothing moved
    motion_blur: float = 0.0  # shutter (0.5 = 180 degrees) to smear the matte along the flow (0 off)
    core_solid: float = 0.98  # core matte: alpha at least this ...
    core_inset: float = 1.0  # ... and this many pixels inside the solid region's edge

    def is_identity(self) -> bool:
        return (self.fill_holes == 0 and self.min_island == 0 and self.black == 0.0 and self.white == 1.0
                and self.grow == 0.0 and self.feather == 0.0 and self.blur == 0.0 and self.temporal == 0.0
                and self.motion_blur == 0.0)

    @property
    def needs_flow(self) -> bool:
        return self.temporal > 0 or self.motion_blur > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_controls(alpha: np.ndarray, controls: EdgeControls, *, prev_warped: np.ndarray | None = None,
                   static: np.ndarray | None = None, flow: np.ndarray | None = None) -> np.ndarray:
    """float32 (H, W): ``alpha`` through the controls.

    ``prev_warped`` / ``static``: the previous frame's (controlled) alpha carried onto this frame
    and the confidence that nothing moved (:func:`engine.ops.temporal.static_confidence`), for
    ``temporal``; ``flow``: this frame's motion in pixels per frame, for ``motion_blur``. A control
    whose input is missing is skipped.
    """
    from engine.ops.blur import blur
    from engine.ops.feather import feather
    from engine.ops.holes import fill_holes
    from engine.ops.islands import remove_islands
    from engine.ops.levels import clip_levels
    from engine.ops.morphology import grow
    from engine.ops.motion_blur import motion_blur
    from engine.ops.temporal import temporal_smooth

    c = controls
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    if c.fill_holes != 0:
        a = fill_holes(a, None if c.fill_holes < 0 else int(c.fill_holes))
    if c.min_island > 0:
        a = remove_islands(a, int(c.min_island))
    if c.black != 0.0 or c.white != 1.0:
        a = clip_levels(a, c.black, c.white)
    if c.grow != 0.0:
        a = grow(a, c.grow)
    if c.feather > 0:
        a = feather(a, c.feather, placement=c.feather_placement)
    if c.blur > 0:
        a = blur(a, c.blur)
    if c.temporal > 0 and prev_warped is not None and static is not None:
        a = temporal_smooth(a, prev_warped, static, c.temporal)
    if c.motion_blur > 0 and flow is not None:
        a = motion_blur(a, flow, c.motion_blur)
    return a.astype(np.float32, copy=False)
