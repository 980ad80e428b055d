"""The server's ``shapes`` job kind: editable roto shapes for the hosts, from a session's mattes.

The server finds this module by name (:mod:`engine.server.jobs`): ``PARAMS`` validates the request,
``run`` fits the shapes once (:func:`engine.shapes.track.shapes_from_session`) and writes one file
per requested host into ``out_dir`` (:func:`engine.export.hostfiles.write_host_script`), each
written atomically. The result names the files the way the host adapters read them::

    {"files": {"nuke": ".../shot_shapes.nk", "fusion": "....setting", "ae": "....jsx",
               "flame": "....json" (manifest), "flame_gmask_raw": ["..._obj.raw", ...]},
     "shapes": 3, "objects": ["car", ...], "frames": [1001, 1050], "report": {...}, "notes": [...]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from engine.server.schemas import Frame, ObjectRef, PathStr, Strict

TITLE = "Shapes"
GPU = False

Host = Literal["nuke", "fusion", "ae", "flame"]


class PARAMS(Strict):  # noqa: N801 - the name the server looks for
    """What a host asks for; the defaults are those of ``roto shapes``."""

    out_dir: PathStr
    hosts: Annotated[list[Host], Field(min_length=1, max_length=4)] = ["nuke", "fusion", "ae", "flame"]
    objects: Annotated[list[ObjectRef], Field(max_length=1000)] | None = None
    frames: Annotated[list[Frame], Field(min_length=2, max_length=2)] | None = None
    max_points: Annotated[int, Field(ge=4, le=1000)] = 32
    tolerance: Annotated[float, Field(gt=0, le=100)] = 0.5
    keys: Literal["all", "needed"] = "all"
    holes: bool = True
    mattes: PathStr | None = None  # a delivered matte sequence (shot.####.exr) to load beside the shapes


def run(ctx: Any, p: PARAMS) -> dict[str, Any]:
    from engine.export.hostfiles import write_host_script
    from engine.shapes.track import ShapeOptions, shapes_from_session

    frames = ctx.session.check_range(p.frames) if p.frames else None
    opts = ShapeOptions(tolerance=p.tolerance, max_points=p.max_points, min_points=min(4, p.max_points), keys=p.keys,
                        holes=p.holes)
    shapes = shapes_from_session(ctx.session, ctx.objects(p.objects), options=opts, frames=frames,
                                 progress=ctx.progress, cancel=ctx.cancel)
    out = Path(p.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    notes: list[str] = []
    for host in dict.fromkeys(p.hosts):  # in order, once each
        written = write_host_script(shapes, host, out, matte_pattern=p.mattes)
        files[host] = str(written.path)
        if host == "flame":
            files["flame_gmask_raw"] = [str(f) for f in written.files[1:]]
        notes.extend(n for n in written.notes if n not in notes)
    return {"files": files, "shapes": len(shapes.shapes), "objects": sorted({s.object_name for s in shapes.shapes}),
            "frames": [shapes.first, shapes.last], "report": shapes.report, "notes": notes}
