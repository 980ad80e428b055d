"""The built-in job kinds: track, export, matte, qc here; depth and shapes from their own modules.

``matte`` and ``qc`` are offered when :mod:`engine.matting` / :mod:`engine.qc` are part of the
engine; ``depth`` and ``shapes`` are provided by :mod:`engine.depth.job` / :mod:`engine.shapes.job`
(see :mod:`engine.server.jobs` for what such a module provides). An engine without one of those
modules answers ``feature_unavailable`` as data, and hosts show the sentence.
"""

from __future__ import annotations

from typing import Any

from engine.server.jobs import JobContext, JobKind, register_job_kind
from engine.server.schemas import ExportParams, MatteParams, OpenParams, QCParams, TrackParams


def _frames(value: list[int] | None) -> tuple[int, int] | None:
    return None if not value else (int(value[0]), int(value[1]))


# --- track -----------------------------------------------------------------------------------


def run_track(ctx: JobContext, p: TrackParams) -> dict[str, Any]:
    s = ctx.session
    rep = s.propagate(ctx.objects(p.objects), p.direction, _frames(p.frames), around=p.around,
                      progress=ctx.progress, cancel=ctx.cancel)
    names = ctx.names()
    return {"frames_written": rep.frames_written, "runs": rep.runs, "runs_from_cache": rep.runs_from_cache,
            "seconds": round(rep.seconds, 3), "backend": rep.backend, "backend_reason": rep.backend_reason,
            "occluded": {names.get(o, str(o)): frames for o, frames in rep.occluded.items()},
            "range": list(s.frame_range)}


# --- export ----------------------------------------------------------------------------------


def run_export(ctx: JobContext, p: ExportParams) -> dict[str, Any]:
    from engine.export.deliver import ExportOptions, export_session

    s = ctx.session
    opts = ExportOptions(format=p.format, layers=p.layers, objects=p.objects, compression=p.compression,
                         multipart=p.multipart, bit_depth=p.bit_depth, transfer=p.transfer, template=p.template,
                         shot=p.shot, frames=_frames(p.frames), force=p.force, window=p.window)
    rep = export_session(s, p.out_dir, opts, progress=ctx.progress, cancel=ctx.cancel)
    out = rep.to_dict()
    out["frames"] = list(rep.frames)
    out["objects"] = {str(k): v for k, v in ctx.names().items()}
    return out


# --- matte -----------------------------------------------------------------------------------


def run_matte(ctx: JobContext, p: MatteParams) -> dict[str, Any]:
    from pathlib import Path

    from engine.errors import InputError
    from engine.matting.controls import EdgeControls
    from engine.matting.pipeline import matte_session

    s = ctx.session
    controls = EdgeControls(fill_holes=p.fill_holes, min_island=p.min_island, black=p.clip_black, white=p.clip_white,
                            grow=p.grow, feather=p.feather, blur=p.blur, temporal=p.temporal,
                            motion_blur=p.motion_blur)
    if not controls.black < controls.white:
        raise InputError(f"clip_black ({controls.black}) must be below clip_white ({controls.white})")
    options: dict[str, Any] = {"screen": p.screen} if p.backend == "keyer" else {}
    objs = ctx.objects(p.objects)
    sink = None
    patterns: dict[str, str] = {}
    if p.out_dir:
        from engine.matting.outputs import MatteWriter, object_names

        sink = MatteWriter(s, Path(p.out_dir), p.format)
        sink.names = object_names(s, objs or sorted(s.data.objects))
        patterns = {name: sink.pattern(name) for name in sink.names.values()}
    rep = matte_session(s, objs, backend=p.backend, controls=controls, frames=_frames(p.frames), options=options,
                        sink=sink, progress=ctx.progress, cancel=ctx.cancel)
    names = ctx.names()
    return {"backend": rep.backend, "backend_reason": rep.backend_reason, "frames": rep.frames,
            "seconds": round(rep.seconds, 3), "per_object": {names.get(o, str(o)): n for o, n in rep.per_object.items()},
            "patterns": patterns}


# --- qc --------------------------------------------------------------------------------------


def run_qc(ctx: JobContext, p: QCParams) -> dict[str, Any]:
    from engine.qc.report import review_json, summary_lines
    from engine.qc.scores import compute_qc

    s = ctx.session
    res = compute_qc(s, ctx.objects(p.objects), frames=_frames(p.frames), progress=ctx.progress, cancel=ctx.cancel)
    names = ctx.names()
    out = review_json(res, names)
    out["summary"] = summary_lines(res, names)
    return out


register_job_kind(JobKind("track", "Tracking", TrackParams, run_track,
                          description="propagate the keyframes forward, backward or both"))
register_job_kind(JobKind("export", "Export", ExportParams, run_export, gpu=False,
                          paths=lambda p: [(p.out_dir, "output folder")],
                          description="write EXR (mattes, Cryptomatte, AOVs), DPX, PNG or TIFF sequences"))
register_job_kind(JobKind("matte", "Matting", MatteParams, run_matte, requires=("engine.matting.pipeline",),
                          paths=lambda p: [(p.out_dir, "matte folder")] if p.out_dir else [],
                          description="soft alpha from the tracked masks"))
register_job_kind(JobKind("qc", "QC", QCParams, run_qc, gpu=False, requires=("engine.qc.scores",),
                          description="per-frame quality scores and the frames to review"))
register_job_kind(JobKind("depth", "Depth", OpenParams, module="engine.depth.job",
                          description="depth (and normals) per frame"))
register_job_kind(JobKind("shapes", "Shapes", OpenParams, module="engine.shapes.job", gpu=False,
                          description="editable roto shapes for Nuke, Fusion, After Effects and Flame"))
