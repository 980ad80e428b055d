"""Cameras for compositing: an animated Nuke ``Camera2`` node (.nk) and a ``.chan`` file.

**World and axes.** The engine's cameras are OpenCV camera-to-world poses
(:mod:`engine.ops.camera_geometry`); Nuke's world is Y-up with cameras looking down ``-Z``.
Both are converted with ``diag(1, -1, -1)``, so the first frame of a depth run (the world
origin) is a camera at the origin with zero rotation, and the PLY points written by
``roto depth --points`` (same flip) sit where this camera sees them. Units are the depth's:
metres for metric models, arbitrary (but consistent over the shot) for relative ones.

**Knobs** (per frame, keyed on the plate's frame numbers):

* ``translate`` — camera position; ``rotate`` — degrees for ``rot_order ZXY`` (Nuke's default:
  ``R = Ry @ Rx @ Rz``), unwrapped so curves do not jump by 360°;
* ``focal`` — ``fx * haperture / width`` (mm) with ``haperture`` (default 24.576 mm, Nuke's) and
  ``vaperture = haperture * height / width`` (square pixels);
* ``win_translate`` — the principal point's offset from the frame centre, in Nuke's window
  units (half the frame width = 1; ``v`` up), written only when some frame is off-centre by
  more than one pixel.

**.chan** — one line per frame: ``frame tx ty tz rx ry rz vfov`` (the layout Nuke's Camera
"import chan file" reads, with the vertical field of view in degrees last), same values.

:func:`nuke_project` is Nuke's pinhole projection written out (used by the tests to check that
exported points land back on their pixels through the exported camera).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.ops.camera_geometry import (as_4x4, focal_mm, matrix_zxy, nuke_camera_pose, unwrap_degrees,
                                        w2c_to_c2w)
from engine.util.atomic import atomic_open

__all__ = ["NUKE_HAPERTURE", "CameraTrack", "nuke_values", "nuke_camera_node", "write_nuke_camera", "write_chan",
           "read_chan", "nuke_project"]

NUKE_HAPERTURE = 24.576  # mm, Nuke's default horizontal aperture
NUKE_VERSION = "13.2 v8"


@dataclass
class CameraTrack:
    """Per-frame intrinsics (plate pixels) and OpenCV camera-to-world poses (4, 4) of one shot."""

    frames: list[int]
    K: list[np.ndarray]
    c2w: list[np.ndarray]
    width: int
    height: int
    assumed_intrinsics: bool = False
    units: str = "relative"

    def __post_init__(self) -> None:
        if not (len(self.frames) == len(self.K) == len(self.c2w)):
            raise InputError("a camera track needs one intrinsics matrix and one pose per frame")

    @classmethod
    def from_outputs(cls, outs: Sequence[Any], width: int, height: int, *, units: str = "relative") -> CameraTrack:
        """From :class:`~engine.depth.base.DepthOut` items with ``extrinsics`` (world-to-camera)."""
        from engine.ops.camera_geometry import default_intrinsics

        frames, Ks, poses, assumed = [], [], [], False
        for o in outs:
            if o.extrinsics is None:
                continue
            K = o.intrinsics
            if K is None:
                K, assumed = default_intrinsics((height, width)), True
            frames.append(int(o.frame))
            Ks.append(np.asarray(K, np.float64))
            poses.append(w2c_to_c2w(o.extrinsics))
        return cls(frames, Ks, poses, width, height, assumed, units)

    def __len__(self) -> int:
        return len(self.frames)


def nuke_values(track: CameraTrack, haperture: float = NUKE_HAPERTURE) -> dict[str, Any]:
    """Per-frame Nuke knob values: ``translate`` (N, 3), ``rotate`` (N, 3), ``focal`` (N,), ``vfov`` (N,),
    ``win_translate`` (N, 2), plus ``haperture``/``vaperture``."""
    n = len(track)
    T = np.zeros((n, 3))
    Rdeg = np.zeros((n, 3))
    focal = np.zeros(n)
    win = np.zeros((n, 2))
    w, h = track.width, track.height
    vap = haperture * h / w
    for i, (K, c2w) in enumerate(zip(track.K, track.c2w)):
        t, r = nuke_camera_pose(c2w)
        T[i], Rdeg[i] = t, r
        focal[i] = focal_mm(K, w, haperture)
        win[i, 0] = 2.0 * (K[0, 2] + 0.5 - w / 2.0) / w
        win[i, 1] = 2.0 * (h / 2.0 - (K[1, 2] + 0.5)) / w
    for j in range(3):
        Rdeg[:, j] = unwrap_degrees(Rdeg[:, j])
    vfov = np.degrees(2.0 * np.arctan(vap / (2.0 * np.maximum(focal, 1e-12))))
    return {"translate": T, "rotate": Rdeg, "focal": focal, "vfov": vfov, "win_translate": win,
            "haperture": float(haperture), "vaperture": float(vap)}


def _num(v: float) -> str:
    if not math.isfinite(v):
        raise InputError("the camera has non-finite values; it cannot be written")
    if abs(v) < 1e-9:  # float noise around 0 (the first camera's rotation)
        return "0"
    return f"{v:.9g}"


def _curve(frames: Sequence[int], values: np.ndarray) -> str:
    vals = np.asarray(values, np.float64)
    if len(frames) == 1 or np.allclose(vals, vals[0], rtol=0, atol=1e-12):
        return _num(float(vals[0]))
    keys = []
    prev = None
    for f, v in zip(frames, vals):
        keys.append((f"x{int(f)} " if prev is None or f != prev + 1 else "") + _num(float(v)))
        prev = f
    return "{curve " + " ".join(keys) + "}"


def nuke_camera_node(track: CameraTrack, *, name: str = "DepthCamera", haperture: float = NUKE_HAPERTURE,
                     label: str = "", xpos: int = 0, ypos: int = 0) -> str:
    """The text of one animated ``Camera2`` node (classic 3D system; loads in Nuke 12–16)."""
    if not len(track):
        raise InputError("the camera track has no frames")
    v = nuke_values(track, haperture)
    fr = track.frames
    lines = ["Camera2 {", " inputs 0", " rot_order ZXY"]
    lines.append(" translate {" + " ".join(_curve(fr, v["translate"][:, j]) for j in range(3)) + "}")
    lines.append(" rotate {" + " ".join(_curve(fr, v["rotate"][:, j]) for j in range(3)) + "}")
    f = _curve(fr, v["focal"])
    lines.append(" focal " + ("{" + f + "}" if f.startswith("{") else f))
    lines.append(f" haperture {_num(v['haperture'])}")
    lines.append(f" vaperture {_num(v['vaperture'])}")
    if np.abs(v["win_translate"]).max() * track.width / 2.0 > 1.0:
        lines.append(" win_translate {" + " ".join(_curve(fr, v["win_translate"][:, j]) for j in range(2)) + "}")
    if label:
        lines.append(' label "' + label.replace("\\", "\\\\").replace('"', '\\"').replace("[", "\\[") + '"')
    lines.append(f" name {name}")
    lines.append(f" xpos {int(xpos)}")
    lines.append(f" ypos {int(ypos)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_nuke_camera(path: str | os.PathLike[str], track: CameraTrack, *, name: str = "DepthCamera",
                      haperture: float = NUKE_HAPERTURE, label: str = "") -> Path:
    """A .nk holding only the camera (File > Import Script, or paste its text): no Root node, so
    importing it never changes the open script's frame range or format."""
    text = "#! nuke -nx\nversion " + NUKE_VERSION + "\n" + nuke_camera_node(
        track, name=name, haperture=haperture, label=label)
    target = Path(path)
    with atomic_open(target) as fh:
        fh.write(text)
    return target


