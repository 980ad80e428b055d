"""Nuke ``.nk`` script: the plate, Roto nodes with animated shapes, and the matte EXR with Cryptomatte.

Opening the script shows the result: ``Switch`` input 0 is the plate with the shapes' alpha
(premultiplied), input 1 the same plate with the delivered matte EXR's Cryptomatte alpha, so
the artist flips between the editable shapes and the matte they came from.

Roto nodes follow the syntax Nuke 13.2 writes (studied on public scripts, see
``docs/formats/nuke-roto.md``): the ``curves`` knob holds one ``curvegroup`` per shape, each
control point as three (x, y) pairs — left tangent (relative), position, right tangent
(relative) — in Nuke's **bottom-left origin** (``y_nuke = height - y``). One key:
``{px FRAME {x y} …}``; several: ``{px {f1 f2 …} {{x1 x2 …} {y1 y2 …}} …}`` with constant
channels collapsed to one value. Floats are IEEE float32 bits in hex (``x43a00000``).

Feather: the engine's curve is the matte's 0.5 line with a ramp ``feather`` px wide across it;
Nuke feathers outwards from the shape, so the written shape is the engine's curve moved in by
half the feather and the shape's feather attribute (``fx``/``fy``) is the full width — the 0.5
line lands where the matte's was. Lifetime: attributes ``ltt 4`` (frame range), ``ltn``/``ltm``.

Layouts (like Silhouette's Nuke export): ``object`` (one Roto per object, the default),
``shape`` (one Roto per shape) or ``single`` (one Roto for every object). Holes go to their own
Roto and are cut out with a ``Merge2`` (stencil); objects are combined with ``Merge2`` (max).

Every knob is written on one line (Nuke reads either; line-based readers such as ``nkparser``
need it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.export.hostfiles.common import frame_pattern, hex_float, host_name, offset_key, tcl_quote, unique_names
from engine.shapes.model import BezierKey, Shape, ShapeSet

LAYOUTS = ("object", "shape", "single")
NUKE_VERSION_LINE = "version 13.0 v1"
_LAYER_ATTRS = ("pt1x 0 pt1y 0 pt2x 0 pt2y 0 pt3x 0 pt3y 0 pt4x 0 pt4y 0 ptex00 0 ptex01 0 ptex02 0 ptex03 0 "
                "ptex10 0 ptex11 0 ptex12 0 ptex13 0 ptex20 0 ptex21 0 ptex22 0 ptex23 0 ptex30 0 ptex31 0 "
                "ptex32 0 ptex33 0 ptof1x 0 ptof1y 0 ptof2x 0 ptof2y 0 ptof3x 0 ptof3y 0 ptof4x 0 ptof4y 0 "
                "pterr 0 ptrefset 0 ptmot x40800000 ptref 0")


def _fmt_float(v: float) -> str:
    return f"{float(v):.6g}"


def format_knob(w: int, h: int, aspect: float = 1.0) -> str:
    return f'"{w} {h} 0 0 {w} {h} {_fmt_float(aspect)} roto_{w}x{h}"'


def _to_nuke(key: BezierKey, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors, left and right tangents in Nuke's bottom-left coordinates."""
    flip = np.array([1.0, -1.0])
    pts = np.stack([key.points[:, 0], height - key.points[:, 1]], axis=1)
    return pts, key.left * flip, key.right * flip


def _channel(values: list[float]) -> str:
    if all(v == values[0] for v in values):
        return "{" + hex_float(values[0]) + "}"
    return "{" + " ".join(hex_float(v) for v in values) + "}"


