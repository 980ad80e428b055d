"""Surface normals from a depth map and the camera intrinsics, robust at depth discontinuities.

Every pixel is unprojected to its camera-space point ``P`` (:func:`engine.ops.pointcloud.camera_points`);
the normal is the cross product of two tangents, one along the row and one along the column.
For each tangent the pixel picks, per direction:

* the **central** difference ``(P[+1] - P[-1]) / 2`` when both neighbours lie on the same smooth
  surface (the two one-sided depth steps agree within ``smooth_ratio``) — second-order accurate,
  so curved surfaces (spheres) come out within a fraction of a degree;
* else the **one-sided** difference towards the neighbour with the smaller depth step — at an
  occlusion edge the tangent stays on the pixel's own surface instead of bridging foreground and
  background (a plane's normal stays exact up to its silhouette);
* nothing when neither neighbour is valid or both steps exceed ``max_step`` (relative): the
  normal is then 0 (undefined).

Output conventions (``convention``):

* ``"gl"`` (default; what the EXR ``N.X N.Y N.Z`` layer holds): camera space with ``+X`` right,
  ``+Y`` up, ``+Z`` towards the viewer (Nuke/OpenGL camera axes), so a wall facing the camera is
  ``(0, 0, 1)``;
* ``"opencv"``: ``+X`` right, ``+Y`` down, ``+Z`` forward; facing surfaces have ``N.Z < 0``.

Normals always face the camera (``N · P < 0`` in OpenCV space). Unit length, float32 (H, W, 3),
zero where undefined. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from engine.ops.camera_geometry import CV_TO_GL
from engine.ops.pointcloud import camera_points

__all__ = ["normals_from_depth", "to_convention", "angular_error_deg"]


def _tangent(P: np.ndarray, z: np.ndarray, ok: np.ndarray, axis: int, smooth_ratio: float,
             max_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Tangent along ``axis`` (1 = along a row / x, 0 = along a column / y) and where it is defined."""
    h, w = z.shape
    fwd = np.zeros_like(P)
    bwd = np.zeros_like(P)
    jf = np.full(z.shape, np.inf, z.dtype)
    jb = np.full(z.shape, np.inf, z.dtype)
    okf = np.zeros(z.shape, bool)
    okb = np.zeros(z.shape, bool)
    if axis == 1:
        fwd[:, :-1] = P[:, 1:] - P[:, :-1]
        bwd[:, 1:] = P[:, 1:] - P[:, :-1]
        okf[:, :-1] = ok[:, 1:] & ok[:, :-1]
        okb[:, 1:] = ok[:, 1:] & ok[:, :-1]
        step = np.abs(z[:, 1:] - z[:, :-1])
        jf[:, :-1] = step
        jb[:, 1:] = step
    else:
        fwd[:-1] = P[1:] - P[:-1]
        bwd[1:] = P[1:] - P[:-1]
        okf[:-1] = ok[1:] & ok[:-1]
        okb[1:] = ok[1:] & ok[:-1]
        step = np.abs(z[1:] - z[:-1])
        jf[:-1] = step
        jb[1:] = step
    jf = np.where(okf, jf, np.inf)
    jb = np.where(okb, jb, np.inf)
    zs = np.where(ok, z, np.float32(1.0))
    limit = max_step * zs
    both = okf & okb
    lo = np.minimum(jf, jb)
    hi = np.maximum(jf, jb)
    smooth = both & (hi <= smooth_ratio * lo + 1e-6 * zs) & (hi <= limit)
    central = 0.5 * (fwd + bwd)
    use_f = ~smooth & (jf <= jb) & okf & (jf <= limit)
    use_b = ~smooth & ~use_f & okb & (jb <= limit)
    t = np.where(smooth[..., None], central, np.where(use_f[..., None], fwd, np.where(use_b[..., None], bwd,
                                                                                    np.float32(0.0))))
    return t, smooth | use_f | use_b


def normals_from_depth(z: np.ndarray, K: np.ndarray, *, convention: str = "gl", smooth_ratio: float = 2.0,
                       max_step: float = 0.25, mask: np.ndarray | None = None) -> np.ndarray:
    """Unit normals (H, W, 3) float32 of planar depth ``z`` seen through intrinsics ``K``.

    ``smooth_ratio``: the two one-sided depth steps may differ by this factor and still count as
    one smooth surface (central difference). ``max_step``: a step larger than this fraction of
    the pixel's depth is a discontinuity and never used. ``mask``: pixels to compute (others 0).
    """
    z = np.asarray(z, np.float32)
    ok = np.isfinite(z) & (z > 0)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    zc = np.where(ok, z, np.float32(0.0))
    P = camera_points(zc, K)  # float32: the depth's own precision
    tx, okx = _tangent(P, zc, ok, 1, smooth_ratio, max_step)
    ty, oky = _tangent(P, zc, ok, 0, smooth_ratio, max_step)
    n = np.cross(tx, ty)  # x right, y down: tx × ty points away from the camera for a facing plane
    norm = np.linalg.norm(n, axis=-1)
    good = ok & okx & oky & (norm > 0)
    n = np.where(good[..., None], n / np.where(norm > 0, norm, np.float32(1.0))[..., None], np.float32(0.0))
    facing = np.einsum("hwc,hwc->hw", n, P)
    n = np.where((facing > 0)[..., None], -n, n)  # face the camera: N · P < 0
    return to_convention(n.astype(np.float32), convention)


def to_convention(n_cv: np.ndarray, convention: str) -> np.ndarray:
    """OpenCV-axes normals → ``convention`` (``gl`` or ``opencv``)."""
    c = convention.lower()
    if c in ("opencv", "cv"):
        return np.asarray(n_cv, np.float32)
    if c in ("gl", "opengl", "nuke"):
        return (np.asarray(n_cv, np.float32) @ CV_TO_GL.T.astype(np.float32)).astype(np.float32)
    raise ValueError(f"unknown normals convention {convention!r}: use gl (Nuke) or opencv")


def angular_error_deg(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Angle in degrees between two normal maps (H, W, 3) at the pixels of ``mask`` (default: both defined)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    m = (na > 0) & (nb > 0) if mask is None else np.asarray(mask, bool)
    cos = np.einsum("...c,...c->...", a[m], b[m]) / (na[m] * nb[m])
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
