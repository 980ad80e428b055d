"""Pinhole cameras as arrays: intrinsics, poses, axis conventions, Euler angles for Nuke.

Conventions (the engine's, stated again in ``docs/formats/depth-conventions.md``)
---------------------------------------------------------------------------------
* **Intrinsics** ``K`` are ``float64 (3, 3)`` in pixels of the image they belong to, OpenCV
  style: pixel ``(col, row)`` has its centre at ``(u, v) = (col, row)``, so the centre of a
  ``W x H`` image is ``((W - 1) / 2, (H - 1) / 2)`` (``cx = 319.5`` for 640 px wide frames).
  Add 0.5 to ``cx``/``cy`` for the "pixel centres at +0.5" convention of the prompt API.
* **Camera space** is OpenCV's: ``+X`` right, ``+Y`` down, ``+Z`` forward (into the picture).
  A point ``X_c`` projects to ``(u, v) = (fx X/Z + cx, fy Y/Z + cy)``.
* **Poses**: ``w2c`` (world-to-camera, ``(3, 4)`` or ``(4, 4)``): ``X_c = R X_w + t``; ``c2w`` its
  inverse. Depth Anything 3 returns ``w2c``.
* **Nuke / OpenGL** axes: ``+Y`` up and the camera looks down ``-Z``. :data:`CV_TO_GL`
  (``diag(1, -1, -1)``) converts both camera-local and world coordinates between the two; the
  engine's Nuke world is the OpenCV world with that flip, so the first camera of a shot sits at
  the origin looking down ``-Z`` in both.
* **Euler angles** for Nuke's default ``rot_order ZXY`` (Z applied first, then X, then Y):
  ``R = Ry(ry) @ Rx(rx) @ Rz(rz)``, degrees (:func:`euler_zxy`, :func:`matrix_zxy`).

Pure numpy functions.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CV_TO_GL", "DEFAULT_HFOV_DEG", "intrinsics", "default_intrinsics", "scale_intrinsics", "fov_degrees",
    "plausible_intrinsics", "as_4x4", "invert_pose", "w2c_to_c2w", "c2w_to_w2c", "matrix_zxy", "euler_zxy",
    "unwrap_degrees", "nuke_camera_pose", "opencv_pose_from_nuke", "average_rotation", "focal_mm",
]

#: OpenCV camera/world axes <-> OpenGL/Nuke axes (its own inverse).
CV_TO_GL = np.diag([1.0, -1.0, -1.0])
#: Horizontal field of view assumed when a backend gives no intrinsics (a normal lens: ~35 mm on
#: Super 35). Geometry built on it is labelled "assumed camera" wherever it is written.
DEFAULT_HFOV_DEG = 50.0


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)


def default_intrinsics(shape: tuple[int, int], hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """Square pixels, principal point at the image centre, horizontal field of view ``hfov_deg``."""
    h, w = int(shape[0]), int(shape[1])
    f = (w / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return intrinsics(f, f, (w - 1) / 2.0, (h - 1) / 2.0)


def scale_intrinsics(K: np.ndarray, src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
    """``K`` of a ``src_shape`` image, for the same picture resampled to ``dst_shape`` (edges aligned)."""
    sy = dst_shape[0] / float(src_shape[0])
    sx = dst_shape[1] / float(src_shape[1])
    K = np.asarray(K, np.float64)
    out = K.copy()
    out[0, 0], out[0, 1] = K[0, 0] * sx, K[0, 1] * sx
    out[1, 1] = K[1, 1] * sy
    out[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return out


def fov_degrees(K: np.ndarray, shape: tuple[int, int]) -> tuple[float, float]:
    """``(horizontal, vertical)`` field of view in degrees (principal point ignored)."""
    h, w = shape
    return (math.degrees(2 * math.atan(w / (2.0 * K[0, 0]))), math.degrees(2 * math.atan(h / (2.0 * K[1, 1]))))


def plausible_intrinsics(K: np.ndarray | None, shape: tuple[int, int], *, min_fov: float = 2.0,
                         max_fov: float = 170.0, max_aspect: float = 1.5) -> bool:
    """A usable camera: finite, positive focals giving a field of view in ``[min_fov, max_fov]``,
    near-square pixels (``fx/fy`` within ``max_aspect``), principal point within the frame ±50 %."""
    if K is None:
        return False
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        return False
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0 or not (1 / max_aspect <= fx / fy <= max_aspect):
        return False
    hf, vf = fov_degrees(K, shape)
    if not (min_fov <= hf <= max_fov and min_fov <= vf <= max_fov):
        return False
    h, w = shape
    return -0.5 * w <= cx <= 1.5 * w and -0.5 * h <= cy <= 1.5 * h


def focal_mm(K: np.ndarray, width: int, haperture_mm: float) -> float:
    """Focal length in mm for a film back ``haperture_mm`` wide imaged onto ``width`` pixels."""
    return float(K[0, 0]) * haperture_mm / float(width)


# --- poses ----------------------------------------------------------------------------------


def as_4x4(P: np.ndarray) -> np.ndarray:
    P = np.asarray(P, np.float64)
    if P.shape == (4, 4):
        return P.copy()
    if P.shape != (3, 4):
        raise ValueError(f"a pose is (3, 4) or (4, 4), not {P.shape}")
    out = np.eye(4)
    out[:3] = P
    return out


def invert_pose(P: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (or similarity) transform, as (4, 4)."""
    M = as_4x4(P)
    A = M[:3, :3]
    t = M[:3, 3]
    Ai = np.linalg.inv(A)
    out = np.eye(4)
    out[:3, :3] = Ai
    out[:3, 3] = -Ai @ t
    return out