def curvegroup(shape: Shape, name: str, width: int, height: int, first: int, last: int) -> str:
    """One ``{curvegroup …}`` element of a Roto ``curves`` knob."""
    frames = shape.key_frames
    keys = [shape.keys[f] for f in frames]
    if shape.feather > 0:
        keys = [offset_key(k, -0.5 * shape.feather) for k in keys]
    conv = [_to_nuke(k, height) for k in keys]
    n = keys[0].n
    entries: list[str] = []
    if len(frames) == 1:
        pts, left, right = conv[0]
        for i in range(n):
            for v in (left[i], pts[i], right[i]):
                entries.append("{" + hex_float(v[0]) + " " + hex_float(v[1]) + "}")
        px = "{px " + hex_float(frames[0]) + " " + " ".join(entries) + "}"
    else:
        for i in range(n):
            for part in range(3):
                arr = [(c[1], c[0], c[2])[part] for c in conv]  # left, point, right
                xs = [float(a[i, 0]) for a in arr]
                ys = [float(a[i, 1]) for a in arr]
                entries.append("{" + _channel(xs) + " " + _channel(ys) + "}")
        px = "{px {" + " ".join(hex_float(f) for f in frames) + "} " + " ".join(entries) + "}"
    centre = conv[0][0].mean(axis=0)
    attrs = ["osw x41200000", "osf 0", "str 1", f"spx {hex_float(width / 2)}", f"spy {hex_float(height / 2)}", "sb 1"]
    if shape.first > first or shape.last < last:
        attrs += [f"ltn {hex_float(shape.first)}", f"ltm {hex_float(shape.last)}", "ltt 4"]
    attrs.append("tt x40800000")
    if shape.feather > 0:
        attrs += [f"fx {hex_float(shape.feather)}", f"fy {hex_float(shape.feather)}"]
    return (f"{{curvegroup {name} 512 bezier {{{{cc {{f 8192}} {px}}} idem}} "
            f"{{tx {hex_float(frames[0])} {hex_float(centre[0])} {hex_float(centre[1])}}} "
            f"{{a {' '.join(attrs)}}}}}")


def curves_knob(shapes: list[tuple[Shape, str]], width: int, height: int, first: int, last: int) -> str:
    """The value of a Roto ``curves`` knob holding ``shapes`` (with their written names)."""
    groups = " ".join(curvegroup(s, n, width, height, first, last) for s, n in shapes)
    root = (f"{{layer Root {{f 2097152}} {{t {hex_float(width / 2)} {hex_float(height / 2)}}} "
            f"{{a {_LAYER_ATTRS}}}" + (f" {groups}" if groups else "") + "}")
    return f"{{{{{{v x3f99999a}} {{f 0}} {{n {root}}}}}}}"


class _Script:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.y = -400

    def node(self, cls: str, knobs: list[tuple[str, Any]], x: int = 0, dy: int = 60) -> None:
        self.y += dy
        body = [f" {k} {v}" for k, v in knobs]
        body += [f" xpos {x}", f" ypos {self.y}"]
        self.lines.append(cls + " {")
        self.lines.extend(body)
        self.lines.append("}")

    def raw(self, text: str) -> None:
        self.lines.append(text)


def _crypto_list(names: list[str]) -> str:
    # Cryptomatte's matteList: names separated by ", "; commas and backslashes inside a name escaped
    return ", ".join(n.replace("\\", "\\\\").replace(",", "\\,") for n in names)


