"""Existing roto into a session: Nuke Roto shapes rasterised as keyframes or mask prompts.

:func:`import_nuke_roto` reads a script (:mod:`engine.shapes.nk_reader`), groups its shapes into
session objects — one per Roto node (``by="node"``, default), one per shape (``"shape"``) or
all in one (``"all"``) — and rasterises each object on its shapes' key frames (``frames="keys"``;
a shape without keys counts on its first living frame) or on every frame where a shape lives
(``"all"``). Each mask becomes a locked keyframe (``mode="keyframes"``) or a mask prompt
(``"prompts"``) of the object; propagation then fills the frames between.

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

    def to_dict(self) -> dict[str, Any]:
        return {"script": self.script, "mode": self.mode, "objects": self.objects, "shapes_read": self.shapes_read,
                "shapes_used": self.shapes_used, "notes": self.notes}


def import_nuke_roto(session: Session, script: str | Path, *, mode: str = "keyframes", by: str = "node",
                     object_name: str | None = None, nodes: list[str] | None = None, frames: str = "keys",
                     progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> ImportReport:
    """Rasterise the script's Roto shapes into ``session`` (see the module doc)."""
    from engine.shapes.nk_reader import read_nk
    from engine.shapes.raster import rasterize_frame

    if mode not in MODES:
        raise InputError(f"--as must be one of {', '.join(MODES)}, not {mode!r}")
    if by not in GROUPINGS:
        raise InputError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    if frames not in ("keys", "all"):
        raise InputError(f"frames must be 'keys' or 'all', not {frames!r}")
    nk = read_nk(script, nodes=nodes)
    rep = ImportReport(str(script), mode, shapes_read=len(nk.shapes), notes=list(nk.notes))
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
        usable.append(s)
    if not usable:
        raise InputError("the script has no closed Roto shape to import", path=str(script),
                         hint="Only Roto/RotoPaint Bézier shapes (not paint strokes) can become masks")
    groups: dict[str, list] = defaultdict(list)
    for s in usable:
        key = (object_name or "roto") if by == "all" else (s.node.split(".")[-1] if by == "node" else
                                                           f"{s.node.split('.')[-1]}_{s.name.replace('/', '_')}")
        if object_name and by != "all":
            key = f"{object_name}_{key}"
        groups[key].append(s.to_shape(h, lo, hi, object_name=key))
    total = sum(len(v) for v in groups.values())
    rep.shapes_used = total
    autosave = session.autosave
    session.autosave = False
    done = 0
    try:
        for name, shapes in groups.items():
            wanted: set[int] = set()
            for sh in shapes:
                if frames == "all":
                    wanted.update(range(max(lo, sh.first), min(hi, sh.last) + 1))
                else:
                    wanted.update(f for f in sh.key_frames if sh.alive(f))
                    if not any(sh.alive(f) for f in sh.key_frames) and sh.first <= hi and sh.last >= lo:
                        wanted.add(max(lo, sh.first))
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
