"""One call for a shot's depth: estimator → chunked/aligned/smoothed video → files and/or session.

:func:`run_depth` is what ``roto depth`` (and an embedding application) calls. It picks the
estimator (:mod:`engine.depth.registry`), runs :func:`engine.depth.video.estimate_sequence`
over the clip, writes the per-frame EXRs / PLYs / camera (:class:`engine.depth.outputs.DepthWriter`)
when given an output folder, and stores the depth with a session when given one (so
``roto export`` delivers ``depth.Z`` and ``N.X/Y/Z``; :mod:`engine.depth.store`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.depth.outputs import DepthWriter, WrittenDepth
from engine.depth.video import DepthRun, estimate_sequence
from engine.util.progress import CancelToken, ProgressCallback

DEFAULT_TEMPORAL = 0.3


@dataclass
class DepthReport:
    """What :func:`run_depth` did."""

    run: DepthRun
    why: str  # which estimator and why (registry sentence)
    licence: str = ""
    commercial: bool = True
    written: WrittenDepth | None = None
    session_path: str | None = None
    convention: str = "distance"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"why": self.why, "licence": self.licence, "commercial": self.commercial, "convention": self.convention,
                "run": self.run.to_dict(), "written": None if self.written is None else self.written.to_dict(),
                "session": self.session_path, "notes": list(self.notes)}


def run_depth(clip: Any, out_dir: str | Path | None = None, *, model: str = "auto", weights: str | Path | None = None,
              device: str | None = None, precision: str | None = None, process_res: int | None = None,
              chunk: int | None = None, overlap: int | None = None, align: str = "auto",
              temporal: float = DEFAULT_TEMPORAL, intrinsics: np.ndarray | None = None,
              convention: str = "distance", normals: bool = False, points: bool = False, confidence: bool = False,
              points_step: int = 2, session: Any = None, frames: list[int] | None = None,
              estimator: Any = None, mattes: Any = None, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> DepthReport:
    """Depth for ``frames`` (default: the clip's range) of ``clip`` (see the module doc).

    ``estimator`` (an already-built :class:`~engine.depth.base.DepthEstimator`) bypasses the
    registry. ``mattes``: an :class:`engine.depth.outputs.MatteSpec` (depth mattes in the EXRs).
    ``session``: a :class:`~engine.session.session.Session` on the same plate.
    """
    from engine.cache.keys import make_key
    from engine.depth.registry import get_depth_estimator
    from engine.ops.depth_convention import normalise_convention

    conv = normalise_convention(convention)
    if estimator is None:
        opts: dict[str, Any] = {"weights": weights, "device": device, "precision": precision,
                                "process_res": process_res, "chunk": chunk}
        estimator, why = get_depth_estimator(model, **opts)
    else:
        why = f"using {estimator.info.title} (given)"
    info = estimator.info
    frames = list(clip.frames if frames is None else frames)
    run = DepthRun()
    report = DepthReport(run, why, info.licence, info.commercial, convention=conv)
    cam_source = "given" if intrinsics is not None else ("model" if info.camera else "assumed")
    writer = None
    if out_dir is not None:
        writer = DepthWriter(clip, out_dir, frames, convention=conv, normals=normals, points=points,
                             confidence=confidence, model=info.name, kind=info.kind, camera_source=cam_source,
                             points_step=points_step, session_id=getattr(getattr(session, "data", None), "id", ""),
                             mattes=mattes, digits=session.frame_digits if session is not None else 0)
    store = token = None
    if session is not None:
        from engine.depth.store import set_depth_record, store_for

        if tuple(session.shape) != tuple(clip.shape):
            from engine.errors import InputError

            raise InputError(f"the session's plate is {session.shape[1]}x{session.shape[0]}, this clip is "
                             f"{clip.shape[1]}x{clip.shape[0]}", hint="Use the session's own plate")
        settings = {"chunk": chunk, "overlap": overlap, "align": align, "temporal": temporal,
                    "intrinsics": None if intrinsics is None else np.asarray(intrinsics, np.float64).round(9).tolist(),
                    "frames": [frames[0], frames[-1]] if frames else []}
        token = make_key(estimator.token, settings, getattr(clip, "content_id", ""))[:16]
        store = store_for(session)
        set_depth_record(session, {
            "token": token, "model": info.name, "kind": info.kind, "reason": getattr(estimator, "reason", ""),
            "convention": conv, "camera": cam_source, "settings": settings, "licence": info.licence,
            "commercial": info.commercial, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    for out in estimate_sequence(estimator, clip, frames, chunk=chunk, overlap=overlap, align=align, temporal=temporal,
                                 intrinsics=intrinsics, progress=progress, cancel=cancel, run=run):
        if writer is not None:
            writer.write(out)
        if store is not None:
            store.put(int(out.frame), out, token)  # type: ignore[arg-type]
    if writer is not None:
        report.written = writer.finish()
    if session is not None and getattr(session, "path", None) is not None:
        session.save()
        report.session_path = str(session.path)
    report.notes = list(run.notes)
    return report