def write_nuke(shapes: ShapeSet, out: str | Path, *, matte_pattern: str | None = None, layout: str = "object",
               crypto_layer: str = "CryptoObject", plate: str | None = None, script_name: str | None = None) -> Path:
    """Write the Nuke script for ``shapes`` to ``out`` (atomically); returns the path."""
    from engine.util.atomic import write_text

    if layout not in LAYOUTS:
        raise InputError(f"unknown Nuke layout {layout!r}", hint=f"Choose one of: {', '.join(LAYOUTS)}")
    w, h = int(shapes.width), int(shapes.height)
    first, last = int(shapes.first), int(shapes.last)
    fmt = format_knob(w, h, shapes.pixel_aspect)
    out = Path(out)
    sc = _Script()
    sc.raw("#! nuke -nx")
    sc.raw(f"# Written by Ultimate Rotoscopy (roto shapes): {len(shapes.shapes)} shapes, frames {first}-{last}")
    sc.raw(NUKE_VERSION_LINE)
    fps = _fmt_float(shapes.fps_float)
    sc.raw("Root {")
    for k, v in (("inputs", 0), ("name", tcl_quote(str(script_name or out.resolve()).replace("\\", "/"))),
                 ("frame", first), ("first_frame", first), ("last_frame", last), ("lock_range", "true"),
                 ("fps", fps), ("format", fmt)):
        sc.raw(f" {k} {v}")
    sc.raw("}")
    plate_path = frame_pattern(plate or shapes.plate)
    read_knobs: list[tuple[str, Any]] = [("inputs", 0)]
    if plate_path:
        read_knobs.append(("file", tcl_quote(plate_path)))
    read_knobs += [("format", fmt), ("first", first), ("last", last), ("origfirst", first), ("origlast", last),
                   ("origset", "true"), ("on_error", "black"), ("name", "Plate")]
    sc.node("Read", read_knobs)
    sc.raw("set Nplate [stack 0]")

    # --- shapes, grouped into Roto nodes ---
    names = unique_names([host_name(s.name, "shape") for s in shapes.shapes])
    named = list(zip(shapes.shapes, names))
    obj_ids = [o for o in shapes.object_ids() if any(s.object_id == o for s in shapes.shapes)]
    groups: list[tuple[str, list[tuple[Shape, str]], list[tuple[Shape, str]]]] = []
    if layout == "single":
        groups.append(("Shapes", [x for x in named if not x[0].hole], [x for x in named if x[0].hole]))
    else:
        for oid in obj_ids:
            oname = host_name(shapes.objects.get(oid, f"object{oid}"), f"object{oid}")
            outer = [x for x in named if x[0].object_id == oid and not x[0].hole]
            holes = [x for x in named if x[0].object_id == oid and x[0].hole]
            groups.append((oname, outer, holes))
    x = 0
    results = 0
    for gname, outer, holes in groups:
        if not outer:
            continue
        sc.y = -340
        x += 160
        if holes:
            _roto_nodes(sc, holes, f"{gname}_holes", layout, w, h, first, last, x + 110)
        _roto_nodes(sc, outer, gname, layout, w, h, first, last, x)
        if holes:
            sc.node("Merge2", [("inputs", 2), ("operation", "stencil"), ("name", f"{gname}_cut")], x)
        results += 1
        if results > 1:
            sc.node("Merge2", [("inputs", 2), ("operation", "max"), ("name", f"Combine_{gname}")], x)
    if results == 0:
        sc.node("Roto", [("inputs", 0), ("output", "alpha"), ("curves", curves_knob([], w, h, first, last)),
                         ("name", "Shapes")], x)
    sc.y = max(sc.y, 0)
    sc.raw("push $Nplate")
    sc.node("Copy", [("inputs", 2), ("from0", "rgba.alpha"), ("to0", "rgba.alpha"), ("name", "ShapesAlpha")], x)
    sc.node("Premult", [("name", "ShapesPremult")], x)
    sc.raw("set Nshapes [stack 0]")
    if matte_pattern:
        mx = x + 300
        y0 = sc.y
        sc.y = -400
        sc.node("Read", [("inputs", 0), ("file", tcl_quote(frame_pattern(matte_pattern) or "")), ("format", fmt),
                         ("first", first), ("last", last), ("origfirst", first), ("origlast", last),
                         ("origset", "true"), ("raw", "true"), ("on_error", "black"), ("name", "Mattes")], mx)
        objs = [shapes.objects.get(o, f"object{o}") for o in obj_ids] or list(shapes.objects.values())
        sc.node("Cryptomatte", [("matteList", tcl_quote(_crypto_list(objs))), ("cryptoLayer", tcl_quote(crypto_layer)),
                                ("name", "MattesCryptomatte")], mx)
        sc.y = y0 - 60
        sc.raw("push $Nplate")
        sc.node("Copy", [("inputs", 2), ("from0", "rgba.alpha"), ("to0", "rgba.alpha"), ("name", "MattesAlpha")], mx)
        sc.node("Premult", [("name", "MattesPremult")], mx)
        sc.raw("set Nmattes [stack 0]")
        sc.raw("push $Nmattes")
        sc.raw("push $Nshapes")
        sc.node("Switch", [("inputs", 2), ("which", 0), ("label", tcl_quote("0 shapes, 1 matte EXR")),
                           ("name", "ShapesOrMatte")], x)
    # Nuke connects a Viewer to the node above it; "inputs 1" says so for readers that assume 0
    sc.node("Viewer", [("inputs", 1), ("frame_range", f"{first}-{last}"), ("name", "Viewer1")], x)
    text = "\n".join(sc.lines) + "\n"
    write_text(out, text)
    return out


def _roto_nodes(sc: _Script, items: list[tuple[Shape, str]], name: str, layout: str, w: int, h: int,
                first: int, last: int, x: int) -> None:
    """Roto node(s) for ``items``; leaves exactly one image (their union) on the stack."""
    if layout != "shape" or len(items) == 1:
        sc.node("Roto", [("inputs", 0), ("output", "alpha"), ("curves", curves_knob(items, w, h, first, last)),
                         ("name", name)], x)
        return
    for i, item in enumerate(items):
        sc.node("Roto", [("inputs", 0), ("output", "alpha"), ("curves", curves_knob([item], w, h, first, last)),
                         ("name", f"{name}_{item[1]}")], x)
        if i:
            sc.node("Merge2", [("inputs", 2), ("operation", "max"), ("name", f"{name}_{item[1]}_max")], x)
