"""Depth for a shot: chunked inference with overlap, alignment between chunks, temporal smoothing.

A multi-view model (Depth Anything 3 any-view) is consistent *within* one call — one scale,
one world frame — but a shot is longer than a call can hold, and each call picks its own scale
and world. So:

1. **Chunks** of ``chunk`` frames, consecutive chunks sharing ``overlap`` frames
   (:func:`plan_chunks`; the last chunk is moved back to be full, sharing more).
2. **Scale alignment at each seam**: the new chunk's depth on the shared frames is fitted to
   the already-aligned previous chunk (:func:`engine.ops.depth_align.fit`, robust, weighted by
   the lower of the two confidences) — ``scale`` only for geometric models (a shift would bend
   the geometry), ``scale_shift`` on request or for affine models — and applied to the whole chunk.
3. **Cameras across chunks**: the new chunk's poses (translations scaled by the same factor)
   are re-expressed in the first chunk's world through the shared frames (the average of the
   per-frame similarity transforms), so one world frame holds the whole shot: the first frame
   of the run is the world origin.
4. **Cross-fade** over the shared frames (linear weights) so nothing steps at the seam.
5. **Temporal** (in shot order, optional): single-image relative models are *stabilised*
   (each frame fitted to the motion-compensated previous output); then ``temporal`` > 0 blends
   every pixel towards the motion-compensated previous output where the flow is consistent and
   the two agree (:mod:`engine.ops.depth_temporal`).

:func:`estimate_sequence` yields one :class:`~engine.depth.base.DepthOut` per frame, in order,
holding back only the ``overlap`` frames that the next chunk will refine; a
:class:`DepthRun` collects timings and the seam statistics (jump before/after alignment).
Frames come from a :class:`~engine.backends.base.FrameSource` (``read_working`` for the model,
``read_uint8`` for the flow). Cancellation is checked between chunks and frames.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.depth.base import DepthOut
from engine.ops.depth_align import Alignment, apply, fit
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

ALIGN_MODES = ("auto", "scale", "scale_shift", "none")


@dataclass
class SeamStat:
    """One seam between chunks: the shared frames, the fitted transform, and how far apart the two
    chunks were on the shared frames before and after alignment (median relative difference)."""

    frames: list[int]
    scale: float
    shift: float
    jump_before: float
    jump_after: float

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "scale": self.scale, "shift": self.shift, "jump_before": self.jump_before,
                "jump_after": self.jump_after}


@dataclass
class DepthRun:
    """What a run did (filled in as frames are yielded)."""

    model: str = ""
    reason: str = ""
    kind: str = ""
    frames: int = 0
    chunks: int = 0
    chunk: int = 0
    overlap: int = 0
    align: str = ""
    temporal: float = 0.0
    seconds: float = 0.0
    model_seconds: float = 0.0
    camera: bool = False
    seams: list[SeamStat] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / self.frames if self.frames else 0.0

    @property
    def model_seconds_per_frame(self) -> float:
        return self.model_seconds / self.frames if self.frames else 0.0

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reason": self.reason, "kind": self.kind, "frames": self.frames,
                "chunks": self.chunks, "chunk": self.chunk, "overlap": self.overlap, "align": self.align,
                "temporal": self.temporal, "seconds": round(self.seconds, 3),
                "seconds_per_frame": round(self.seconds_per_frame, 4),
                "model_seconds_per_frame": round(self.model_seconds_per_frame, 4), "camera": self.camera,
                "seams": [s.to_dict() for s in self.seams], "notes": list(self.notes)}


def plan_chunks(n: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges over ``n`` frames: ``chunk`` long, sharing at least ``overlap``.

    The last chunk is moved back so it is full length (it then shares more than ``overlap``).
    """
    if n <= 0:
        return []
    chunk = max(1, int(chunk))
    overlap = max(0, min(int(overlap), chunk - 1))
    if n <= chunk:
        return [(0, n)]
    out: list[tuple[int, int]] = []
    s = 0
    while True:
        e = min(s + chunk, n)
        if e == n and e - s < chunk:
            s = max(out[-1][0] + 1 if out else 0, n - chunk)
        out.append((s, e))
        if e == n:
            return out
        s = e - overlap


