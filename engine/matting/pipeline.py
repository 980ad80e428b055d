"""Matte a session: stream its frames through a matter, apply edge controls, store the alpha.

:func:`matte_session` reads one plate frame at a time (``clip.read_working``), gives the matter
every chosen object's mask and confidence, applies the :class:`~engine.matting.controls.EdgeControls`,
stores the result in the session's alpha store (keyed by the frame's mask, so an edited mask
invalidates its alpha) and hands each frame's alphas to an optional ``sink`` (the CLI writes
files there). A re-run whose every alpha is already stored for the same masks, matter and
controls is served from the store without running the matter (``MatteReport.cached``). Memory stays bounded: the matter keeps one previous frame, the pipeline one
previous controlled alpha per object. Cancellation is checked between frames; what finished is
kept. Each object's ``meta["matte"]`` record says which backend, settings and range made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.matting.controls import EdgeControls, apply_controls
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session

#: sink(frame, {obj: alpha float32 (H, W)}) called once per frame after the controls
Sink = Callable[[int, dict[int, np.ndarray]], None]


@dataclass
class MatteReport:
    backend: str = ""
    backend_reason: str = ""
    frames: int = 0
    seconds: float = 0.0
    matte_seconds: float = 0.0  # time inside the matter only (excludes reading and writing)
    cancelled: bool = False
    cached: bool = False  # every alpha was served from the session's alpha store (nothing recomputed)
    per_object: dict[int, int] = field(default_factory=dict)  # obj -> frames with alpha

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / max(1, self.frames)

    @property
    def matte_seconds_per_frame(self) -> float:
        return self.matte_seconds / max(1, self.frames)


def _flow_for_controls(prev_grey, grey):
    from engine.ops.flow import dis_flow, fb_consistency

    f_cp = dis_flow(grey, prev_grey, preset="fast", scale=0.5)
    f_pc = dis_flow(prev_grey, grey, preset="fast", scale=0.5)
    ok, _ = fb_consistency(f_cp, f_pc)
    return f_cp, f_pc, ok


def frame_masks(session: Session, objs: list[int], frame: int) -> tuple[dict[int, Any], dict[int, float]]:
    """The matter's input on ``frame``: per object its ``bool (H, W)`` mask, or None where it has none,
    is occluded or is empty; and the tracker's confidence (1.0 for a frame without a result)."""
    masks: dict[int, Any] = {}
    conf: dict[int, float] = {}
    for o in objs:
        m = session.mask(o, frame)
        res = session.result(o, frame)
        masks[o] = None if (m is None or (res is not None and res.occluded) or not m.any()) else m
        conf[o] = 1.0 if res is None else float(res.confidence)
    return masks, conf


