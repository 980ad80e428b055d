"""Existing roto into a session: Nuke Roto shapes rasterised as keyframes or mask prompts.

:func:`import_nuke_roto` reads a script (:mod:`engine.shapes.nk_reader`), groups its shapes into
session objects — one per Roto node (``by="node"``, default), one per shape (``"shape"``) or
all in one (``"all"``) — and rasterises each object on its shapes' key frames (``frames="keys"``;
a shape without keys counts on its first living frame) or on every frame where a shape lives
(``"all"``). Each mask becomes a locked keyframe (``mode="keyframes"``) or a mask prompt
(``"prompts"``) of the object; propagation then fills the frames between. ``frame_offset`` shifts
the script's frame numbers (Nuke at 1, plate at 1001: 1000); keys that still fall outside the
session's range are not imported but listed in the report (``out_of_range``).

Shapes are placed with the session plate's height (Nuke's y axis points up); a script whose
Roto format differs from the plate is reported in the notes. Soft (feathered) shapes are cut at
their 0.5 line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session

MODES = ("keyframes", "prompts")
GROUPINGS = ("node", "shape", "all")


@dataclass
class ImportReport:
    script: str
    mode: str
    objects: dict[str, list[int]] = field(default_factory=dict)  # object name -> frames written
    shapes_read: int = 0
    shapes_used: int = 0
    notes: list[str] = field(default_factory=list)
    #: shapes with keys outside the session's range (not imported there): node, shape, the key
    #: range (after the frame offset), the session's range and how many keys were left out
    out_of_range: list[dict[str, Any]] = field(default_factory=list)
    frame_offset: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"script": self.script, "mode": self.mode, "objects": self.objects, "shapes_read": self.shapes_read,
                "shapes_used": self.shapes_used, "frame_offset": self.frame_offset,
                "out_of_range": self.out_of_range, "notes": self.notes}

    def out_of_range_lines(self) -> list[str]:
        """One sentence per shape whose keys lie (partly) outside the session's range."""
        lines = []
        for o in self.out_of_range:
            a, b = o["keys"]
            lo, hi = o["session"]
            what = "none imported" if o["left_out"] == o["total"] else f"{o['left_out']} of {o['total']} not imported"
            line = (f"{o['node']}/{o['shape']}: keys {a}-{b} lie outside the session's range {lo}-{hi} ({what})")
            if o.get("suggest") is not None:
                line += f"; --frame-offset {o['suggest']} would place them on {a + o['suggest']}-{b + o['suggest']}"
            lines.append(line)
        return lines


def _shifted(shape, offset: int):
    """``shape`` (a NukeShape) with its key frames and lifetime moved by ``offset`` frames."""
    import dataclasses

    if not offset:
        return shape
    attrs = dict(shape.attrs)
    for k in ("ltn", "ltm"):
        if k in attrs:
            attrs[k] = attrs[k] + offset
    frames = None if shape.frames is None else [int(f) + offset for f in shape.frames]
    return dataclasses.replace(shape, frames=frames, attrs=attrs)