def _rel_jump(a: np.ndarray, b: np.ndarray) -> float:
    ok = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float(np.median(np.abs(a[ok] - b[ok]) / b[ok]))


def _chunk_world(prev: list[DepthOut], new: list[DepthOut], scale: float) -> np.ndarray | None:
    """The (4, 4) similarity taking the new chunk's (rescaled) world to the run's world, or None."""
    from engine.ops.camera_geometry import as_4x4, average_rotation, invert_pose

    Gs = []
    for p, q in zip(prev, new):
        if p.extrinsics is None or q.extrinsics is None:
            return None
        Eq = as_4x4(q.extrinsics)
        Eq[:3, 3] *= scale
        Gs.append(invert_pose(as_4x4(p.extrinsics)) @ Eq)
    if not Gs:
        return None
    G = np.eye(4)
    G[:3, :3] = average_rotation([g[:3, :3] for g in Gs])
    G[:3, 3] = np.mean([g[:3, 3] for g in Gs], axis=0)
    return G


class _Temporal:
    """Stateful shot-order pass: stabilisation and/or motion-compensated smoothing."""

    def __init__(self, source: Any, strength: float, stabilise: str | None, flow_scale: float,
                 preset: str = "fast") -> None:
        self.source = source
        self.strength = float(strength)
        self.stabilise = stabilise
        self.flow_scale = flow_scale
        self.preset = preset
        self.prev_img: np.ndarray | None = None
        self.prev_depth: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.strength > 0 or self.stabilise is not None

    def __call__(self, frame: int, out: DepthOut) -> DepthOut:
        if not self.active:
            return out
        from engine.ops.depth_temporal import smooth_step, stabilise_step
        from engine.ops.flow import dis_flow, fb_consistency

        img = self.source.read_uint8(frame)
        d = np.asarray(out.depth, np.float32)
        if self.prev_img is not None and self.prev_depth is not None and self.prev_img.shape == img.shape:
            f_cp = dis_flow(img, self.prev_img, preset=self.preset, scale=self.flow_scale)
            f_pc = dis_flow(self.prev_img, img, preset=self.preset, scale=self.flow_scale)
            consistent, _err = fb_consistency(f_cp, f_pc)
            if self.stabilise is not None:
                d, _ = stabilise_step(d, self.prev_depth, f_cp, consistent, mode=self.stabilise)
            if self.strength > 0:
                d, _ = smooth_step(d, self.prev_depth, f_cp, consistent, strength=self.strength)
        self.prev_img, self.prev_depth = img, d
        out.depth = d
        return out


def _join(prev_sh: list[DepthOut], new_sh: list[DepthOut], outs: list[DepthOut], mode: str, camera: bool,
          run: DepthRun) -> None:
    """Align ``outs`` (a new chunk) to the previous chunk through their shared frames, then cross-fade
    the shared frames (see the module doc, steps 2-4). Modifies ``outs`` in place."""
    from engine.ops.camera_geometry import as_4x4, invert_pose

    pd = np.stack([np.asarray(p.depth, np.float32) for p in prev_sh])
    if mode in ("scale", "scale_shift"):
        nd = np.stack([np.asarray(q.depth, np.float32) for q in new_sh])
        wts = None
        if all(p.confidence is not None for p in prev_sh) and all(q.confidence is not None for q in new_sh):
            wts = np.maximum(np.minimum(np.stack([p.confidence for p in prev_sh]),
                                        np.stack([q.confidence for q in new_sh])), 1e-3)
        a = fit(nd, pd, weights=wts, mode=mode)
        if not (np.isfinite(a.scale) and a.scale > 0):
            a = Alignment(1.0, 0.0, "depth", mode)
            run.note("a seam could not be aligned (no usable shared pixels)")
        jump_before = _rel_jump(nd, pd)
        for o in outs:
            o.depth = apply(o.depth, a)
        jump_after = _rel_jump(np.stack([np.asarray(q.depth) for q in new_sh]), pd)
        if camera:
            G = _chunk_world(prev_sh, new_sh, a.scale)
            if G is None:
                run.note("cameras could not be joined across a seam; later poses are per chunk")
            else:
                Gi = invert_pose(G)
                for o in outs:
                    if o.extrinsics is not None:
                        E = as_4x4(o.extrinsics)
                        E[:3, 3] *= a.scale
                        o.extrinsics = (E @ Gi)[:3]
        run.seams.append(SeamStat([int(p.frame) for p in prev_sh if p.frame is not None], a.scale, a.shift,
                                  jump_before, jump_after))
    shared = len(prev_sh)
    for i, (p, q) in enumerate(zip(prev_sh, new_sh)):
        wq = (i + 1) / (shared + 1)
        pdp, qdq = np.asarray(p.depth, np.float32), np.asarray(q.depth, np.float32)
        both = (pdp > 0) & (qdq > 0)
        q.depth = np.where(both, (1 - wq) * pdp + wq * qdq, np.where(pdp > 0, pdp, qdq)).astype(np.float32)
        if p.confidence is not None and q.confidence is not None:
            q.confidence = ((1 - wq) * p.confidence + wq * q.confidence).astype(np.float32)
        if p.extrinsics is not None:
            q.extrinsics = p.extrinsics
        if q.intrinsics is None:
            q.intrinsics = p.intrinsics


