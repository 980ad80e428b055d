"""Autodesk Flame: GMask RAW setups (one per shape) and a manifest for the Flame hook.

Flame's GMask "RAW setup" is a plain-text file holding the number of keyframes, the number of
vertices, then the x, y, z position of every vertex at every keyframe (Flame help, "Importing
and Exporting Raw Setup Files"). It has no tangents and no frame numbers, so each shape is
written

* with a key on **every frame** of its lifetime, keyframe ``i`` being plate frame ``first + i``;
* as a dense outline: every Bézier segment sampled at the same number of points on every key
  (anchors included), so Flame's own spline through the vertices stays within a fraction of a
  pixel of the curve;
* in Flame's image space: origin at the **centre of the image, y up**, pixels (``origin``
  ``"bottom-left"`` writes Nuke-style coordinates instead), z = 0.

Layout of a RAW file (one value group per line, ASCII)::

    <keyframe count>
    <vertex count>
    <x> <y> <z>        (vertex 1 of keyframe 1)
    ...                (vertex count lines per keyframe, keyframes in order)

The manifest (JSON, ``format: roto-flame-gmask``) lists the RAW files with their object, first
frame, lifetime, hole flag and feather, the plate and the matte sequence, for the Flame hook
(``hosts/flame``) to create GMask Tracer nodes and import the mattes. Paths are absolute;
``plate``/``mattes`` use Flame's sequence spelling (``/a/shot.[1001-1030].exr``),
``plate_pattern``/``mattes_pattern`` the same with ``####``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.export.hostfiles.common import flame_sequence, frame_pattern, host_name, unique_names
from engine.shapes.bezier import bezier_eval
from engine.shapes.model import Shape, ShapeSet

ORIGINS = ("centre", "bottom-left")


def _per_segment(shape: Shape, spacing: float, cap: int = 8) -> int:
    need = 1
    for k in shape.keys.values():
        segs = k.segments()
        lens = np.linalg.norm(np.diff(segs, axis=1), axis=2).sum(axis=1)
        need = max(need, int(np.ceil(lens.max() / spacing)) if len(lens) else 1)
    return int(min(cap, max(1, need)))


def dense_outline(shape: Shape, frame: int, per_segment: int) -> np.ndarray:
    """``shape`` on ``frame`` as ``n_points * per_segment`` outline points (anchors first in each segment)."""
    key = shape.at(frame)
    assert key is not None
    t = np.arange(per_segment) / per_segment
    return np.vstack([bezier_eval(seg, t) for seg in key.segments()])


def raw_text(shape: Shape, width: int, height: int, *, origin: str = "centre", spacing: float = 12.0) -> str:
    """The RAW setup text of one shape."""
    per = _per_segment(shape, spacing)
    frames = list(range(shape.first, shape.last + 1))
    lines = [str(len(frames)), str(shape.n_points * per)]
    for f in frames:
        pts = dense_outline(shape, f, per)
        if origin == "centre":
            xs, ys = pts[:, 0] - width / 2.0, height / 2.0 - pts[:, 1]
        else:
            xs, ys = pts[:, 0], height - pts[:, 1]
        lines.extend(f"{x:.4f} {y:.4f} 0" for x, y in zip(xs, ys))
    return "\n".join(lines) + "\n"


def write_flame(shapes: ShapeSet, out: str | Path, *, matte_pattern: str | None = None, origin: str = "centre",
                spacing: float = 12.0) -> Path:
    """Write ``<out stem>_<shape>.raw`` files and the manifest ``out`` (JSON); returns the manifest path."""
    from engine.errors import InputError
    from engine.util.atomic import write_text

    if origin not in ORIGINS:
        raise InputError(f"unknown Flame origin {origin!r}", hint=f"Choose one of: {', '.join(ORIGINS)}")
    out = Path(out)
    stem = out.name[: -len(".json")] if out.name.endswith(".json") else out.stem
    names = unique_names([host_name(s.name, "shape") for s in shapes.shapes])
    entries = []
    for s, n in zip(shapes.shapes, names):
        raw = out.with_name(f"{stem}_{n}.raw")
        write_text(raw, raw_text(s, shapes.width, shapes.height, origin=origin, spacing=spacing))
        entries.append({"name": n, "object": s.object_name, "object_id": s.object_id, "raw": raw.name,
                        "first": s.first, "last": s.last, "hole": s.hole, "parent": s.parent,
                        "feather": round(float(s.feather), 3), "anchors": s.n_points,
                        "vertices": s.n_points * _per_segment(s, spacing)})
    manifest = {"format": "roto-flame-gmask", "version": 1, "width": shapes.width, "height": shapes.height,
                "fps": str(shapes.fps), "first": shapes.first, "last": shapes.last,
                "origin": origin, "units": "pixels", "keyframes": "one per frame from 'first'",
                # Flame's own sequence spelling (/a/shot.[1001-1030].exr), as flame.import_clips reads it;
                # the *_pattern keys give the same absolute paths with #### for other tools
                "plate": flame_sequence(shapes.plate, shapes.first, shapes.last),
                "mattes": flame_sequence(matte_pattern, shapes.first, shapes.last),
                "plate_pattern": frame_pattern(shapes.plate), "mattes_pattern": frame_pattern(matte_pattern),
                "objects": {str(k): v for k, v in shapes.objects.items()}, "shapes": entries}
    write_text(out, json.dumps(manifest, indent=1))
    return out


def read_raw(text: str) -> np.ndarray:
    """Parse a RAW setup back: ``(keyframes, vertices, 3)`` (for tests and the Flame hook)."""
    tokens = text.split()
    nk, nv = int(tokens[0]), int(tokens[1])
    vals = np.asarray(tokens[2:], dtype=np.float64)
    if vals.size != nk * nv * 3:
        raise ValueError(f"RAW setup holds {vals.size} numbers, expected {nk} x {nv} x 3")
    return vals.reshape(nk, nv, 3)


__all__ = ["write_flame", "raw_text", "read_raw", "dense_outline", "ORIGINS"]
