"""Editable shapes as plain data: closed cubic Bézier splines with keyframes, feather and lifetime.

Coordinates are the engine's: pixels of the plate, origin at the **top-left corner** of the
image, y down, pixel ``(col, row)`` covering ``[col, col+1) x [row, row+1)`` (its centre is at
``(col + 0.5, row + 0.5)``). Hosts (Nuke bottom-left, Fusion normalised, Flame centred) are
converted to only inside their writers (:mod:`engine.export.hostfiles`).

A :class:`BezierKey` is one keyframe of a shape: ``N`` anchors ``points``, and for each anchor
its incoming (``left``) and outgoing (``right``) tangent handles as offsets *relative to the
anchor* — the convention Nuke, Fusion and After Effects all use. Segment ``i`` runs from anchor
``i`` to anchor ``i + 1`` (closing back to anchor 0) with control points
``points[i] + right[i]`` and ``points[i+1] + left[i+1]``.

A :class:`Shape` keeps the same anchor count on every key, with anchor ``k`` on every key
being the same physical point of the object (correspondence), so a host interpolating between
keys moves points along with the object instead of sliding them round the outline.

``feather`` is the width in pixels over which the matte goes from 0 to 1 across the edge,
centred on the curve (the curve is the matte's 0.5 iso-line). 0 means a hard edge.

Standard library at import; numpy on use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

FORMAT_VERSION = 1


@dataclass
class BezierKey:
    """One keyframe of a closed Bézier shape (arrays are float64 ``(N, 2)``, ``corner`` bool ``(N,)``)."""

    points: np.ndarray
    left: np.ndarray
    right: np.ndarray
    corner: np.ndarray
    error: float = 0.0  # max distance (px) between the matte's iso-line and this key's curve, when fitted

    def __post_init__(self) -> None:
        import numpy as np

        self.points = np.asarray(self.points, np.float64).reshape(-1, 2)
        n = len(self.points)
        self.left = np.asarray(self.left, np.float64).reshape(n, 2)
        self.right = np.asarray(self.right, np.float64).reshape(n, 2)
        self.corner = np.asarray(self.corner, bool).reshape(n)

    @property
    def n(self) -> int:
        return len(self.points)

    def segments(self) -> np.ndarray:
        """``(N, 4, 2)`` control points of the N cubic segments (closed)."""
        import numpy as np

        p0 = self.points
        p3 = np.roll(self.points, -1, axis=0)
        return np.stack([p0, p0 + self.right, p3 + np.roll(self.left, -1, axis=0), p3], axis=1)

    def copy(self) -> BezierKey:
        return BezierKey(self.points.copy(), self.left.copy(), self.right.copy(), self.corner.copy(), self.error)

    def transformed(self, fn) -> BezierKey:
        """A copy with ``fn`` (``(M, 2) -> (M, 2)``, affine) applied to anchors and handle ends."""
        import numpy as np

        pts = fn(self.points)
        left = fn(self.points + self.left) - pts
        right = fn(self.points + self.right) - pts
        return BezierKey(np.asarray(pts), np.asarray(left), np.asarray(right), self.corner.copy(), self.error)

    def to_dict(self) -> dict[str, Any]:
        r = lambda a: [[round(float(x), 4), round(float(y), 4)] for x, y in a]  # noqa: E731
        return {"points": r(self.points), "left": r(self.left), "right": r(self.right),
                "corner": [bool(c) for c in self.corner], "error": round(float(self.error), 4)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BezierKey:
        n = len(d["points"])
        return cls(d["points"], d.get("left") or [[0, 0]] * n, d.get("right") or [[0, 0]] * n,
                   d.get("corner") or [False] * n, float(d.get("error", 0.0)))


def lerp_keys(a: BezierKey, b: BezierKey, t: float) -> BezierKey:
    """Linear interpolation of two keys with the same anchor count (``t`` in [0, 1])."""
    return BezierKey((1 - t) * a.points + t * b.points, (1 - t) * a.left + t * b.left,
                     (1 - t) * a.right + t * b.right, a.corner | b.corner, max(a.error, b.error))


@dataclass
class Shape:
    """One animated closed shape of an object, alive from ``first`` to ``last`` (plate frames).

    ``hole`` shapes are subtracted from the object's other shapes. ``keys`` maps plate frame
    numbers to :class:`BezierKey`; between keys a shape is interpolated linearly, before its
    first key and after its last it holds them (but it only exists within its lifetime).
    """

    name: str
    keys: dict[int, BezierKey]
    first: int
    last: int
    hole: bool = False
    feather: float = 0.0
    object_id: int = 0
    object_name: str = ""
    parent: str | None = None  # for holes: the outer shape they belong to (same object)
    notes: list[str] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return next(iter(self.keys.values())).n if self.keys else 0

    @property
    def key_frames(self) -> list[int]:
        return sorted(self.keys)

    def alive(self, frame: int) -> bool:
        return self.first <= int(frame) <= self.last

    def at(self, frame: float) -> BezierKey | None:
        """The shape on ``frame`` (interpolated between keys), or None outside its lifetime."""
        if not self.keys or not (self.first <= frame <= self.last):
            return None
        frames = self.key_frames
        if frame <= frames[0]:
            return self.keys[frames[0]]
        if frame >= frames[-1]:
            return self.keys[frames[-1]]
        import bisect

        i = bisect.bisect_right(frames, frame)
        f0, f1 = frames[i - 1], frames[i]
        if f0 == frame:
            return self.keys[f0]
        return lerp_keys(self.keys[f0], self.keys[f1], (frame - f0) / (f1 - f0))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "first": self.first, "last": self.last, "hole": self.hole,
                "feather": round(float(self.feather), 4), "object_id": self.object_id,
                "object_name": self.object_name, "parent": self.parent, "notes": list(self.notes),
                "keys": {str(f): k.to_dict() for f, k in sorted(self.keys.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Shape:
        keys = {int(f): BezierKey.from_dict(k) for f, k in d["keys"].items()}
        return cls(str(d["name"]), keys, int(d["first"]), int(d["last"]), bool(d.get("hole", False)),
                   float(d.get("feather", 0.0)), int(d.get("object_id", 0)), str(d.get("object_name", "")),
                   d.get("parent"), list(d.get("notes", [])))


@dataclass
class ShapeSet:
    """Every shape of a session (or of an imported script), with the plate facts hosts need."""

    width: int
    height: int
    first: int
    last: int
    fps: str = "24/1"
    shapes: list[Shape] = field(default_factory=list)
    plate: str | None = None  # the plate's path pattern (sequence with ####, or a movie)
    objects: dict[int, str] = field(default_factory=dict)  # object id -> name, in order
    pixel_aspect: float = 1.0
    settings: dict[str, Any] = field(default_factory=dict)  # how the shapes were made (tolerance, points…)
    report: dict[str, Any] = field(default_factory=dict)  # measured fidelity, per object

    @property
    def fps_float(self) -> float:
        from fractions import Fraction

        try:
            return float(Fraction(str(self.fps)))
        except (ValueError, ZeroDivisionError):
            return 24.0

    def of_object(self, oid: int) -> list[Shape]:
        return [s for s in self.shapes if s.object_id == oid]

    def object_ids(self) -> list[int]:
        ids = list(self.objects)
        for s in self.shapes:
            if s.object_id not in ids:
                ids.append(s.object_id)
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {"format": "roto-shapes", "version": FORMAT_VERSION, "width": self.width, "height": self.height,
                "first": self.first, "last": self.last, "fps": str(self.fps), "plate": self.plate,
                "pixel_aspect": self.pixel_aspect,
                "objects": {str(k): v for k, v in self.objects.items()}, "settings": self.settings,
                "report": self.report, "shapes": [s.to_dict() for s in self.shapes]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShapeSet:
        return cls(int(d["width"]), int(d["height"]), int(d["first"]), int(d["last"]), str(d.get("fps", "24/1")),
                   [Shape.from_dict(s) for s in d.get("shapes", [])], d.get("plate"),
                   {int(k): str(v) for k, v in (d.get("objects") or {}).items()},
                   float(d.get("pixel_aspect", 1.0)), dict(d.get("settings") or {}), dict(d.get("report") or {}))

    def save(self, path: str | Path) -> Path:
        from engine.util.atomic import write_text

        write_text(path, json.dumps(self.to_dict(), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ShapeSet:
        from engine.errors import InputError

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"the shapes file cannot be read ({exc})", path=str(path)) from exc
        if data.get("format") != "roto-shapes":
            raise InputError("this is not a shapes file written by `roto shapes`", path=str(path))
        return cls.from_dict(data)
