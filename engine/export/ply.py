"""Binary PLY point clouds (little-endian), with colour and optional normals; and a reader for them.

Layout written (one ``vertex`` element, the properties every point-cloud tool reads —
Houdini, Blender, MeshLab, CloudCompare, Open3D, Nuke 14+ ``ReadGeo`` via USD plug-ins)::

    ply
    format binary_little_endian 1.0
    comment <free text: source, frame(s), coordinate frame, units>
    element vertex N
    property float x / y / z
    [property float nx / ny / nz]
    [property uchar red / green / blue]
    end_header
    <N packed records>

Written atomically. :func:`read_ply` reads back binary little/big-endian and ASCII vertex-only
files with scalar properties (what this module writes, and most point-cloud exports).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.util.atomic import atomic_path

__all__ = ["write_ply", "read_ply"]

_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
          "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
          "double": "f8", "float64": "f8"}


def write_ply(path: str | os.PathLike[str], points: np.ndarray, colours: np.ndarray | None = None,
              normals: np.ndarray | None = None, *, comments: list[str] | tuple[str, ...] = ()) -> Path:
    """Write points (N, 3) (+ colours (N, 3) uint8, normals (N, 3)) as a binary little-endian PLY."""
    P = np.asarray(points, np.float32).reshape(-1, 3)
    n = len(P)
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        N = np.asarray(normals, np.float32).reshape(-1, 3)
        if len(N) != n:
            raise InputError(f"{len(N)} normals for {n} points")
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colours is not None:
        C = np.asarray(colours)
        if C.dtype != np.uint8:
            C = np.clip(np.rint(np.clip(C.astype(np.float64), 0, 1) * 255), 0, 255).astype(np.uint8)
        C = C.reshape(-1, C.shape[-1])[:, :3]
        if len(C) != n:
            raise InputError(f"{len(C)} colours for {n} points")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["x"], rec["y"], rec["z"] = P[:, 0], P[:, 1], P[:, 2]
    if normals is not None:
        rec["nx"], rec["ny"], rec["nz"] = N[:, 0], N[:, 1], N[:, 2]
    if colours is not None:
        rec["red"], rec["green"], rec["blue"] = C[:, 0], C[:, 1], C[:, 2]
    lines = ["ply", "format binary_little_endian 1.0"]
    for c in comments:
        lines.append("comment " + " ".join(str(c).split()))
    lines.append(f"element vertex {n}")
    names = {"f4": "float", "u1": "uchar"}
    for name, t in fields:
        lines.append(f"property {names[t.lstrip('<')]} {name}")
    lines.append("end_header")
    header = ("\n".join(lines) + "\n").encode("ascii", "replace")
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(rec.tobytes())
    return target


def read_ply(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"points": (N, 3) float32, "colours": (N, 3) uint8 or None, "normals": (N, 3) or None,
    "comments": [...], "format": ..., "properties": [...]}`` of a vertex-only PLY."""
    p = Path(path)
    data = p.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise InputError("not a PLY file", path=str(p))
    nl = data.find(b"\n", end)
    header = data[:nl].decode("ascii", "replace").splitlines()
    body = data[nl + 1:]
    fmt, comments, props, count, element = "", [], [], 0, None
    for line in header[1:]:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "comment":
            comments.append(line[len("comment "):])
        elif parts[0] == "element":
            element = parts[1]
            if element == "vertex":
                count = int(parts[2])
            elif int(parts[2]) > 0:
                raise InputError(f"PLY element {element!r} is not supported (vertex-only files)", path=str(p))
        elif parts[0] == "property" and element == "vertex":
            if parts[1] == "list":
                raise InputError("PLY list properties are not supported", path=str(p))
            props.append((parts[2], _TYPES[parts[1]]))
    if fmt == "ascii":
        arr = np.loadtxt(body.decode("ascii").splitlines(), ndmin=2)[:count]
        rec = {name: arr[:, i] for i, (name, _t) in enumerate(props)}
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        dt = np.dtype([(name, order + t if t not in ("i1", "u1") else t) for name, t in props])
        arr = np.frombuffer(body, dtype=dt, count=count)
        rec = {name: arr[name] for name, _t in props}
    names = [n for n, _ in props]
    out: dict[str, Any] = {"points": np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32),
                           "colours": None, "normals": None, "comments": comments, "format": fmt, "properties": names}
    if all(k in rec for k in ("red", "green", "blue")):
        out["colours"] = np.stack([rec["red"], rec["green"], rec["blue"]], axis=1).astype(np.uint8)
    if all(k in rec for k in ("nx", "ny", "nz")):
        out["normals"] = np.stack([rec["nx"], rec["ny"], rec["nz"]], axis=1).astype(np.float32)
    return out
