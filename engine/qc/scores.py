"""Per-frame quality scores per object, and the frames they flag for review.

For each object and frame of a session (the soft alpha when ``roto matte`` stored one, else the
binary mask):

``flicker``      % — the matte's change since the previous frame that the motion-compensated
                 picture does not explain, on the soft edge (:func:`engine.ops.temporal.unexplained_change`);
                 for hard 0/1 masks, which have no soft edge, the outline's change beyond about
                 1.5 px on a band along it (:func:`hard_flicker_terms`).
``boundary``     px — mean distance between this frame's edge and the previous frame's edge carried
                 here by optical flow — or moved by its centroid shift when that shift explains the
                 picture inside the object better than the flow (flow fails on smooth screens) —
                 symmetric chamfer, thin strands opened away first: the outline jumped beyond the motion.
``area``         relative change of the matte's area since the previous frame.
``confidence``   the segmenter's confidence in the mask (low = doubtful).
``occluded``     the object is hidden (or missing) on the frame.

A frame is flagged when a score crosses its threshold (:class:`QCThresholds`), with a sentence per
reason. Flow is DIS on the plate at reduced scale, one pair per frame shared by every object;
frames are streamed (one previous frame and matte per object in memory).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session

META_KEY = "qc"
VERSION = 1
SCORES = ("flicker", "boundary", "area", "confidence", "occluded")


@dataclass(frozen=True)
class QCThresholds:
    flicker: float = 2.0  # percent of unexplained change on the soft edge
    boundary: float = 2.0  # pixels of mean edge jump (scaled by the plate: see boundary_px)
    boundary_fraction: float = 0.002  # ... or this fraction of the short side, whichever is larger
    area: float = 0.08  # relative area change beyond motion
    confidence: float = 0.5  # below is doubtful
    flow_scale: float = 0.5  # QC flow resolution: this fraction of a 1080-line plate (540 lines), full size below

    def boundary_px(self, shape: tuple[int, int]) -> float:
        return max(self.boundary, self.boundary_fraction * min(shape))


@dataclass
class ObjectQC:
    """Scores of one object over the frames, aligned lists; ``flags`` frame → reasons."""

    frames: list[int] = field(default_factory=list)
    flicker: list[float | None] = field(default_factory=list)
    boundary: list[float | None] = field(default_factory=list)
    area: list[float | None] = field(default_factory=list)
    confidence: list[float | None] = field(default_factory=list)
    occluded: list[bool] = field(default_factory=list)
    flags: dict[int, list[str]] = field(default_factory=dict)
    source: str = "mask"  # "alpha" when soft alpha was scored

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = {str(k): v for k, v in self.flags.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectQC:
        q = cls(**{k: d[k] for k in ("frames", "flicker", "boundary", "area", "confidence", "occluded") if k in d})
        q.flags = {int(k): list(v) for k, v in (d.get("flags") or {}).items()}
        q.source = str(d.get("source", "mask"))
        return q


@dataclass
class QCResult:
    objects: dict[int, ObjectQC] = field(default_factory=dict)
    thresholds: QCThresholds = field(default_factory=QCThresholds)
    range: tuple[int, int] = (0, 0)
    seconds: float = 0.0

    def review(self) -> list[tuple[int, int, list[str]]]:
        """``(frame, object, reasons)`` for every flagged frame, in frame order."""
        out = [(f, o, r) for o, q in self.objects.items() for f, r in q.flags.items()]
        return sorted(out)

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "computed": time.time(), "range": list(self.range),
                "thresholds": asdict(self.thresholds), "objects": {str(o): q.to_dict() for o, q in self.objects.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QCResult:
        th = QCThresholds(**{k: v for k, v in (d.get("thresholds") or {}).items() if k in QCThresholds.__dataclass_fields__})
        r = cls({int(o): ObjectQC.from_dict(q) for o, q in (d.get("objects") or {}).items()}, th,
                tuple(d.get("range") or (0, 0)))  # type: ignore[arg-type]
        return r


def boundary_jump(current: np.ndarray, previous_warped: np.ndarray, *, thin: int = 0) -> float | None:
    """Mean symmetric distance (px) between the edges of two bool masks; None when one is empty.

    ``thin`` > 0 first removes structures thinner than about ``2 * thin`` px (an opening): strands
    sway on their own, the outline of the body is what must not jump."""
    import cv2

    a = np.asarray(current, bool)
    b = np.asarray(previous_warped, bool)
    if thin > 0:
        from engine.ops.morphology import disc

        k = disc(int(thin))
        a = cv2.morphologyEx(a.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
        b = cv2.morphologyEx(b.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    if not a.any() or not b.any() or a.all() or b.all():
        return None
    k = np.ones((3, 3), np.uint8)

    def edge(m: np.ndarray) -> np.ndarray:
        u = m.astype(np.uint8)
        return (u - cv2.erode(u, k)).astype(bool)

    ea, eb = edge(a), edge(b)
    da = cv2.distanceTransform((~ea).astype(np.uint8), cv2.DIST_L2, 3)
    db = cv2.distanceTransform((~eb).astype(np.uint8), cv2.DIST_L2, 3)
    return float(0.5 * (db[ea].mean() + da[eb].mean()))


def is_hard(matte: np.ndarray, soft: tuple[float, float] = (0.02, 0.98)) -> bool:
    """True for a binary (0/1) matte: a tracked mask rather than a soft alpha."""
    m = np.asarray(matte)
    return m.dtype == bool or not bool(np.any((m > soft[0]) & (m < soft[1])))


def hard_flicker_terms(mask: np.ndarray, prev_mask: np.ndarray, image: np.ndarray, prev_image: np.ndarray,
                       flow_to_prev: np.ndarray, consistent: np.ndarray | None = None, *,
                       tolerance: float = 1.5, ramp: float = 2.0) -> tuple[float, int]:
    """One frame's flicker for hard (binary) masks: ``(sum of unexplained change, region pixels)``.

    The soft-edge measure (:func:`engine.ops.temporal.flicker_terms`) has no soft edge to look at
    on a 0/1 mask: its region is then only the interpolated edge of the warped previous mask,
    where a hard edge always differs by about one half, so a perfect mask of a moving object
    scores 10–30 %. Here the previous mask is carried over by the flow and binarised; a pixel
    where the two masks disagree counts by how far it lies from the other mask beyond
    ``tolerance`` px — partly over the next ``ramp`` px, fully after (a hard edge's one-pixel
    quantisation and the flow's sub-pixel error are not flicker) — and only as far as the
    motion-compensated picture does not explain it (:func:`engine.ops.temporal.unexplained_change`).
    The region is the band about a pixel either side of either outline plus the counted pixels,
    where the flow is consistent: a mask that follows its object scores about 0, one that jumps
    or shrinks by a few pixels on a frame scores its moved area against its outline."""
    import cv2

    from engine.ops.flow import warp
    from engine.ops.temporal import _float, unexplained_change

    a = np.asarray(mask) > 0.5
    pw = warp(np.asarray(prev_mask, np.float32), flow_to_prev, border="constant") > 0.5
    pi = warp(_float(prev_image), flow_to_prev, border="replicate")
    au, pu = a.astype(np.uint8), pw.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    band = (cv2.dilate(au, k) > cv2.erode(au, k)) | (cv2.dilate(pu, k) > cv2.erode(pu, k))
    # each disagreeing pixel's distance to the other mask, beyond the tolerance
    d_a = cv2.distanceTransform(1 - au, cv2.DIST_L2, 5)  # distance to the current mask
    d_p = cv2.distanceTransform(1 - pu, cv2.DIST_L2, 5)  # ... to the carried previous one
    excess = np.where(a & ~pw, d_p, 0.0) + np.where(pw & ~a, d_a, 0.0)
    weight = np.clip((excess - tolerance) / max(1e-6, ramp), 0.0, 1.0).astype(np.float32)
    change, _ = unexplained_change(weight, np.zeros_like(weight), image, pi, consistent)
    region = band | (weight > 0)
    if consistent is not None:
        region &= np.asarray(consistent, bool)
    return float(change[region].sum()), int(region.sum())


def _centroid_aligned(previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``previous`` (bool) shifted by whole pixels so its centroid lands on ``current``'s, and the shift."""
    ys, xs = np.nonzero(previous)
    yc, xc = np.nonzero(current)
    if ys.size == 0 or yc.size == 0:
        return previous, (0, 0)
    dy, dx = int(round(yc.mean() - ys.mean())), int(round(xc.mean() - xs.mean()))
    out = np.zeros_like(previous)
    h, w = previous.shape
    src = previous[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out, (dy, dx)


def area_jump(current: np.ndarray, previous_warped: np.ndarray) -> float | None:
    """|area - previous area| / the larger of the two (soft or bool mattes); None when both empty."""
    a = float(np.asarray(current, np.float32).sum())
    b = float(np.asarray(previous_warped, np.float32).sum())
    top = max(a, b)
    return None if top <= 0 else abs(a - b) / top


def _flag(q: ObjectQC, i: int, th: QCThresholds, bpx: float) -> None:
    reasons: list[str] = []
    f = q.frames[i]
    if q.occluded[i]:
        reasons.append("occluded or missing")
    if q.flicker[i] is not None and q.flicker[i] > th.flicker:
        reasons.append(f"flicker {q.flicker[i]:.1f}% (> {th.flicker:g}%)")
    if q.boundary[i] is not None and q.boundary[i] > bpx:
        reasons.append(f"boundary jump {q.boundary[i]:.1f} px (> {bpx:.1f} px)")
    if q.area[i] is not None and q.area[i] > th.area:
        reasons.append(f"area jump {100 * q.area[i]:.0f}% (> {100 * th.area:.0f}%)")
    if q.confidence[i] is not None and q.confidence[i] < th.confidence:
        reasons.append(f"low confidence {q.confidence[i]:.2f} (< {th.confidence:g})")
    if reasons:
        q.flags[f] = reasons


def compute_qc(session: Session, objects: list[int] | None = None, *, thresholds: QCThresholds | None = None,
               frames: tuple[int, int] | None = None, store: bool = True, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> QCResult:
    """Score every chosen object on every frame of ``frames`` (checked with ``session.check_range``;
    default the whole session); when ``store``, merge the result into ``session.data.meta["qc"]``
    (other objects' and frames' stored scores stay) and save the project. Returns only this run's scores."""
    import cv2

    from engine.ops.flow import dis_flow, fb_consistency, warp
    from engine.ops.temporal import flicker_terms

    th = thresholds or QCThresholds()
    lo, hi = session.check_range(frames)  # out of range or backwards: an error naming the range
    objs = [session.check_object(o).id for o in objects] if objects else sorted(session.data.objects)
    h, w = session.shape
    bpx = th.boundary_px((h, w))
    res = QCResult({o: ObjectQC() for o in objs}, th, (lo, hi))
    # a sub-range starts one frame early so its first frame is scored against its real predecessor
    # (the same scores as a whole-shot run); that context frame is dropped afterwards
    start = max(session.frame_range[0], lo - 1)
    prev_img = prev_small = None
    prev_cov: dict[int, np.ndarray | None] = {}
    started = time.monotonic()
    scale = min(1.0, th.flow_scale * 1080.0 / max(1.0, float(min(h, w))))  # 540 px on the short side at most
    sw, sh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
    px = max(1.0, min(h, w) / 1080.0)  # hard-mask edge tolerances scale with plates above HD
    for i, frame in enumerate(range(start, hi + 1)):
        check_cancel(cancel)
        img = session.clip.read_working(frame)
        small = cv2.resize(np.clip(img, 0, 1), (sw, sh), interpolation=cv2.INTER_AREA)
        flow = ok = None
        if prev_small is not None:
            f_cp = dis_flow(small, prev_small, preset="medium")
            f_pc = dis_flow(prev_small, small, preset="medium")
            ok_s, _ = fb_consistency(f_cp, f_pc)
            from engine.ops.flow import resize_flow

            flow = resize_flow(f_cp, (h, w))
            ok = cv2.resize(ok_s.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        for o in objs:
            q = res.objects[o]
            r = session.result(o, frame)
            a = session.alpha(o, frame) if hasattr(session, "alpha") else None
            if a is not None:
                q.source = "alpha"
            m = session.mask(o, frame)
            cov = a if a is not None else (None if m is None else m.astype(np.float32))
            q.frames.append(frame)
            q.confidence.append(None if r is None else round(float(r.confidence), 4))
            q.occluded.append(bool(r is None or r.occluded or cov is None or not np.any(cov > 0.5)))
            fl = bj = aj = None
            pc = prev_cov.get(o)
            # jumps into or out of an occlusion are explained by it: only visible → visible is scored
            if flow is not None and not q.occluded[-1] and pc is not None and prev_img is not None:
                if is_hard(cov) and is_hard(pc):  # tracked masks: no soft edge to measure on
                    s_, n_ = hard_flicker_terms(cov, pc, img, prev_img, flow, ok, tolerance=1.5 * px, ramp=2.0 * px)
                else:
                    s_, n_ = flicker_terms(cov, pc, img, prev_img, flow, ok)
                fl = None if n_ == 0 else round(100.0 * s_ / n_, 3)
                pw = warp(pc, flow, border="constant")
                thin = max(1, int(round(0.002 * min(h, w))))
                b = boundary_jump(cov > 0.5, pw > 0.5, thin=thin)
                if b is not None and b > bpx:
                    # the flow can fail (smooth screens, fast motion): when shifting the whole object explains
                    # the picture inside it better than the flow does, judge the edge against that shift
                    shifted, (dy, dx) = _centroid_aligned(pc > 0.5, cov > 0.5)
                    inside = cov > 0.5
                    r_flow = float(np.abs(img - warp(prev_img, flow, border="replicate"))[inside].mean())
                    r_shift = float(np.abs(img - np.roll(prev_img, (dy, dx), axis=(0, 1)))[inside].mean())
                    if r_shift < r_flow:
                        b2 = boundary_jump(inside, shifted, thin=thin)
                        b = b if b2 is None else min(b, b2)
                bj = None if b is None else round(b, 3)
                ar = area_jump(cov, pc)  # areas need no flow: robust to flow errors on fast motion
                aj = None if ar is None else round(ar, 4)
            q.flicker.append(fl)
            q.boundary.append(bj)
            q.area.append(aj)
            _flag(q, len(q.frames) - 1, th, bpx)
            prev_cov[o] = None if q.occluded[-1] else cov
        prev_img, prev_small = img, small
        report(progress, Progress("qc", i + 1, hi - start + 1, frame=frame, started=started))
    if start < lo:
        for q in res.objects.values():
            _drop_before(q, lo)
    res.seconds = time.monotonic() - started
    if store:
        session.data.meta[META_KEY] = _merged(stored_qc(session), res, session).to_dict()
        if session.path is not None:
            session.save()
    return res


_LISTS = ("frames", "flicker", "boundary", "area", "confidence", "occluded")


def _drop_before(q: ObjectQC, first: int) -> None:
    """Remove the frames before ``first`` (the context frame of a sub-range run) from ``q``."""
    keep = [i for i, f in enumerate(q.frames) if f >= first]
    for name in _LISTS:
        values = getattr(q, name)
        setattr(q, name, [values[i] for i in keep])
    q.flags = {f: r for f, r in q.flags.items() if f >= first}


def _merged(old: QCResult | None, new: QCResult, session: Session) -> QCResult:
    """``new`` merged into the stored ``old`` scores: a run over some objects or frames replaces
    only those; the other objects' and frames' scores stay (objects no longer in the session go).
    Every frame is flagged again with ``new``'s thresholds."""
    if old is None:
        return new
    lo, hi = new.range
    bpx = new.thresholds.boundary_px(session.shape)
    out = QCResult({}, new.thresholds, new.range, new.seconds)
    for o in sorted(set(old.objects) | set(new.objects)):
        if o not in session.data.objects:
            continue
        q_new = new.objects.get(o)
        q_old = old.objects.get(o)
        rows: dict[int, tuple] = {}
        if q_old is not None:
            for i, f in enumerate(q_old.frames):
                if q_new is None or not lo <= f <= hi:
                    rows[f] = tuple(getattr(q_old, n)[i] if i < len(getattr(q_old, n)) else None for n in _LISTS)
        if q_new is not None:
            for i, f in enumerate(q_new.frames):
                rows[f] = tuple(getattr(q_new, n)[i] for n in _LISTS)
        q = ObjectQC(source=(q_new or q_old).source)  # type: ignore[union-attr]
        for f in sorted(rows):
            for name, value in zip(_LISTS, rows[f]):
                getattr(q, name).append(bool(value) if name == "occluded" else value)
            _flag(q, len(q.frames) - 1, new.thresholds, bpx)
        out.objects[o] = q
    frames = [f for q in out.objects.values() for f in q.frames]
    if frames:
        out.range = (min(frames), max(frames))
    return out


def stored_qc(session: Session) -> QCResult | None:
    """The QC scores stored in the session (``meta["qc"]``), or None."""
    d = session.data.meta.get(META_KEY)
    if not isinstance(d, dict) or int(d.get("version", 0)) != VERSION:
        return None
    return QCResult.from_dict(d)
