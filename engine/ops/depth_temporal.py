"""Temporal stability of depth: motion-compensated smoothing and per-frame stabilisation.

The previous frame's *output* depth is carried onto the current frame by optical flow
(:func:`engine.ops.flow.warp` with the flow from the current frame to the previous one, checked
forward–backward). Camera moves change depth legitimately (a dolly-in makes everything nearer),
so the carried depth is first rescaled by the robust global ratio ``median(current / carried)``
over the trustworthy pixels; only what is left — per-pixel jitter the motion does not explain —
is smoothed.

* :func:`smooth_step` — ``out = d + w (s * carried - d)`` with ``w = strength`` where the flow is
  consistent and the two agree within ``tolerance`` (relative), fading to 0 at twice that;
  disocclusions, moving objects and real depth changes keep the current value.
* :func:`stabilise_step` — fit the current frame to the carried previous output
  (:func:`engine.ops.depth_align.fit`) and apply it: removes the frame-to-frame scale/shift
  flicker of single-image relative models (use it only for those: it cannot tell a dolly from a
  scale change).

Depth float32 (H, W) planar, 0 = no surface. Pure functions (numpy, OpenCV through flow.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ops.depth_align import Alignment, apply, fit
from engine.ops.flow import warp

__all__ = ["TemporalStep", "carry", "smooth_step", "stabilise_step"]


@dataclass(frozen=True)
class TemporalStep:
    """What one step did: the global ratio applied to the carried depth and the share of pixels blended."""

    ratio: float = 1.0
    blended: float = 0.0
    alignment: Alignment | None = None


def carry(prev: np.ndarray, flow_to_prev: np.ndarray, consistent: np.ndarray | None = None) -> np.ndarray:
    """The previous frame's depth on the current grid (0 where it cannot be carried)."""
    p = np.asarray(prev, np.float32)
    w = warp(p, flow_to_prev, interpolation="linear", border="constant", fill=0.0)
    # bilinear sampling across a depth edge mixes two surfaces: reject samples whose four
    # neighbours disagree strongly (the nearest-neighbour value differs from the blend)
    wn = warp(p, flow_to_prev, interpolation="nearest", border="constant", fill=0.0)
    bad = (wn <= 0) | (np.abs(w - wn) > 0.05 * np.maximum(wn, 1e-6))
    w = np.where(bad, 0.0, w).astype(np.float32)
    if consistent is not None:
        w = np.where(np.asarray(consistent, bool), w, 0.0).astype(np.float32)
    return w


def _ratio(depth: np.ndarray, carried: np.ndarray) -> tuple[float, np.ndarray]:
    ok = (depth > 0) & (carried > 0) & np.isfinite(depth) & np.isfinite(carried)
    if ok.sum() < 16:
        return 1.0, ok
    return float(np.median(depth[ok] / carried[ok])), ok


def smooth_step(depth: np.ndarray, prev_out: np.ndarray, flow_to_prev: np.ndarray,
                consistent: np.ndarray | None = None, *, strength: float = 0.5,
                tolerance: float = 0.05) -> tuple[np.ndarray, TemporalStep]:
    """One step of motion-compensated temporal smoothing (see the module doc)."""
    d = np.asarray(depth, np.float32)
    if strength <= 0:
        return d.copy(), TemporalStep()
    carried = carry(prev_out, flow_to_prev, consistent)
    s, ok = _ratio(d, carried)
    pred = s * carried
    rel = np.abs(pred - d) / np.maximum(d, 1e-12)
    gate = np.clip(2.0 - rel / max(tolerance, 1e-9), 0.0, 1.0)  # 1 up to tolerance, 0 from 2x tolerance
    w = np.where(ok, float(min(strength, 1.0)) * gate, 0.0).astype(np.float32)
    out = (d + w * (pred - d)).astype(np.float32)
    out[d <= 0] = 0.0
    return out, TemporalStep(s, float((w > 0).mean()))


def stabilise_step(depth: np.ndarray, prev_out: np.ndarray, flow_to_prev: np.ndarray,
                   consistent: np.ndarray | None = None, *, mode: str = "scale_shift",
                   space: str = "depth") -> tuple[np.ndarray, TemporalStep]:
    """Align the whole current frame to the carried previous output (scale, or scale and shift)."""
    d = np.asarray(depth, np.float32)
    carried = carry(prev_out, flow_to_prev, consistent)
    ok = (d > 0) & (carried > 0)
    if ok.sum() < 64:
        return d.copy(), TemporalStep()
    a = fit(d, carried, mask=ok, mode=mode, space=space)
    if not (np.isfinite(a.scale) and a.scale > 0):
        return d.copy(), TemporalStep()
    return apply(d, a), TemporalStep(a.scale, 0.0, a)