def import_nuke_roto(session: Session, script: str | Path, *, mode: str = "keyframes", by: str = "node",
                     object_name: str | None = None, nodes: list[str] | None = None, frames: str = "keys",
                     frame_offset: int = 0, progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> ImportReport:
    """Rasterise the script's Roto shapes into ``session`` (see the module doc).

    ``frame_offset`` is added to the script's frame numbers (a Roto keyed from 1 on a plate
    numbered from 1001: 1000). Keys outside the session's range are not imported; they are
    listed in the report's ``out_of_range``.
    """
    from engine.shapes.nk_reader import read_nk
    from engine.shapes.raster import rasterize_frame

    if mode not in MODES:
        raise InputError(f"--as must be one of {', '.join(MODES)}, not {mode!r}")
    if by not in GROUPINGS:
        raise InputError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    if frames not in ("keys", "all"):
        raise InputError(f"frames must be 'keys' or 'all', not {frames!r}")
    nk = read_nk(script, nodes=nodes)
    rep = ImportReport(str(script), mode, shapes_read=len(nk.shapes), notes=list(nk.notes),
                       frame_offset=int(frame_offset))
    h, w = session.shape
    lo, hi = session.frame_range
    for c in sorted({s.format_centre for s in nk.shapes if s.format_centre}):
        if abs(2 * c[0] - w) > 1 or abs(2 * c[1] - h) > 1:
            rep.notes.append(f"the script's Roto format ({2 * c[0]:g}x{2 * c[1]:g}) differs from the plate "
                             f"({w}x{h}); shapes are placed from the bottom-left corner")
    usable = []
    for s in nk.shapes:
        if not s.closed:
            rep.notes.append(f"{s.node}: open curve {s.name} skipped")
            continue
        if s.n_points < 3:
            rep.notes.append(f"{s.node}: {s.name} has {s.n_points} point(s), not an area; skipped")
            continue
        usable.append(_shifted(s, int(frame_offset)))
    if not usable:
        raise InputError("the script has no closed Roto shape to import", path=str(script),
                         hint="Only Roto/RotoPaint Bézier shapes (not paint strokes) can become masks")
    groups: dict[str, list] = defaultdict(list)
    keyed: set[int] = set()  # ids of the engine shapes that come from keyed (animated or single-key) Roto shapes
    for s in usable:
        if s.frames:
            outside = [f for f in s.frames if not lo <= f <= hi]
            if outside:
                a, b = min(s.frames), max(s.frames)
                # every key outside but the keys span fits: the offset that puts the first key on the
                # session's first frame (the option's value, so it includes the offset already given)
                fits = len(outside) == len(s.frames) and b - a <= hi - lo
                rep.out_of_range.append({"node": s.node, "shape": s.name, "keys": [a, b], "session": [lo, hi],
                                         "left_out": len(outside), "total": len(s.frames),
                                         "suggest": int(frame_offset) + lo - a if fits else None})
        key = (object_name or "roto") if by == "all" else (s.node.split(".")[-1] if by == "node" else
                                                           f"{s.node.split('.')[-1]}_{s.name.replace('/', '_')}")
        if object_name and by != "all":
            key = f"{object_name}_{key}"
        sh = s.to_shape(h, lo, hi, object_name=key)
        if s.frames:
            keyed.add(id(sh))
        groups[key].append(sh)
    total = sum(len(v) for v in groups.values())
    rep.shapes_used = total - sum(1 for o in rep.out_of_range if o["left_out"] == o["total"])
    autosave = session.autosave
    session.autosave = False
    done = 0
    try:
        for name, shapes in groups.items():
            # shapes keyed only outside the session's range are reported, never stamped on a frame
            shapes = [sh for sh in shapes if id(sh) not in keyed or any(lo <= f <= hi for f in sh.key_frames)]
            wanted: set[int] = set()
            for sh in shapes:
                in_range = [f for f in sh.key_frames if lo <= f <= hi]
                if frames == "all":
                    wanted.update(range(max(lo, sh.first), min(hi, sh.last) + 1))
                else:
                    wanted.update(f for f in in_range if sh.alive(f))
                    if id(sh) not in keyed and not any(sh.alive(f) for f in sh.key_frames) \
                            and sh.first <= hi and sh.last >= lo:
                        wanted.add(max(lo, sh.first))  # a static (unkeyed) shape: its first living frame
            wanted = {f for f in wanted if lo <= f <= hi}
            if not wanted:
                rep.notes.append(f"{name}: no key frame inside the session's range {lo}-{hi}")
                continue
            try:
                oid = session.object_by_name(name).id
            except Exception:  # noqa: BLE001 - a new object
                oid = session.add_object(name).id
            written = []
            for f in sorted(wanted):
                check_cancel(cancel)
                m = rasterize_frame(shapes, f, (h, w), soft=any(s.feather > 0 for s in shapes))
                m = m >= 0.5 if m.dtype != bool else m
                if not m.any():
                    rep.notes.append(f"{name}: frame {f} is empty (shape outside the image?); skipped")
                    continue
                if mode == "keyframes":
                    session.set_keyframe(oid, f, m)
                else:
                    session.add_mask(oid, f, m)
                written.append(f)
                done += 1
                report(progress, Progress("import roto", done, max(done, total), frame=f))
            rep.objects[name] = written
    finally:
        session.autosave = autosave
        if session.path is not None:
            session.save()
    return rep
