"""Fusion / DaVinci Resolve ``.setting``: PolylineMask tools with animated BezierSpline polylines.

Paste the file into a Fusion comp (or drag it onto the Fusion page's node editor): every shape is
a ``PolylineMask`` whose ``Polyline`` input is driven by a ``BezierSpline`` with one key per
keyframe; an object's masks are chained through their ``EffectMask`` input (holes with
``PaintMode`` ``Subtract``) and end in a ``Background`` (white) showing the object's matte. A
``Plate`` Loader reads the plate, and with ``--mattes`` a ``Loader`` per object reads the matte
EXR sequence with that object's layer as alpha; a Loader names a sequence by its first frame's
file (absolute path) and sits on the global range.

Coordinates: Fusion's normalised polyline space, origin at the image centre, y up:
``X = x / width - 0.5``, ``Y = 0.5 - y / height``; handles (``LX LY``, ``RX RY``) are
offsets relative to their point in the same units. Key times are the plate's frame numbers
plus ``time_offset`` (Resolve's Fusion page usually starts a clip at 0: pass ``-first``).
A shape's lifetime is its mask's ``Level`` stepping between 0 and 1; feather becomes
``SoftEdge`` (its width as a fraction of the image width).
"""

from __future__ import annotations

from pathlib import Path

from engine.export.hostfiles.common import frame_file, host_name, unique_names
from engine.shapes.model import Shape, ShapeSet


