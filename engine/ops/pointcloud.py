"""Depth maps to 3-D points and back: unprojection, projection, world transforms, point clouds.

Camera space, intrinsics and poses follow :mod:`engine.ops.camera_geometry` (OpenCV axes,
pixel ``(col, row)`` centred at ``(u, v) = (col, row)``, ``w2c`` poses). Depth is planar ``z``
(:mod:`engine.ops.depth_convention`). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ops.camera_geometry import as_4x4, invert_pose

__all__ = ["camera_points", "unproject", "project", "transform_points", "PointCloud", "point_cloud"]


def camera_points(z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3): the camera-space point seen by every pixel (``z * K^-1 (u, v, 1)``)."""
    z = np.asarray(z, np.float64)
    h, w = z.shape
    Ki = np.linalg.inv(np.asarray(K, np.float64))
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    x = (Ki[0, 0] * u + Ki[0, 1] * v + Ki[0, 2]) * z
    y = (Ki[1, 1] * v + Ki[1, 2] + 0.0 * u) * z
    return np.stack([x, y, z], axis=-1).astype(np.float32)


def unproject(z: np.ndarray, K: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 3) float64 in camera space for the valid pixels, and their flat pixel indices (N,)."""
    z = np.asarray(z, np.float64)
    ok = np.isfinite(z) & (z > 0)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    idx = np.flatnonzero(ok)
    h, w = z.shape
    rows, cols = np.divmod(idx, w)
    Ki = np.linalg.inv(np.asarray(K, np.float64))
    zz = z.reshape(-1)[idx]
    pix = np.stack([cols.astype(np.float64), rows.astype(np.float64), np.ones(len(idx))], axis=0)
    pts = (Ki @ pix) * zz[None, :]
    return pts.T, idx


def project(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space points (N, 3) → pixel positions (N, 2) as (u, v) and their planar depth (N,)."""
    P = np.asarray(points_cam, np.float64)
    K = np.asarray(K, np.float64)
    q = P @ K.T
    z = P[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = q[:, :2] / q[:, 2:3]
    return uv, z


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Apply a (3, 4) or (4, 4) transform to points (N, 3)."""
    M = as_4x4(M)
    P = np.asarray(points, np.float64)
    return P @ M[:3, :3].T + M[:3, 3]


@dataclass
class PointCloud:
    """Points (N, 3) float32, colours (N, 3) uint8 or None, normals (N, 3) float32 or None, and the
    flat pixel index each point came from (N,) (with ``frames`` (N,) when several frames are merged)."""

    points: np.ndarray
    colours: np.ndarray | None = None
    normals: np.ndarray | None = None
    pixels: np.ndarray | None = None
    frames: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.points))

    @staticmethod
    def merge(clouds: list[PointCloud]) -> PointCloud:
        clouds = [c for c in clouds if len(c)]
        if not clouds:
            return PointCloud(np.zeros((0, 3), np.float32))

        def cat(name: str):
            parts = [getattr(c, name) for c in clouds]
            return None if any(p is None for p in parts) else np.concatenate(parts)

        return PointCloud(np.concatenate([c.points for c in clouds]), cat("colours"), cat("normals"), cat("pixels"),
                          cat("frames"))


def point_cloud(z: np.ndarray, K: np.ndarray, *, rgb: np.ndarray | None = None, w2c: np.ndarray | None = None,
                normals: np.ndarray | None = None, mask: np.ndarray | None = None, step: int = 1,
                world_transform: np.ndarray | None = None, frame: int | None = None) -> PointCloud:
    """The coloured points of one depth map.

    ``rgb`` float (H, W, 3) in [0, 1] (display-referred) or uint8; ``w2c`` puts the points in the
    world frame (else camera space); ``world_transform`` (4, 4) is applied after that (e.g. the
    OpenCV → Nuke axis flip); ``normals`` (H, W, 3) are carried along (rotated with the points);
    ``step`` keeps every step-th pixel in both directions; ``mask`` limits the pixels.
    """
    z = np.asarray(z, np.float32)
    sel = np.ones(z.shape, bool) if mask is None else np.asarray(mask, bool).copy()
    if step > 1:
        grid = np.zeros(z.shape, bool)
        grid[::step, ::step] = True
        sel &= grid
    pts, idx = unproject(z, K, sel)
    M = np.eye(4)
    if w2c is not None:
        M = invert_pose(w2c)
    if world_transform is not None:
        M = as_4x4(world_transform) @ M
    if not np.allclose(M, np.eye(4)):
        pts = transform_points(pts, M)
    cols = None
    if rgb is not None:
        c = np.asarray(rgb).reshape(-1, np.asarray(rgb).shape[-1])[idx, :3]
        if c.dtype != np.uint8:
            c = np.clip(np.rint(np.clip(c.astype(np.float32), 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
        cols = c
    nrm = None
    if normals is not None:
        n = np.asarray(normals, np.float64).reshape(-1, 3)[idx]
        A = M[:3, :3]
        s = np.cbrt(abs(np.linalg.det(A))) or 1.0
        nrm = (n @ (A / s).T).astype(np.float32)
    frames = None if frame is None else np.full(len(idx), int(frame), np.int32)
    return PointCloud(pts.astype(np.float32), cols, nrm, idx.astype(np.int64), frames)
