"""Depth conventions: what the number in a depth pixel means, and converting between them.

The engine computes and stores **planar depth** ``z``: the distance from the camera plane along
the optical axis (OpenCV camera ``Z``), as Depth Anything 3 predicts it and as a point cloud
needs it. What is *delivered* is chosen by name (``docs/formats/depth-conventions.md``):

================  ==============================================================  ===========
name              value of a pixel                                                aliases
================  ==============================================================  ===========
``distance``      Euclidean distance from the camera centre to the surface        camera-distance, dist, euclidean
                  along the pixel's ray: ``z * |K^-1 (u, v, 1)|`` (default)
``z``             planar depth ``z`` (distance to the camera plane)               planar, depth
``inverse_z``     ``1 / z``: Nuke's ScanlineRender / ZDefocus convention           nuke, 1/z, inverse-z, invz
                  (0 = infinitely far, larger = nearer)
================  ==============================================================  ===========

Pixels without a surface (``z <= 0`` or not finite) are ``0`` in every convention (for
``inverse_z`` that is "infinitely far", which is what Nuke means by it). ``distance`` needs the
intrinsics ``K`` (pixels of the same image, OpenCV convention; see
:mod:`engine.ops.camera_geometry`). Pure numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONVENTIONS", "DEFAULT_CONVENTION", "normalise_convention", "ray_lengths", "from_z", "to_z",
           "valid_depth"]

CONVENTIONS = ("distance", "z", "inverse_z")
DEFAULT_CONVENTION = "distance"
_ALIASES = {
    "distance": "distance", "camera-distance": "distance", "camera_distance": "distance", "dist": "distance",
    "euclidean": "distance", "range": "distance",
    "z": "z", "planar": "z", "depth": "z", "zdepth": "z",
    "inverse_z": "inverse_z", "inverse-z": "inverse_z", "invz": "inverse_z", "1/z": "inverse_z", "nuke": "inverse_z",
}


def normalise_convention(name: str | None) -> str:
    """The canonical name of a convention (aliases accepted); ValueError with the choices otherwise."""
    if name is None:
        return DEFAULT_CONVENTION
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown depth convention {name!r}: choose distance (default), z or inverse_z (Nuke 1/Z)")
    return _ALIASES[key]


def valid_depth(z: np.ndarray) -> np.ndarray:
    """bool mask of pixels that hold a surface (finite, > 0)."""
    z = np.asarray(z)
    return np.isfinite(z) & (z > 0)


def ray_lengths(shape: tuple[int, int], K: np.ndarray) -> np.ndarray:
    """float32 (H, W): ``|K^-1 (u, v, 1)|`` per pixel — distance = z * this."""
    h, w = int(shape[0]), int(shape[1])
    K = np.asarray(K, np.float64)
    Ki = np.linalg.inv(K)
    u = np.arange(w, dtype=np.float64)
    v = np.arange(h, dtype=np.float64)
    x = Ki[0, 0] * u[None, :] + Ki[0, 1] * v[:, None] + Ki[0, 2]
    y = Ki[1, 1] * v[:, None] + Ki[1, 2] + 0.0 * u[None, :]
    return np.sqrt(x * x + y * y + 1.0).astype(np.float32)


def from_z(z: np.ndarray, convention: str = DEFAULT_CONVENTION, K: np.ndarray | None = None) -> np.ndarray:
    """Planar depth → ``convention`` (float32, invalid pixels 0)."""
    conv = normalise_convention(convention)
    z = np.asarray(z, np.float32)
    ok = valid_depth(z)
    out = np.zeros(z.shape, np.float32)
    if conv == "z":
        out[ok] = z[ok]
    elif conv == "inverse_z":
        out[ok] = 1.0 / z[ok]
    else:
        if K is None:
            raise ValueError("the distance convention needs the camera intrinsics K")
        out[ok] = (z * ray_lengths(z.shape, K))[ok]
    return out


def to_z(values: np.ndarray, convention: str = DEFAULT_CONVENTION, K: np.ndarray | None = None) -> np.ndarray:
    """``convention`` → planar depth (float32, invalid pixels 0); inverse of :func:`from_z`."""
    conv = normalise_convention(convention)
    d = np.asarray(values, np.float32)
    ok = valid_depth(d)
    out = np.zeros(d.shape, np.float32)
    if conv == "z":
        out[ok] = d[ok]
    elif conv == "inverse_z":
        out[ok] = 1.0 / d[ok]
    else:
        if K is None:
            raise ValueError("the distance convention needs the camera intrinsics K")
        out[ok] = (d / ray_lengths(d.shape, K))[ok]
    return out
