"""After Effects ``.jsx`` (ExtendScript): masks with keyframed paths on the selected layer.

Run it with File > Scripts > Run Script File… with the plate's layer selected in a comp (with no
comp open, the script imports the plate — a sequence from its first file, sequence import on —
into a new comp and masks that layer). For
every shape it adds a mask (``Add``; holes ``Subtract``) whose Mask Path is keyed with
``setValuesAtTimes`` — vertices, in and out tangents (relative to their vertex, like ours),
closed — plus Mask Feather, and Mask Opacity held at 0 outside the shape's lifetime.

The data is the plate's pixels; the script matches it to the comp at run time: coordinates are
scaled from the plate's size to the layer's, and plate frame ``f`` is keyed at
``layer.startTime + (f - first) / rate`` where ``rate`` is the footage's frame rate (the comp's
when the layer has none), so keys land on the layer's own frames whatever the comp's rate.
The script is plain ECMAScript 3 (ExtendScript's language): ``node --check`` parses it.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.export.hostfiles.common import frame_file, frame_pattern, is_sequence, unique_names
from engine.shapes.model import ShapeSet

_SCRIPT = r"""//@target aftereffects
// Ultimate Rotoscopy: editable masks for After Effects (ExtendScript).
// Select the plate's layer in its comp, then File > Scripts > Run Script File...
(function () {
    var DATA = __DATA__;

    function plateRate(layer, comp) {
        if (layer.source && layer.source.frameRate && layer.source.frameRate > 0) {
            return layer.source.frameRate;
        }
        if (comp.frameRate && comp.frameRate > 0) {
            return comp.frameRate;
        }
        return DATA.fps;
    }

    function makeShape(key, sx, sy) {
        var s = new Shape();
        var v = [], it = [], ot = [];
        for (var i = 0; i < key.length; i++) {
            var p = key[i];
            v.push([p[0] * sx, p[1] * sy]);
            it.push([p[2] * sx, p[3] * sy]);
            ot.push([p[4] * sx, p[5] * sy]);
        }
        s.vertices = v;
        s.inTangents = it;
        s.outTangents = ot;
        s.closed = true;
        return s;
    }

    function holdKeys(prop, times, values) {
        for (var i = 0; i < times.length; i++) {
            prop.setValueAtTime(times[i], values[i]);
        }
        for (var k = 1; k <= prop.numKeys; k++) {
            prop.setInterpolationTypeAtKey(k, KeyframeInterpolationType.HOLD, KeyframeInterpolationType.HOLD);
        }
    }

    function importPlate() {
        // No comp open: import the plate (a sequence from its first file) into a new comp whose
        // time 0 is plate frame DATA.first.
        if (!DATA.plate) {
            return null;
        }
        var file = new File(DATA.plate);
        if (!file.exists) {
            return null;
        }
        var io = new ImportOptions(file);
        io.sequence = DATA.plate_sequence ? true : false;
        var item = app.project.importFile(io);
        if (DATA.plate_sequence && item.mainSource) {
            item.mainSource.conformFrameRate = DATA.fps;
        }
        var comp = app.project.items.addComp(item.name, DATA.width, DATA.height, 1,
                                             (DATA.last - DATA.first + 1) / DATA.fps, DATA.fps);
        var layer = comp.layers.add(item);
        layer.startTime = (DATA.plate_first - DATA.first) / DATA.fps;
        comp.openInViewer();
        return layer;
    }

    function run() {
        var comp = app.project.activeItem;
        var layer, base = DATA.first;
        if (!(comp && comp instanceof CompItem)) {
            layer = importPlate();
            if (!layer) {
                alert("Ultimate Rotoscopy: open the comp and select the plate's layer first " +
                      "(the plate " + DATA.plate + " was not found to import).");
                return 0;
            }
            comp = layer.containingComp;
            base = DATA.plate_first;  // the imported footage starts at the sequence's first frame
        } else if (comp.selectedLayers.length < 1) {
            alert("Ultimate Rotoscopy: select the layer that should receive the masks.");
            return 0;
        } else {
            layer = comp.selectedLayers[0];
        }
        var lw = layer.width ? layer.width : comp.width;
        var lh = layer.height ? layer.height : comp.height;
        var sx = lw / DATA.width, sy = lh / DATA.height;
        var rate = plateRate(layer, comp);
        var t0 = layer.startTime + (DATA.first - base) / rate;
        var masks = layer.property("ADBE Mask Parade");
        var made = 0;
        app.beginUndoGroup("Ultimate Rotoscopy masks");
        for (var si = 0; si < DATA.shapes.length; si++) {
            var sh = DATA.shapes[si];
            var mask = masks.addProperty("ADBE Mask Atom");
            mask.name = sh.name;
            mask.maskMode = sh.hole ? MaskMode.SUBTRACT : MaskMode.ADD;
            var path = mask.property("ADBE Mask Shape");
            if (sh.frames.length === 1) {
                path.setValue(makeShape(sh.keys[0], sx, sy));
            } else {
                var times = [], values = [];
                for (var ki = 0; ki < sh.frames.length; ki++) {
                    times.push(t0 + (sh.frames[ki] - DATA.first) / rate);
                    values.push(makeShape(sh.keys[ki], sx, sy));
                }
                path.setValuesAtTimes(times, values);
            }
            if (sh.feather > 0) {
                mask.property("ADBE Mask Feather").setValue([sh.feather * sx, sh.feather * sy]);
            }
            if (sh.first > DATA.first || sh.last < DATA.last) {
                var ot = [], ov = [];
                if (sh.first > DATA.first) {
                    ot.push(t0 + (sh.first - 1 - DATA.first) / rate);
                    ov.push(0);
                }
                ot.push(t0 + (sh.first - DATA.first) / rate);
                ov.push(100);
                if (sh.last < DATA.last) {
                    ot.push(t0 + (sh.last + 1 - DATA.first) / rate);
                    ov.push(0);
                }
                holdKeys(mask.property("ADBE Mask Opacity"), ot, ov);
            }
            made++;
        }
        app.endUndoGroup();
        return made;
    }

    run();
})();
"""


def jsx_data(shapes: ShapeSet) -> dict:
    """The data the script embeds: plate size, rate, range and every shape's keys
    (per key a list of ``[x, y, in_x, in_y, out_x, out_y]`` in plate pixels)."""
    names = unique_names([s.name for s in shapes.shapes])
    out = []
    for s, n in zip(shapes.shapes, names):
        frames = s.key_frames
        keys = []
        for f in frames:
            k = s.keys[f]
            keys.append([[round(float(v), 3) for v in (p[0], p[1], l[0], l[1], r[0], r[1])]
                         for p, l, r in zip(k.points, k.left, k.right)])
        out.append({"name": n, "object": s.object_name, "hole": bool(s.hole), "feather": round(float(s.feather), 3),
                    "first": int(s.first), "last": int(s.last), "frames": [int(f) for f in frames], "keys": keys})
    plate, sequence, plate_first = _plate(shapes)
    return {"width": int(shapes.width), "height": int(shapes.height), "fps": round(shapes.fps_float, 6),
            "first": int(shapes.first), "last": int(shapes.last), "plate": plate, "plate_sequence": sequence,
            "plate_first": plate_first, "plate_pattern": frame_pattern(shapes.plate), "shapes": out}


def _plate(shapes: ShapeSet) -> tuple[str | None, bool, int]:
    """What AE imports: a sequence from its first file on disk (with sequence import on), a movie
    or single image itself; and the plate frame the footage starts with."""
    if not is_sequence(shapes.plate):
        return shapes.plate, False, int(shapes.first)
    first = int(shapes.first)
    try:
        from engine.media.sequence import find_sequence

        first = find_sequence(shapes.plate).first  # AE imports the whole sequence, from its first frame
    except Exception:  # noqa: BLE001 - plate offline: name the range's first frame
        pass
    return frame_file(shapes.plate, first), True, first


def write_ae(shapes: ShapeSet, out: str | Path) -> Path:
    """Write the ``.jsx`` for ``shapes`` to ``out`` (atomically); returns the path."""
    from engine.util.atomic import write_text

    # JSON is valid ES3 object/array literal syntax (ASCII-escaped, so any name is safe)
    data = json.dumps(jsx_data(shapes), ensure_ascii=True, separators=(",", ":"))
    write_text(out, _SCRIPT.replace("__DATA__", data))
    return Path(out)


__all__ = ["write_ae", "jsx_data"]