def _lua_str(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _num(v: float) -> str:
    return f"{float(v) + 0.0:.9g}"  # no "-0"


def _polyline(shape: Shape, frame: int, w: int, h: int, indent: str) -> str:
    k = shape.keys[frame]
    pts = []
    for (x, y), (lx, ly), (rx, ry) in zip(k.points, k.left, k.right):
        pts.append(f"{indent}\t{{ X = {_num(x / w - 0.5)}, Y = {_num(0.5 - y / h)}, LX = {_num(lx / w)}, "
                   f"LY = {_num(-ly / h)}, RX = {_num(rx / w)}, RY = {_num(-ry / h)} }},")
    return (f"Polyline {{\n{indent}Closed = true,\n{indent}Points = {{\n" + "\n".join(pts) + f"\n{indent}}}\n"
            f"{indent[:-1]}}}")


#: file extension -> the Loader's FormatID
_FORMAT_IDS = {"exr": "OpenEXRFormat", "sxr": "OpenEXRFormat", "dpx": "DPXFormat", "cin": "CineonFormat",
               "png": "PNGFormat", "tif": "TiffFormat", "tiff": "TiffFormat", "jpg": "JpegFormat",
               "jpeg": "JpegFormat", "jpe": "JpegFormat"}


def _loader(name: str, path: str, start: int, end: int, global_start: int, global_end: int, inputs: str,
            x: int) -> str:
    """A ``Loader`` tool: Fusion reads a sequence from its first frame's file name (``start``), placed
    on the global range; a movie from the file itself."""
    first_file = frame_file(path, start) or ""
    n = end - start + 1
    ext = first_file.rsplit(".", 1)[-1].lower() if "." in first_file.rsplit("/", 1)[-1] else ""
    fmt = f'\t\t\t\t\tFormatID = {_lua_str(_FORMAT_IDS[ext])},\n' if ext in _FORMAT_IDS else ""
    return (f"\t\t{name} = Loader {{\n"
            "\t\t\tClips = {\n\t\t\t\tClip {\n"
            '\t\t\t\t\tID = "Clip1",\n'
            f"\t\t\t\t\tFilename = {_lua_str(first_file)},\n"
            + fmt +
            f"\t\t\t\t\tStartFrame = {start},\n"
            f"\t\t\t\t\tLength = {n},\n"
            "\t\t\t\t\tLengthSetManually = true,\n"
            f"\t\t\t\t\tTrimIn = 0,\n\t\t\t\t\tTrimOut = {n - 1},\n"
            "\t\t\t\t\tExtendFirst = 0,\n\t\t\t\t\tExtendLast = 0,\n\t\t\t\t\tLoop = 0,\n"
            "\t\t\t\t\tAspectMode = 0,\n\t\t\t\t\tDepth = 0,\n\t\t\t\t\tTimeCode = 0,\n"
            f"\t\t\t\t\tGlobalStart = {global_start},\n\t\t\t\t\tGlobalEnd = {global_end}\n"
            "\t\t\t\t}\n\t\t\t},\n"
            "\t\t\tInputs = {\n" + inputs + "\t\t\t},\n"
            f"\t\t\tViewInfo = OperatorInfo {{ Pos = {{ {x}, 0 }} }},\n\t\t}},")


def write_fusion(shapes: ShapeSet, out: str | Path, *, matte_pattern: str | None = None, time_offset: int = 0,
                 layer_names: dict[int, str] | None = None) -> Path:
    """Write the ``.setting`` for ``shapes`` to ``out`` (atomically); returns the path.

    ``layer_names`` maps object ids to their layer in the matte EXR (default: the host-safe
    object name, as :mod:`engine.export.naming` makes it).
    """
    from engine.export.naming import layer_names as exr_layer_names
    from engine.util.atomic import write_text

    w, h = int(shapes.width), int(shapes.height)
    first, last = shapes.first + time_offset, shapes.last + time_offset
    names = unique_names([host_name(s.name, "shape") for s in shapes.shapes])
    obj_ids = [o for o in shapes.object_ids() if any(s.object_id == o for s in shapes.shapes)]
    layers = layer_names or exr_layer_names([(o, shapes.objects.get(o, f"object{o}")) for o in shapes.object_ids()])
    tools: list[str] = []
    active = None
    x = 0
    if shapes.plate:
        tools.append(_loader("Plate", shapes.plate, shapes.first, shapes.last, first, last, "", -110))
    for oid in obj_ids:
        oname = host_name(shapes.objects.get(oid, f"object{oid}"), f"object{oid}")
        items = [(s, n) for s, n in zip(shapes.shapes, names) if s.object_id == oid]
        items.sort(key=lambda sn: sn[0].hole)  # outer shapes first, holes subtract from them
        prev = None
        y = 0
        for s, n in items:
            tool = f"{n}_Mask"
            spline = f"{n}_MaskPolyline"
            inputs = []
            if s.feather > 0:
                inputs.append(f"\t\t\t\tSoftEdge = Input {{ Value = {_num(s.feather / w)}, }},")
            inputs += [
                f"\t\t\t\tMaskWidth = Input {{ Value = {w}, }},",
                f"\t\t\t\tMaskHeight = Input {{ Value = {h}, }},",
                "\t\t\t\tPixelAspect = Input { Value = { 1, 1 }, },",
                '\t\t\t\tClippingMode = Input { Value = FuID { "None" }, },',
                f'\t\t\t\tPolyline = Input {{ SourceOp = {_lua_str(spline)}, Source = "Value", }},',
                "\t\t\t\tPolyline2 = Input { Value = Polyline { }, Disabled = true, },",
            ]
            if s.hole:
                inputs.append('\t\t\t\tPaintMode = Input { Value = FuID { "Subtract" }, },')
            if prev is not None:
                inputs.append(f'\t\t\t\tEffectMask = Input {{ SourceOp = {_lua_str(prev)}, Source = "Mask", }},')
            level_tool = None
            if s.first > shapes.first or s.last < shapes.last:
                level_tool = f"{n}_MaskLevel"
                inputs.append(f'\t\t\t\tLevel = Input {{ SourceOp = {_lua_str(level_tool)}, Source = "Value", }},')
            tools.append(f"\t\t{tool} = PolylineMask {{\n"
                         '\t\t\tDrawMode = "InsertAndModify",\n'
                         '\t\t\tDrawMode2 = "InsertAndModify",\n'
                         "\t\t\tInputs = {\n" + "\n".join(inputs) + "\n\t\t\t},\n"
                         f"\t\t\tViewInfo = OperatorInfo {{ Pos = {{ {x}, {y} }} }},\n\t\t}},")
            keys = []
            for f in s.key_frames:
                keys.append(f"\t\t\t\t[{f + time_offset}] = {{ 0, Flags = {{ Linear = true, LockedY = true }}, "
                            f"Value = {_polyline(s, f, w, h, chr(9) * 6)} }},")
            tools.append(f"\t\t{spline} = BezierSpline {{\n"
                         "\t\t\tSplineColor = { Red = 173, Green = 255, Blue = 47 },\n"
                         "\t\t\tNameSet = true,\n"
                         "\t\t\tKeyFrames = {\n" + "\n".join(keys) + "\n\t\t\t}\n\t\t},")
            if level_tool:
                a, b = s.first + time_offset, s.last + time_offset
                pts = []
                if a > first:
                    pts.append((a - 1, 0))
                pts += [(a, 1), (b, 1)]
                if b < last:
                    pts.append((b + 1, 0))
                lk = [f"\t\t\t\t[{t}] = {{ {v}, Flags = {{ Linear = true }} }}," for t, v in pts]
                tools.append(f"\t\t{level_tool} = BezierSpline {{\n"
                             "\t\t\tSplineColor = { Red = 225, Green = 255, Blue = 255 },\n"
                             "\t\t\tNameSet = true,\n"
                             "\t\t\tKeyFrames = {\n" + "\n".join(lk) + "\n\t\t\t}\n\t\t},")
            prev = tool
            active = tool
            y += 33
        if prev is not None:
            tools.append(f"\t\t{oname}_Matte = Background {{\n"
                         "\t\t\tInputs = {\n"
                         f"\t\t\t\tWidth = Input {{ Value = {w}, }},\n"
                         f"\t\t\t\tHeight = Input {{ Value = {h}, }},\n"
                         "\t\t\t\tTopLeftRed = Input { Value = 1, },\n"
                         "\t\t\t\tTopLeftGreen = Input { Value = 1, },\n"
                         "\t\t\t\tTopLeftBlue = Input { Value = 1, },\n"
                         f'\t\t\t\tEffectMask = Input {{ SourceOp = {_lua_str(prev)}, Source = "Mask", }},\n'
                         "\t\t\t},\n"
                         f"\t\t\tViewInfo = OperatorInfo {{ Pos = {{ {x + 110}, {y} }} }},\n\t\t}},")
        if matte_pattern:
            inputs = (f'\t\t\t\t["Clip1.OpenEXRFormat.AlphaName"] = Input {{ Value = FuID {{ '
                      f'{_lua_str(layers.get(oid, oname) + ".A")} }}, }},\n')
            tools.append(_loader(f"{oname}_MatteEXR", matte_pattern, shapes.first, shapes.last, first, last, inputs,
                                 x + 220))
        x += 330
    body = "{\n\tTools = ordered() {\n" + "\n".join(tools) + "\n\t},\n"
    if active:
        body += f"\tActiveTool = {_lua_str(active)}\n"
    body += "}\n"
    write_text(out, body)  # no comment line before the table: Fusion reads a .setting as one Lua table
    return Path(out)


def fusion_to_pixels(x: float, y: float, w: int, h: int) -> tuple[float, float]:
    """Inverse of the writer's mapping (used by tests and importers)."""
    return (x + 0.5) * w, (0.5 - y) * h


__all__ = ["write_fusion", "fusion_to_pixels"]
