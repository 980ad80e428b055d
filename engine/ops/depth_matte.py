"""Depth mattes: soft masks for a depth range, foreground/midground/background splits, and
combining them with object mattes.

Depth here is any convention where **larger means farther** (planar ``z`` or camera distance,
:mod:`engine.ops.depth_convention`); pass Nuke 1/Z through ``to_z`` first. Pixels without a
surface (``<= 0`` or not finite) get 0 in every matte.

* :func:`range_matte` — 1 inside ``[near, far]``, falling to 0 over ``falloff`` (depth units;
  one value or ``(near_falloff, far_falloff)``) outside it, with a linear or smoothstep ramp;
  the ramps sit *outside* the range so the range itself is always solid.
* :func:`split_planes` — three mattes (foreground, midground, background) that sum to exactly 1
  on every pixel with a surface: two soft cuts at ``near_cut`` and ``far_cut``, each a ramp
  ``falloff`` wide centred on the cut. Cuts default to the 33rd/66th percentile of the depth.
* :func:`combine` — an object matte with a depth matte: ``intersect`` (object ∩ range, the
  product), ``subtract`` (object minus range), ``union`` (max).

float32 (H, W) mattes in [0, 1]. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["range_matte", "SplitPlanes", "split_planes", "combine", "auto_cuts"]


def _ramp(x: np.ndarray, shape: str) -> np.ndarray:
    """0..1 ramp of ``x`` (already normalised to [0, 1]): linear or smoothstep."""
    x = np.clip(x, 0.0, 1.0)
    if shape == "smooth":
        return x * x * (3.0 - 2.0 * x)
    if shape != "linear":
        raise ValueError(f"unknown ramp {shape!r}: use linear or smooth")
    return x


def _valid(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def range_matte(depth: np.ndarray, near: float, far: float, falloff: float | tuple[float, float] = 0.0, *,
                ramp: str = "smooth", invert: bool = False) -> np.ndarray:
    """Soft matte of the pixels whose depth is within ``[near, far]`` (see the module doc)."""
    if far < near:
        raise ValueError(f"the far limit ({far}) is nearer than the near limit ({near})")
    fn, ff = (falloff, falloff) if np.isscalar(falloff) else falloff  # type: ignore[misc]
    if fn < 0 or ff < 0:
        raise ValueError("falloff cannot be negative")
    d = np.asarray(depth, np.float64)
    ok = _valid(d)
    dd = np.where(ok, d, 0.0)
    m = np.ones(d.shape, np.float64)
    below = dd < near
    above = dd > far
    if fn > 0:
        m = np.where(below, _ramp(1.0 - (near - dd) / fn, ramp), m)
    else:
        m = np.where(below, 0.0, m)
    if ff > 0:
        m = np.where(above, _ramp(1.0 - (dd - far) / ff, ramp), m)
    else:
        m = np.where(above, 0.0, m)
    if invert:
        m = 1.0 - m
    return np.where(ok, m, 0.0).astype(np.float32)


@dataclass
class SplitPlanes:
    """Foreground, midground and background mattes (sum 1 where there is a surface) and the cuts used."""

    foreground: np.ndarray
    midground: np.ndarray
    background: np.ndarray
    near_cut: float
    far_cut: float
    falloff: float

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"fg": self.foreground, "mg": self.midground, "bg": self.background}


def auto_cuts(depth: np.ndarray, percentiles: tuple[float, float] = (33.3, 66.7),
              mask: np.ndarray | None = None) -> tuple[float, float]:
    """Two cuts at the given percentiles of the valid depth (in ``mask`` when given)."""
    d = np.asarray(depth, np.float64)
    ok = _valid(d)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    if not ok.any():
        raise ValueError("the depth map has no valid pixels to place the cuts")
    lo, hi = np.percentile(d[ok], percentiles)
    return float(lo), float(hi)


def split_planes(depth: np.ndarray, near_cut: float | None = None, far_cut: float | None = None,
                 falloff: float | None = None, *, ramp: str = "smooth") -> SplitPlanes:
    """Foreground / midground / background in one call (see the module doc).

    ``falloff`` defaults to 10 % of the distance between the cuts; it is capped at the distance
    between the cuts so the two ramps never overlap (the midground then peaks at exactly 1).
    """
    d = np.asarray(depth, np.float64)
    if near_cut is None or far_cut is None:
        a, b = auto_cuts(d)
        near_cut = a if near_cut is None else near_cut
        far_cut = b if far_cut is None else far_cut
    if far_cut < near_cut:
        raise ValueError(f"the far cut ({far_cut}) is nearer than the near cut ({near_cut})")
    gap = far_cut - near_cut
    fo = 0.1 * gap if falloff is None else float(falloff)
    if fo < 0:
        raise ValueError("falloff cannot be negative")
    fo = min(fo, gap) if gap > 0 else 0.0
    ok = _valid(d)
    dd = np.where(ok, d, 0.0)

    def step(cut: float) -> np.ndarray:  # 0 before the cut, 1 after it, ramp of width fo centred on it
        if fo <= 0:
            return (dd > cut).astype(np.float64)
        return _ramp((dd - (cut - fo / 2.0)) / fo, ramp)

    past_near = step(near_cut)
    past_far = step(far_cut)
    fg = 1.0 - past_near
    bg = past_far
    mg = past_near - past_far
    z = np.float32(0.0)
    return SplitPlanes(np.where(ok, fg, z).astype(np.float32), np.where(ok, np.clip(mg, 0, 1), z).astype(np.float32),
                       np.where(ok, bg, z).astype(np.float32), float(near_cut), float(far_cut), float(fo))


def combine(object_matte: np.ndarray, depth_matte: np.ndarray, op: str = "intersect") -> np.ndarray:
    """An object matte (bool or float in [0, 1]) with a depth matte: ``intersect``, ``subtract`` or ``union``."""
    a = np.clip(np.asarray(object_matte, np.float32), 0.0, 1.0)
    b = np.clip(np.asarray(depth_matte, np.float32), 0.0, 1.0)
    if a.shape != b.shape:
        raise ValueError(f"the mattes differ in size: {a.shape} and {b.shape}")
    if op == "intersect":
        return a * b
    if op == "subtract":
        return a * (1.0 - b)
    if op == "union":
        return np.maximum(a, b)
    raise ValueError(f"unknown matte operation {op!r}: intersect, subtract or union")