def write_chan(path: str | os.PathLike[str], track: CameraTrack, *, haperture: float = NUKE_HAPERTURE) -> Path:
    """``frame tx ty tz rx ry rz vfov`` per line (see the module doc)."""
    v = nuke_values(track, haperture)
    target = Path(path)
    with atomic_open(target) as fh:
        for i, f in enumerate(track.frames):
            vals = [*v["translate"][i], *v["rotate"][i], v["vfov"][i]]
            fh.write(f"{int(f)} " + " ".join(_num(float(x)) for x in vals) + "\n")
    return target


def read_chan(path: str | os.PathLike[str]) -> np.ndarray:
    """(N, 7 or 8) float64 rows of a .chan file."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            rows.append([float(x) for x in parts])
    return np.array(rows, np.float64)


def nuke_project(points: np.ndarray, translate: Sequence[float], rotate: Sequence[float], focal: float,
                 width: int, height: int, *, haperture: float = NUKE_HAPERTURE,
                 win_translate: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Project Nuke-world points (N, 3) through a Nuke camera to pixel (col, row) positions, OpenCV
    pixel convention (top-left pixel centred at (0, 0)). The horizontal aperture spans the format
    width; vertical scale equals horizontal (square pixels); ``win_translate`` shifts the window in
    half-widths (``v`` up)."""
    M = np.eye(4)
    M[:3, :3] = matrix_zxy(*rotate)
    M[:3, 3] = np.asarray(translate, np.float64)
    L = np.linalg.inv(M)
    P = np.asarray(points, np.float64) @ L[:3, :3].T + L[:3, 3]
    k = focal / (haperture / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = k * P[:, 0] / -P[:, 2] + win_translate[0]
        yn = k * P[:, 1] / -P[:, 2] + win_translate[1]
    col = (xn + 1.0) * width / 2.0 - 0.5
    row_up = height / 2.0 + yn * width / 2.0
    row = height - row_up - 0.5
    return np.stack([col, row], axis=1)


def track_from_poses(frames: Sequence[int], K: np.ndarray | Sequence[np.ndarray], w2c: Sequence[np.ndarray],
                     width: int, height: int) -> CameraTrack:
    """A :class:`CameraTrack` from world-to-camera poses (one K for all frames, or one per frame)."""
    Ks = [np.asarray(K, np.float64)] * len(frames) if np.asarray(K).ndim == 2 else [np.asarray(k) for k in K]
    return CameraTrack(list(frames), Ks, [w2c_to_c2w(as_4x4(E)) for E in w2c], width, height)
