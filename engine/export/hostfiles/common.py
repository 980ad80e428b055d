"""What the host writers share: path spelling, names, Tcl quoting, offset curves for feather."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.shapes.model import BezierKey, Shape, ShapeSet

__all__ = ["host_name", "unique_names", "frame_pattern", "tcl_quote", "offset_key", "key_orientation",
           "hex_float", "shape_label", "absolute_path", "frame_file", "flame_sequence", "is_sequence"]


def host_name(name: str, fallback: str = "shape") -> str:
    """A node/tool/mask name every host accepts: ASCII letters, digits and ``_``, not starting with a digit."""
    from engine.export.naming import host_safe

    n = host_safe(name, fallback)
    return n if not n[0].isdigit() else f"_{n}"


def unique_names(names: list[str]) -> list[str]:
    out, used = [], set()
    for n in names:
        base, cand, i = n, n, 2
        while cand.lower() in used:
            cand, i = f"{base}_{i}", i + 1
        used.add(cand.lower())
        out.append(cand)
    return out


def shape_label(shape: Shape) -> str:
    return host_name(shape.name, "shape")


def frame_pattern(path: str | None, style: str = "hash") -> str | None:
    """A sequence path in the host's spelling: ``####`` (``hash``) or ``%04d`` (``printf``).

    ``@@@@`` and ``%0Nd`` are converted; a single file or a movie is returned unchanged.
    Backslashes become forward slashes (every host reads them).
    """
    if not path:
        return path
    p = str(path).replace("\\", "/")

    def hashes(n: int) -> str:
        return "#" * n if style == "hash" else f"%0{n}d"

    p = re.sub(r"@+", lambda m: hashes(len(m.group(0))), p)
    p = re.sub(r"%0?(\d*)d", lambda m: hashes(int(m.group(1) or 1)), p)
    if style == "printf":
        p = re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", p)
    return p


def absolute_path(path: str | None) -> str | None:
    """``path`` made absolute (against the current folder, where the user typed it), with forward
    slashes, so a host script opens from anywhere. Frame tokens (``####``, ``%04d``) are kept."""
    if not path:
        return path
    import os

    return os.path.abspath(os.path.expanduser(str(path))).replace("\\", "/")


def is_sequence(path: str | None) -> bool:
    """True when ``path`` holds a frame token (``#``, ``@`` or ``%0Nd``) in its file name."""
    from engine.media.sequence import is_pattern

    return bool(path and is_pattern(str(path).replace("\\", "/")))


def _fill_frame_token(path: str | None, fill: Callable[[int], str]) -> str | None:
    """``path`` in the ``####`` spelling with its frame token replaced by ``fill(digits)``; a movie or
    a single file unchanged."""
    if not path or not is_sequence(path):
        return path
    p = frame_pattern(path, "hash") or ""
    head, _, name = p.rpartition("/")
    name = re.sub(r"#+", lambda m: fill(len(m.group(0))), name, count=1)
    return f"{head}/{name}" if head or p.startswith("/") else name


def frame_file(path: str | None, frame: int) -> str | None:
    """The file of ``frame`` in a sequence pattern (``/a/shot.####.exr`` → ``/a/shot.1001.exr``); a
    movie or a single file unchanged."""
    sign = "-" if frame < 0 else ""
    return _fill_frame_token(path, lambda n: f"{sign}{abs(int(frame)):0{n}d}")


def flame_sequence(path: str | None, first: int, last: int) -> str | None:
    """A sequence in Flame's own spelling, ``/a/shot.[1001-1030].exr`` (what ``flame.import_clips``
    reads); a movie or a single file unchanged."""
    return _fill_frame_token(path, lambda n: f"[{int(first):0{n}d}-{int(last):0{n}d}]")


_TCL_SAFE = re.compile(r"^[A-Za-z0-9_./:#%+\-=,@]+$")


def tcl_quote(text: str) -> str:
    """A Tcl word for ``text``: bare when safe, else double-quoted with ``\\ " [ ] $`` escaped."""
    s = str(text)
    if s and _TCL_SAFE.match(s):
        return s
    esc = s.replace("\\", "\\\\").replace('"', '\\"').replace("[", "\\[").replace("]", "\\]").replace("$", "\\$")
    esc = esc.replace("\n", "\\n")
    return f'"{esc}"'


def hex_float(v: float) -> str:
    """A float as Nuke writes it in Roto curves: ``0``/``1``… for small exact integers, else ``x`` + the
    big-endian IEEE float32 bits in hex."""
    import struct

    f = float(np.float32(v))
    if f == 0.0:
        return "0"
    if f.is_integer() and 0 < f < 10:
        return str(int(f))
    return "x" + struct.pack(">f", f).hex()


def key_orientation(key: BezierKey) -> float:
    """+1 when the key runs counter-clockwise on screen (inside on the left, y down), -1 otherwise."""
    from engine.shapes.bezier import sample_key
    from engine.shapes.contours import polygon_area

    return 1.0 if polygon_area(sample_key(key, 2.0)) >= 0 else -1.0


def offset_key(key: BezierKey, distance: float) -> BezierKey:
    """``key`` moved ``distance`` px outwards (negative: inwards) along its normals.

    Anchors move along the normal (corners along the bisector, mitred up to twice the
    distance); handles are scaled with the length of their segment. Exact for straight edges
    and circles' anchors, close for curves much larger than ``distance``.
    """
    if distance == 0 or key.n < 3:
        return key.copy()
    sign = key_orientation(key)
    p, left, right = key.points, key.left, key.right

    def unit(v):
        n = np.linalg.norm(v, axis=1, keepdims=True)
        return np.where(n > 1e-9, v / np.maximum(n, 1e-9), 0.0)

    prev_p = np.roll(p, 1, axis=0)
    next_p = np.roll(p, -1, axis=0)
    d_out = unit(np.where(np.linalg.norm(right, axis=1, keepdims=True) > 1e-6, right, next_p - p))
    d_in = unit(np.where(np.linalg.norm(left, axis=1, keepdims=True) > 1e-6, -left, p - prev_p))
    # outward normal of a direction (dx, dy) on a screen-CCW curve is (-dy, dx); flip for CW
    n_out = sign * np.stack([-d_out[:, 1], d_out[:, 0]], axis=1)
    n_in = sign * np.stack([-d_in[:, 1], d_in[:, 0]], axis=1)
    bis = unit(n_out + n_in)
    cos_half = np.clip((bis * n_out).sum(axis=1), 0.5, 1.0)  # mitre limited to 2x
    move = bis * (distance / cos_half)[:, None]
    new_p = p + move
    old_len = np.linalg.norm(next_p - p, axis=1)
    new_len = np.linalg.norm(np.roll(new_p, -1, axis=0) - new_p, axis=1)
    scale = np.where(old_len > 1e-9, new_len / np.maximum(old_len, 1e-9), 1.0)
    new_right = right * scale[:, None]
    new_left = left * np.roll(scale, 1)[:, None]
    return BezierKey(new_p, new_left, new_right, key.corner.copy(), key.error)


def default_out_name(shapes: ShapeSet, ext: str) -> str:
    plate = Path(frame_pattern(shapes.plate) or "shapes")
    # the plate's name without frame tokens and separators ("shot_####.exr" -> "shot"); a sequence
    # named only by its numbers ("#####.jpg") takes its folder's name
    stem = re.sub(r"[._\-\s]+$", "", plate.name.split("#")[0].split(".")[0]) or plate.parent.name or "shapes"
    return f"{stem}_shapes{ext}"