def estimate_sequence(estimator: Any, source: Any, frames: list[int] | range | None = None, *,
                      chunk: int | None = None, overlap: int | None = None, align: str = "auto",
                      temporal: float = 0.0, intrinsics: np.ndarray | None = None, flow_scale: float = 0.5,
                      progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                      run: DepthRun | None = None) -> Iterator[DepthOut]:
    """Depth for ``frames`` of ``source`` in order (see the module doc). ``run`` receives the report."""
    if align not in ALIGN_MODES:
        raise ValueError(f"unknown alignment {align!r}: {', '.join(ALIGN_MODES)}")
    frames = list(source.frames if frames is None else frames)
    info = estimator.info
    run = run if run is not None else DepthRun()
    run.model, run.kind, run.camera = info.name, info.kind, bool(info.camera)
    run.reason = getattr(estimator, "reason", "")
    n = len(frames)
    chunk = int(chunk or info.chunk or 1)
    if info.multiview:
        overlap = max(1, chunk // 4) if overlap is None else int(overlap)
        if chunk > 1:
            overlap = max(1, min(overlap, chunk - 1))
        else:
            overlap = 0
    else:
        overlap = 0  # independent frames: nothing to share; stability comes from the temporal pass
    mode = align
    if align == "auto":
        mode = "scale_shift" if info.kind == "affine" else ("none" if (info.kind == "metric" and not info.multiview)
                                                             else "scale")
    stabilise = None
    if (not info.multiview or overlap == 0) and info.kind != "metric" and mode != "none":
        # nothing shared between calls: each frame is aligned to the motion-compensated previous one
        stabilise = "scale_shift" if mode == "scale_shift" else "scale"
    run.chunk, run.overlap, run.align, run.temporal = chunk, overlap, mode, float(temporal)
    plan = plan_chunks(n, chunk, overlap)
    run.chunks = len(plan)
    post = _Temporal(source, temporal, stabilise, flow_scale)
    t_start = time.monotonic()
    held: list[DepthOut] = []  # aligned tail of the previous chunk, shared with the current one
    done = 0
    for ci, (s, e) in enumerate(plan):
        check_cancel(cancel)
        ids = frames[s:e]
        images = [source.read_working(f) for f in ids]
        t0 = time.perf_counter()
        outs = estimator.estimate(images, intrinsics)
        run.model_seconds += time.perf_counter() - t0
        if len(outs) != len(ids):
            raise RuntimeError(f"the depth model returned {len(outs)} results for {len(ids)} frames")
        for f, o in zip(ids, outs):
            o.frame = f
            for msg in o.notes:
                run.note(msg)
        shared = len(held)
        if shared:
            _join(held, outs[:shared], outs, mode, bool(info.camera), run)
        keep = 0 if ci == len(plan) - 1 else e - plan[ci + 1][0]
        emit_now, held = (outs[:len(outs) - keep], outs[len(outs) - keep:]) if keep else (outs, [])
        for o in emit_now:
            check_cancel(cancel)
            yield post(o.frame, o)  # type: ignore[arg-type]
            done += 1
            run.frames = done
            run.seconds = time.monotonic() - t_start
            report(progress, Progress("depth", done, n, frame=o.frame, started=t_start))
    run.seconds = time.monotonic() - t_start