def matte_session(session: Session, objects: list[int] | None = None, *, backend: str | Any = "auto",
                  controls: EdgeControls | None = None, frames: tuple[int, int] | None = None,
                  options: dict[str, Any] | None = None, sink: Sink | None = None,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> MatteReport:
    """Compute, store and hand out soft alpha for ``objects`` (default all) over ``frames``
    (default the session range). ``backend`` is a registry name or a matter instance;
    ``options`` go to its factory."""
    from engine.errors import PromptError
    from engine.matting.base import MatteFrame
    from engine.session.alpha_store import frame_key, set_matte_record, store_for

    controls = controls or EdgeControls()
    if isinstance(backend, str):
        from engine.matting.registry import get_matter

        matter, why = get_matter(backend, **(options or {}))
    else:
        matter, why = backend, f"matting with the {backend.info.title} backend"
    lo, hi = session.check_range(frames)  # out of range or backwards: an error naming the range
    objs = [session.check_object(o).id for o in objects] if objects else sorted(session.data.objects)
    if not objs:
        raise PromptError("the session has no objects to matte", hint="Track an object first (roto track)")
    if not any(session.result(o, f) is not None for o in objs for f in range(lo, hi + 1)):
        raise PromptError("the session has no masks to matte in frames %d-%d" % (lo, hi),
                          hint="Propagate first (roto track --session FILE)")
    token = matter.cache_token + "+" + _controls_token(controls)
    for o in objs:
        set_matte_record(session, o, {"token": token, "backend": matter.info.name, "controls": controls.to_dict(),
                                      "range": [lo, hi], "licence": matter.info.licence})
    store = store_for(session)
    rep = MatteReport(backend=matter.info.name, backend_reason=why)
    keys = _stored_keys(session, store, objs, lo, hi, token)
    if keys is not None:  # a re-run on unchanged masks and settings
        try:
            return _from_store(session, store, objs, lo, hi, keys, rep, sink, progress, cancel)
        except _StoreMiss:
            rep = MatteReport(backend=matter.info.name, backend_reason=why)
    state = matter.init_state(session.shape)
    prev: dict[int, np.ndarray] = {}
    prev_grey = None
    started = time.monotonic()
    total = hi - lo + 1
    try:
        for frame in range(lo, hi + 1):
            check_cancel(cancel)
            image = session.clip.read_working(frame)
            masks, conf = frame_masks(session, objs, frame)
            t0 = time.perf_counter()
            outs = matter.process(state, MatteFrame(frame, image, masks, confidence=conf))
            rep.matte_seconds += time.perf_counter() - t0
            grey = None
            flows = None
            if controls.needs_flow:
                grey = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
                if prev_grey is not None:
                    flows = _flow_for_controls(prev_grey, grey)
            done: dict[int, np.ndarray] = {}
            for o in objs:
                ao = outs.get(o)
                alpha = np.zeros(session.shape, np.float32) if ao is None else np.asarray(ao.alpha, np.float32)
                if not controls.is_identity():
                    kw: dict[str, Any] = {}
                    if flows is not None:
                        from engine.ops.flow import warp
                        from engine.ops.temporal import static_confidence

                        f_cp, f_pc, ok = flows
                        if o in prev and controls.temporal > 0:
                            kw["prev_warped"] = warp(prev[o], f_cp, border="constant")
                            kw["static"] = static_confidence(grey, warp(prev_grey, f_cp), ok)
                        kw["flow"] = -f_cp  # this frame's motion: the negated flow to the previous frame
                    alpha = apply_controls(alpha, controls, **kw)
                done[o] = alpha
                res = session.result(o, frame)
                if res is not None:
                    store.put(o, frame, frame_key(token, res), alpha)
                    rep.per_object[o] = rep.per_object.get(o, 0) + 1
            prev = done
            prev_grey = grey
            if sink is not None:
                sink(frame, done)
            rep.frames += 1
            report(progress, Progress("matte", rep.frames, total, frame=frame, started=started))
    except BaseException as exc:
        from engine.errors import Cancelled

        rep.cancelled = isinstance(exc, Cancelled)
        raise
    finally:
        rep.seconds = time.monotonic() - started
        if session.path is not None:
            session.save()
    return rep


def _stored_keys(session: Session, store: Any, objs: list[int], lo: int, hi: int,
                 token: str) -> dict[tuple[int, int], str] | None:
    """The store keys ``(object, frame) -> key`` of every mask on ``lo``..``hi`` when the store
    holds the alpha of each for this matter and these controls (a re-run with the same inputs
    needs no matting), else None."""
    from engine.session.alpha_store import frame_key

    keys = {}
    for frame in range(lo, hi + 1):
        for o in objs:
            res = session.result(o, frame)
            if res is not None:
                key = keys[o, frame] = frame_key(token, res)
                if not store.has(o, frame, key):
                    return None
    return keys


def _from_store(session: Session, store: Any, objs: list[int], lo: int, hi: int, keys: dict[tuple[int, int], str],
                rep: MatteReport, sink: Sink | None, progress: ProgressCallback | None,
                cancel: CancelToken | None) -> MatteReport:
    """Serve a re-run from the alpha store (``keys`` from :func:`_stored_keys`): the same alphas
    handed to ``sink``, nothing recomputed. A stored file that cannot be read falls back to a full run."""
    started = time.monotonic()
    rep.cached = True
    total = hi - lo + 1
    try:
        for frame in range(lo, hi + 1):
            check_cancel(cancel)
            done: dict[int, np.ndarray] = {}
            for o in objs:
                key = keys.get((o, frame))
                alpha = None
                if key is not None:
                    alpha = store.get(o, frame, key)
                    if alpha is None or alpha.shape != tuple(session.shape):
                        raise _StoreMiss
                    rep.per_object[o] = rep.per_object.get(o, 0) + 1
                done[o] = np.zeros(session.shape, np.float32) if alpha is None else alpha
            if sink is not None:
                sink(frame, done)
            rep.frames += 1
            report(progress, Progress("matte", rep.frames, total, frame=frame, started=started))
    finally:
        rep.seconds = time.monotonic() - started
        if session.path is not None:
            session.save()
    return rep


class _StoreMiss(Exception):
    """A stored alpha vanished or is unreadable: matte again."""


def _controls_token(controls: EdgeControls) -> str:
    from engine.cache.keys import make_key

    return make_key(controls.to_dict())[:12]