def w2c_to_c2w(w2c: np.ndarray) -> np.ndarray:
    return invert_pose(w2c)


def c2w_to_w2c(c2w: np.ndarray) -> np.ndarray:
    return invert_pose(c2w)


def average_rotation(rotations: list[np.ndarray]) -> np.ndarray:
    """The rotation closest (Frobenius) to the mean of ``rotations`` (chordal L2 mean)."""
    M = np.sum([np.asarray(R, np.float64) for R in rotations], axis=0)
    U, _s, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


# --- Euler angles (Nuke rot_order ZXY) ---------------------------------------------------------


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float64)


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float64)


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


def matrix_zxy(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation for Nuke's ``rot_order ZXY`` from degrees: ``Ry @ Rx @ Rz``."""
    return _ry(math.radians(ry)) @ _rx(math.radians(rx)) @ _rz(math.radians(rz))


def euler_zxy(R: np.ndarray) -> tuple[float, float, float]:
    """``(rx, ry, rz)`` degrees with ``R = Ry @ Rx @ Rz`` (:func:`matrix_zxy` inverted).

    At gimbal lock (``rx = ±90°``) ``rz`` is set to 0 and ``ry`` takes the whole remaining turn.
    """
    R = np.asarray(R, np.float64)
    sx = -R[1, 2]
    sx = min(1.0, max(-1.0, sx))
    rx = math.asin(sx)
    if abs(sx) < 1.0 - 1e-9:
        ry = math.atan2(R[0, 2], R[2, 2])
        rz = math.atan2(R[1, 0], R[1, 1])
    else:  # gimbal lock: only ry + rz (or ry - rz) is determined
        rz = 0.0
        ry = math.atan2(-R[2, 0], R[0, 0])
    return math.degrees(rx), math.degrees(ry), math.degrees(rz)


def unwrap_degrees(values: np.ndarray) -> np.ndarray:
    """Remove 360° jumps along a sequence of angles so animation curves stay continuous."""
    v = np.asarray(values, np.float64)
    return np.degrees(np.unwrap(np.radians(v)))


def nuke_camera_pose(c2w_cv: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """OpenCV camera-to-world → Nuke ``translate`` (xyz) and ``rotate`` (ZXY degrees), Y-up world.

    Scale in ``c2w_cv`` (a similarity) is removed from the rotation; translation keeps it.
    """
    M = as_4x4(c2w_cv)
    A = M[:3, :3]
    s = np.cbrt(abs(np.linalg.det(A))) or 1.0
    R = A / s
    R_gl = CV_TO_GL @ R @ CV_TO_GL
    t_gl = CV_TO_GL @ M[:3, 3]
    return t_gl, euler_zxy(R_gl)


def opencv_pose_from_nuke(translate: np.ndarray, rotate_deg: tuple[float, float, float]) -> np.ndarray:
    """Nuke ``translate``/``rotate`` (ZXY) → OpenCV camera-to-world (4, 4) (inverse of :func:`nuke_camera_pose`)."""
    R_gl = matrix_zxy(*rotate_deg)
    out = np.eye(4)
    out[:3, :3] = CV_TO_GL @ R_gl @ CV_TO_GL
    out[:3, 3] = CV_TO_GL @ np.asarray(translate, np.float64)
    return out
