"""Synthetic moving shapes with exact ground truth, for the shapes tests and ``roto bench shapes``.

Every clip is a parametric outline moved by a known similarity transform (translation,
rotation, scale) plus a slow deformation, rendered as exact anti-aliased coverage (4×4
supersampling), optionally with a soft edge (Gaussian blur), on a textured plate whose
foreground texture rides with the object (so optical flow sees the real motion).

Kinds: ``blob`` (smooth, deforming), ``star`` (ten sharp corners), ``ring`` (a blob with a
hole), ``split`` (one piece that pinches into two: a topology change), ``soft`` (a blob with a
blurred edge, for feather). ``clip.truth(frame, u)`` gives where the physical outline point of
parameter ``u`` in [0, 1) is on ``frame`` — what a perfectly stable shape point would follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.shapes.raster import fill_polygons

KINDS = ("blob", "star", "ring", "split", "soft")


@dataclass
class ShapeClip:
    kind: str
    width: int
    height: int
    frames: list[int]
    alphas: dict[int, np.ndarray]
    plates: dict[int, np.ndarray] = field(default_factory=dict)  # uint8 RGB
    outline: Callable[[int, np.ndarray], np.ndarray] | None = None  # (frame, u) -> points of the main outline
    feather: float = 0.0

    def truth(self, frame: int, u: np.ndarray) -> np.ndarray:
        assert self.outline is not None
        return self.outline(frame, np.asarray(u, np.float64) % 1.0)

    def nearest_u(self, frame: int, pts: np.ndarray, n: int = 4096) -> np.ndarray:
        """Outline parameters of the physical points nearest to ``pts`` on ``frame``."""
        from scipy.spatial import cKDTree

        u = np.arange(n) / n
        dense = self.truth(frame, u)
        _, j = cKDTree(dense).query(pts)
        return u[j]


def _similarity(t: float, w: int, h: int, motion: float) -> tuple[np.ndarray, float, float]:
    cx = w * (0.35 + 0.3 * t * motion)
    cy = h * (0.5 + 0.08 * np.sin(2 * np.pi * t * motion))
    ang = 0.5 * np.sin(np.pi * t * motion)
    scale = 0.92 + 0.16 * t
    return np.array([cx, cy]), ang, scale


def _place(local: np.ndarray, centre: np.ndarray, ang: float, scale: float) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    rot = np.array([[c, -s], [s, c]])
    return centre + scale * local @ rot.T


def _blob_local(u: np.ndarray, t: float, radius: float, wobble: float = 1.0) -> np.ndarray:
    th = 2 * np.pi * u
    # the lobes breathe (their size changes) but stay on the same physical points
    r = radius * (1 + wobble * ((0.10 + 0.06 * np.sin(2.0 * t)) * np.sin(3 * th)
                                + (0.08 - 0.04 * t) * np.cos(5 * th - 1.0) + 0.03 * np.sin(7 * th + 0.4)))
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=1)


def _star_local(u: np.ndarray, radius: float) -> np.ndarray:
    ang = np.linspace(0, 2 * np.pi, 11)[:-1] - np.pi / 2
    rad = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    verts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    closed = np.vstack([verts, verts[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)]) / seg.sum()
    x = np.interp(u, s, closed[:, 0])
    y = np.interp(u, s, closed[:, 1])
    return np.stack([x, y], axis=1)


def _coverage(polys_add: list[np.ndarray], polys_sub: list[np.ndarray], w: int, h: int, ss: int = 4) -> np.ndarray:
    big = fill_polygons([p * ss for p in polys_add], (h * ss, w * ss))
    if polys_sub:
        big &= ~fill_polygons([p * ss for p in polys_sub], (h * ss, w * ss))
    return big.reshape(h, ss, w, ss).mean(axis=(1, 3)).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    acc = np.zeros((h, w), np.float32)
    amp = 1.0
    for cells in (5, 11, 23, 47):
        grid = rng.random((cells, max(2, cells * w // h)), dtype=np.float32)
        acc += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.6
    acc = (acc - acc.min()) / (np.ptp(acc) + 1e-6)
    return acc


def make_clip(kind: str = "blob", width: int = 640, height: int = 360, frames: int = 24, start: int = 1001,
              seed: int = 3, motion: float = 1.0, plate: bool = True, blur: float | None = None) -> ShapeClip:
    """A synthetic clip of ``kind`` (see :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic shape kind {kind!r}; use one of {KINDS}")
    rng = np.random.default_rng(seed)
    w, h = int(width), int(height)
    radius = 0.22 * min(w, h)
    n_dense = 1440
    if blur is None:
        blur = 2.0 if kind == "soft" else 0.0
    nums = list(range(start, start + frames))

    def t_of(frame: int) -> float:
        return (frame - start) / max(1, frames - 1)

    def outline(frame: int, u: np.ndarray) -> np.ndarray:
        t = t_of(frame)
        centre, ang, scale = _similarity(t, w, h, motion)
        if kind == "star":
            local = _star_local(u, radius)
        elif kind == "split":
            return _split_outline(frame, u, t, w, h, radius)
        else:
            local = _blob_local(u, t, radius)
        return _place(local, centre, ang, scale)

    alphas: dict[int, np.ndarray] = {}
    plates: dict[int, np.ndarray] = {}
    bg = _texture(rng, h + 64, w + 64)
    fg = _texture(rng, 2 * h, 2 * h)
    u_dense = np.arange(n_dense) / n_dense
    for f in nums:
        t = t_of(f)
        centre, ang, scale = _similarity(t, w, h, motion)
        if kind == "split":
            polys = _split_polys(t, w, h, radius)
            sub: list[np.ndarray] = []
        else:
            polys = [outline(f, u_dense)]
            sub = []
            if kind == "ring":
                hole = _place(_blob_local(u_dense, t, radius * 0.42, wobble=0.4), centre, ang, scale)
                sub = [hole]
        a = _coverage(polys, sub, w, h)
        if blur > 0:
            a = cv2.GaussianBlur(a, (0, 0), blur)
        alphas[f] = a
        if plate:
            # background pans slowly; foreground texture follows the similarity transform
            ox = int(round(32 - 20 * t))
            b = bg[32:32 + h, ox:ox + w]
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
            if kind == "split":  # each piece carries its own texture
                sep = radius * (0.4 + 1.6 * t)
                cxp = np.where(xx < w * 0.5, w * 0.5 - sep, w * 0.5 + sep)
                lx = xx - cxp + fg.shape[1] / 2 + np.where(xx < w * 0.5, -60.0, 60.0)
                ly = yy - h * 0.5 + fg.shape[0] / 2
            else:
                c, s = np.cos(-ang), np.sin(-ang)
                lx = ((xx - centre[0]) * c - (yy - centre[1]) * s) / scale + fg.shape[1] / 2
                ly = ((xx - centre[0]) * s + (yy - centre[1]) * c) / scale + fg.shape[0] / 2
            ft = cv2.remap(fg, (lx - 0.5).astype(np.float32), (ly - 0.5).astype(np.float32), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
            lum = a * (0.25 + 0.7 * ft) + (1 - a) * (0.15 + 0.6 * b)
            rgb = np.stack([lum * 1.0, lum * 0.85 + 0.05 * a, lum * 0.7], axis=2)
            plates[f] = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    feather = 2.5066 * blur if blur > 0 else 0.0
    return ShapeClip(kind, w, h, nums, alphas, plates, outline, feather)


def _split_centres(t: float, w: int, h: int) -> tuple[np.ndarray, np.ndarray, float]:
    sep = 0.2 + 0.9 * t  # in radii: the pieces drift apart
    c = np.array([w * 0.5, h * 0.5])
    return c - np.array([sep, 0.0]), c + np.array([sep, 0.0]), sep


def _split_polys(t: float, w: int, h: int, radius: float) -> list[np.ndarray]:
    """Two discs joined by a neck that thins and breaks half-way (drawn as one or two outlines)."""
    u = np.arange(1440) / 1440
    r = radius * 0.75
    sep = radius * (0.4 + 1.6 * t)
    c = np.array([w * 0.5, h * 0.5])
    th = 2 * np.pi * u
    left = c + np.stack([-sep + r * np.cos(th), r * np.sin(th)], axis=1)
    right = c + np.stack([sep + r * np.cos(th), r * np.sin(th)], axis=1)
    neck_h = r * max(0.0, 0.6 - 1.2 * t)
    polys = [left, right]
    if neck_h > 0.5:
        polys.append(np.array([[c[0] - sep, c[1] - neck_h], [c[0] + sep, c[1] - neck_h],
                               [c[0] + sep, c[1] + neck_h], [c[0] - sep, c[1] + neck_h]]))
    return polys


def _split_outline(frame, u, t, w, h, radius) -> np.ndarray:
    # the left disc's outline: stable physical points for the slip measure
    r = radius * 0.75
    sep = radius * (0.4 + 1.6 * t)
    th = 2 * np.pi * u
    c = np.array([w * 0.5, h * 0.5])
    return c + np.stack([-sep + r * np.cos(th), r * np.sin(th)], axis=1)


def make_shapeset(kind: str = "ring", width: int = 240, height: int = 160, frames: int = 6, *, name: str = "hero",
                  plate: str = "/plates/shot.####.exr", flow: bool = False):
    """A synthetic clip and its shapes as a :class:`~engine.shapes.model.ShapeSet` (tests, format samples)."""
    from engine.shapes.model import ShapeSet
    from engine.shapes.track import ShapeOptions, shapes_from_mattes

    clip = make_clip(kind, width, height, frames)
    shapes, rep = shapes_from_mattes(clip.frames, clip.alphas.get, get_image=clip.plates.get if flow else None,
                                     options=ShapeOptions(flow=flow), object_id=1, object_name=name)
    ss = ShapeSet(width, height, clip.frames[0], clip.frames[-1], "24/1", shapes, plate, {1: name},
                  report={name: rep})
    return clip, ss
