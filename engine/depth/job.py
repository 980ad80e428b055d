"""The server's ``depth`` job kind: depth (and normals, camera) per frame, stored with the session.

The server finds this module by name (:mod:`engine.server.jobs`). ``run`` estimates depth over the
session's range (or ``frames``) with the estimator the registry picks (``model``, default ``auto``:
Depth Anything 3 when its weights are installed, else the weight-free prior, which says so) and
stores it with the session, so that the export that follows (the hosts run one) writes ``depth.Z``
and ``N.X/Y/Z`` beside the mattes. ``out_dir`` also writes the depth EXRs on their own, as
``roto depth --out`` does. Holds the GPU lock while it runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from engine.server.schemas import Frame, Name, PathStr, Strict

TITLE = "Depth"
GPU = True


class PARAMS(Strict):  # noqa: N801 - the name the server looks for
    model: Name = "auto"
    frames: Annotated[list[Frame], Field(min_length=2, max_length=2)] | None = None
    convention: Literal["distance", "z", "inverse_z"] = "distance"
    normals: bool = True  # with out_dir: write N.X/Y/Z too (the session always keeps what the model gives)
    out_dir: PathStr | None = None
    process_res: Annotated[int, Field(ge=64, le=4096)] | None = None


def run(ctx: Any, p: PARAMS) -> dict[str, Any]:
    from engine.depth.pipeline import run_depth

    s = ctx.session
    lo, hi = s.check_range(p.frames)
    clip = s.clip
    frames = [f for f in clip.frames if lo <= f <= hi]
    rep = run_depth(clip, p.out_dir, model=p.model, process_res=p.process_res, convention=p.convention,
                    normals=p.normals, session=s, frames=frames, progress=ctx.progress, cancel=ctx.cancel)
    out = rep.to_dict()
    out["model"] = rep.run.model
    out["frames"] = [lo, hi]
    if rep.run.model == "prior":
        out["notes"] = list(out.get("notes") or []) + [
            "the prior is a fixed ground-plane layout, not a depth estimate: fetch Depth Anything 3 weights "
            "(roto models fetch da3-small) and run depth again"]
    return out
