"""A stand-in job module in the shape of ``engine.shapes.job``: proves a job kind plugs into the
server (and reaches the hosts) without server or host changes. Writes tiny placeholder files."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

TITLE = "Shapes"
GPU = False


class PARAMS(BaseModel):  # noqa: N801 - the name the server looks for
    model_config = ConfigDict(extra="forbid")
    out_dir: str


def run(ctx, params: PARAMS) -> dict:
    out = Path(params.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(ctx.names().values())
    lo, hi = ctx.session.frame_range
    nk = out / "shapes.nk"
    nk.write_text("Roto {\n name RotoAI_shapes\n}\n")
    raw = []
    for name in names:
        p = out / f"{name}.raw"
        p.write_text(f"{hi - lo + 1}\n4\n")
        raw.append(str(p))
    setting = out / "shapes.setting"
    setting.write_text("{ Tools = { } }\n")
    ctx.progress(__import__("engine.util.progress", fromlist=["Progress"]).Progress("shapes", 1, 1))
    return {"files": {"nuke": str(nk), "flame_gmask_raw": raw, "fusion": str(setting)}, "objects": names,
            "frames": [lo, hi]}
