"""Animated shapes from a matte sequence: same points, on the same physical spots, frame after frame.

For one object, :func:`shapes_from_mattes`:

1. **Pieces per frame.** Each frame's matte gives its pieces (outer contour + holes, islands
   under ``min_area`` dropped; :mod:`engine.shapes.contours`).
2. **Topology.** Pieces are linked to the next frame's by overlap (or, when nothing overlaps,
   the nearest piece of similar size). A piece continuing as exactly one piece extends its
   shape; a split, a merge, a piece appearing or disappearing (occlusion) ends the shapes
   involved and starts new ones, each with its own lifetime — never a curve tangled across
   two pieces. Holes are tracked the same way, as shapes subtracted from their object.
3. **Point count.** A shape is fitted on up to five of its frames; the largest count needed
   for the tolerance (within the budget) becomes the shape's count, and the frame where it is
   largest its reference.
4. **Correspondence.** From the reference outwards, frame by frame, every anchor is carried to
   the next frame — by the plate's optical flow sampled just inside the object when the plate
   is readable (DIS, :mod:`engine.ops.flow`), else by the similarity transform that best maps
   one outline onto the other (iterative closest points) — then snapped onto the new outline
   in the same cyclic order (a point that would overtake its neighbour is put back between
   them). Corner anchors snap to the nearest corner. Handles are re-fitted for the fixed
   anchors; where a segment misses the outline by more than the tolerance, its anchors slide
   along the outline to the position that fits best (the re-fit).
5. **Keys.** A key on every frame (default), or only where needed: keys are dropped while
   interpolating between the kept ones stays within the tolerance.

Feather: the median edge width of a soft matte along the shape (0 for hard edges).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.shapes.bezier import (FitResult, curve_distance, find_corners, fit_closed, fit_span, orient_ccw,
                                  refit_fixed, sample_key, sharpen_corners, tangents_at)
from engine.shapes.contours import Region, edge_width, extract_regions, polygon_area, resample_closed
from engine.shapes.model import BezierKey, Shape, lerp_keys
from engine.util.progress import CancelToken, Progress, ProgressCallback, check_cancel, report

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session
    from engine.shapes.model import ShapeSet

__all__ = ["ShapeOptions", "shapes_from_mattes", "shapes_from_session"]


@dataclass
class ShapeOptions:
    """How shapes are made. ``keys``: ``"all"`` (a key on every frame) or ``"needed"``."""

    tolerance: float = 0.5  # px: the curve stays this close to the matte's 0.5 iso-line
    max_points: int = 32  # budget per shape
    min_points: int = 4
    corner_angle: float = 50.0  # degrees of turn within 4 px that make a corner
    min_area: float = 16.0  # px²: smaller islands and holes are dropped
    keys: str = "all"
    flow: bool = True  # use the plate's optical flow when it is readable
    flow_preset: str = "medium"
    holes: bool = True
    feather: bool = True  # estimate feather from a soft matte
    binary_sigma: float = 0.8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Piece:
    region: Region
    area: float
    bbox: tuple[float, float, float, float]
    centroid: np.ndarray
    feather: float = 0.0
    parent_centroid: np.ndarray | None = None  # holes: the centroid of the piece they are in


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    contours: list[np.ndarray] = field(default_factory=list)
    feathers: list[float] = field(default_factory=list)
    hole: bool = False
    parent: int | None = None  # index of the outer track (holes)
    ended_by: str = ""
    started_by: str = ""


# --- geometry helpers ------------------------------------------------------------------------


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s R src + t`` (Umeyama); returns ``(s, R, t)``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sv, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    dm = np.diag([1.0, d])
    r = u @ dm @ vt
    var = (a ** 2).sum() / len(src)
    s = float((sv * np.diag(dm)).sum() / var) if var > 1e-12 else 1.0
    t = mu_d - s * r @ mu_s
    return s, r, t


def _icp(src: np.ndarray, dst: np.ndarray, iterations: int = 12) -> Callable[[np.ndarray], np.ndarray]:
    """A similarity transform taking outline ``src`` onto outline ``dst`` (both ``(M, 2)``)."""
    from scipy.spatial import cKDTree

    sub = src[:: max(1, len(src) // 240)]
    tree = cKDTree(dst)
    a_s, a_d = abs(polygon_area(src)), abs(polygon_area(dst))
    s = float(np.sqrt(a_d / a_s)) if a_s > 0 and a_d > 0 else 1.0
    c_s, c_d = src.mean(0), dst.mean(0)
    r = np.eye(2)
    t = c_d - s * c_s
    prev = None
    for _ in range(iterations):
        moved = s * sub @ r.T + t
        dist, j = tree.query(moved)
        keep = dist <= np.percentile(dist, 90) + 1e-9
        s, r, t = _similarity(sub[keep], dst[j[keep]])
        err = float(dist.mean())
        if prev is not None and abs(prev - err) < 1e-3:
            break
        prev = err
    s_, r_, t_ = s, r, t
    return lambda p: s_ * np.asarray(p) @ r_.T + t_


def _signature(samples: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` points evenly spaced along the outline and a similarity-invariant signature there
    (turning angle over a short window, smoothed)."""
    pts, _ = resample_closed(samples, 1.0, min_points=k)
    idx = np.linspace(0, len(pts), k, endpoint=False).astype(int)
    q = pts[idx]
    w = max(1, k // 64)
    v1 = q - np.roll(q, w, 0)
    v2 = np.roll(q, -w, 0) - q
    ang = np.arctan2(v1[:, 0] * v2[:, 1] - v1[:, 1] * v2[:, 0], (v1 * v2).sum(1))
    kern = np.ones(2 * w + 1) / (2 * w + 1)
    sig = np.convolve(np.concatenate([ang[-w:], ang, ang[:w]]), kern, mode="valid")
    return q, sig - sig.mean()


def _match_outlines(src: np.ndarray, dst: np.ndarray, guess: Callable[[np.ndarray], np.ndarray],
                    k: int = 512) -> Callable[[np.ndarray], np.ndarray] | None:
    """A similarity from outline ``src`` to ``dst`` found by aligning their shape signatures
    along the outline (a cyclic shift near the one ``guess`` implies), or None when the outline
    has too little shape to tell (a circle)."""
    from scipy.spatial import cKDTree

    qa, sa = _signature(src, k)
    qb, sb = _signature(dst, k)
    if sa.std() < 1e-3 or sb.std() < 1e-3:
        return None
    corr = np.real(np.fft.ifft(np.fft.fft(sb) * np.conj(np.fft.fft(sa))))  # corr[d] = sum_i sa[i] sb[i+d]
    _, j = cKDTree(qb).query(guess(qa[:1]))
    d0 = int(j[0])
    window = k // 10
    cand = (d0 + np.arange(-window, window + 1)) % k
    best = int(cand[np.argmax(corr[cand])])
    # the peak must be clearly a peak, not a flat ridge (near-circular outlines)
    if corr[best] <= 0 or corr[best] < 0.5 * np.sqrt((sa ** 2).sum() * (sb ** 2).sum()):
        return None
    s, r, t = _similarity(qa, qb[(np.arange(k) + best) % k])
    return lambda p: s * np.asarray(p) @ r.T + t


def _lis_keep(rel: np.ndarray) -> np.ndarray:
    """bool mask of a longest strictly increasing run of ``rel`` that starts at index 0 (the pivot)."""
    n = len(rel)
    best = np.zeros(n, int)  # length of the best chain from 0 ending at i (0: unreachable)
    prev = np.full(n, -1)
    best[0] = 1
    for i in range(1, n):
        for j in range(i):
            if best[j] and rel[j] < rel[i] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    i = int(np.argmax(best))
    keep = np.zeros(n, bool)
    while i != -1:
        keep[i] = True
        i = int(prev[i])
    return keep


def _ordered_snap(pred: np.ndarray, samples: np.ndarray, prev_frac: np.ndarray) -> np.ndarray:
    """Indices into ``samples`` nearest to ``pred`` ``(N, 2)``, kept in cyclic order.

    Anchors whose nearest sample would break the order are put between their neighbours at the
    previous frame's arclength proportions ``prev_frac`` (gap fractions, summing to 1).
    """
    from scipy.spatial import cKDTree

    m, n = len(samples), len(pred)
    dist, idx = cKDTree(samples).query(pred)
    pivot = int(np.argmin(dist))
    order = (pivot + np.arange(n)) % n
    rel = (idx[order] - idx[pivot]) % m
    rel = rel.astype(np.float64)
    keep = _lis_keep(rel)
    rel_fixed = rel.copy()
    gaps = prev_frac[order]  # gap k: from anchor order[k] to order[k+1]
    kept = np.flatnonzero(keep)
    for a_i, a in enumerate(kept):
        b = kept[a_i + 1] if a_i + 1 < len(kept) else n
        if b - a <= 1:
            continue
        start = rel[a]
        end = rel[b] if b < n else m  # wrap back to the pivot
        span_frac = gaps[a:b]
        cum = np.cumsum(span_frac)[:-1] / max(span_frac.sum(), 1e-9)
        rel_fixed[a + 1:b] = start + cum * (end - start)
    out = np.empty(n, int)
    out[order] = (np.round(rel_fixed).astype(int) + idx[pivot]) % m
    # strictly increasing after rounding: nudge duplicates forward
    seq = (out[order] - out[order][0]) % m
    for k in range(1, n):
        if seq[k] <= seq[k - 1]:
            seq[k] = seq[k - 1] + 1
    out[order] = (seq + out[order][0]) % m
    return out


def _gap_fractions(anchors: np.ndarray, m: int) -> np.ndarray:
    gaps = (np.roll(anchors, -1) - anchors) % m
    gaps = np.where(gaps == 0, m if len(anchors) == 1 else 1, gaps).astype(np.float64)
    return gaps / gaps.sum()


def _outward_normals(samples: np.ndarray, idx: np.ndarray, step: float) -> np.ndarray:
    back, out = tangents_at(samples, idx, np.zeros(len(idx), bool), step)
    # counter-clockwise on screen (y down): the inside is on the left of the direction of travel,
    # left of (dx, dy) is (dy, -dx); outward is its opposite
    return np.stack([-out[:, 1], out[:, 0]], axis=1)


def _step_for(contour: np.ndarray) -> float:
    perim = float(np.linalg.norm(np.diff(np.vstack([contour, contour[:1]]), axis=0), axis=1).sum())
    return max(0.5, min(2.0, perim / 1500.0))


@dataclass
class _Frame:
    samples: np.ndarray
    step: float
    corners: np.ndarray


def _prepare(contour: np.ndarray, corner_angle: float) -> _Frame:
    poly = orient_ccw(np.asarray(contour, np.float64))
    step = _step_for(poly)
    samples, _ = resample_closed(poly, step, min_points=24)
    corners = find_corners(samples, step, corner_angle=corner_angle)
    samples = sharpen_corners(samples, corners, step)
    return _Frame(samples, step, corners)


# --- flow --------------------------------------------------------------------------------------


class _FlowSource:
    """Optical flow between plate frames, cropped around the object and cached per pair."""

    def __init__(self, get_image: Callable[[int], Any] | None, preset: str) -> None:
        self.get_image = get_image
        self.preset = preset
        self._images: dict[int, Any] = {}
        self.failed = get_image is None

    def _image(self, frame: int):
        if frame not in self._images:
            if len(self._images) > 4:
                self._images.pop(next(iter(self._images)))
            self._images[frame] = self.get_image(frame)  # type: ignore[misc]
        return self._images[frame]

    def displace(self, f: int, g: int, pts: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        """Where ``pts`` of frame ``f`` are on frame ``g`` (None when there is no plate)."""
        if self.failed:
            return None
        try:
            a, b = self._image(f), self._image(g)
        except Exception:  # noqa: BLE001 - a plate that cannot be read: fall back to outlines
            self.failed = True
            return None
        if a is None or b is None:
            return None
        from engine.ops.flow import dis_flow

        h, w = np.asarray(a).shape[:2]
        x0, y0, x1, y1 = box
        pad = 24
        c0, r0 = max(0, int(x0) - pad), max(0, int(y0) - pad)
        c1, r1 = min(w, int(np.ceil(x1)) + pad), min(h, int(np.ceil(y1)) + pad)
        if c1 - c0 < 16 or r1 - r0 < 16:
            return None
        ca = np.asarray(a)[r0:r1, c0:c1]
        cb = np.asarray(b)[r0:r1, c0:c1]
        big = max(c1 - c0, r1 - r0)
        scale = 1.0 if big <= 480 else max(0.25, 480.0 / big)
        flow = dis_flow(ca, cb, preset=self.preset, scale=scale)
        import cv2

        q = (pts - np.array([c0, r0]) - 0.5).astype(np.float32)
        fx = cv2.remap(flow[..., 0], q[:, 0].reshape(1, -1), q[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).ravel()
        fy = cv2.remap(flow[..., 1], q[:, 0].reshape(1, -1), q[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).ravel()
        return pts + np.stack([fx, fy], axis=1)


# --- topology ----------------------------------------------------------------------------------


def _overlap(a: _Piece, b: _Piece, shift: np.ndarray | None = None) -> float:
    """Overlap of two pieces' outer polygons / the smaller area (0..1), rasterised coarsely;
    ``a`` moved by ``shift`` first."""
    from engine.shapes.raster import fill_polygons

    if shift is not None and np.any(shift):
        moved = Region(a.region.outer + shift)
        a = _Piece(moved, a.area, moved.bbox, a.centroid + shift, a.feather)
    ax0, ay0, ax1, ay1 = a.bbox
    bx0, by0, bx1, by1 = b.bbox
    x0, y0 = min(ax0, bx0), min(ay0, by0)
    x1, y1 = max(ax1, bx1), max(ay1, by1)
    if min(ax1, bx1) < max(ax0, bx0) or min(ay1, by1) < max(ay0, by0):
        return 0.0
    scale = min(1.0, 160.0 / max(1.0, x1 - x0, y1 - y0))
    shape = (int(np.ceil((y1 - y0) * scale)) + 2, int(np.ceil((x1 - x0) * scale)) + 2)
    off = np.array([x0, y0])
    ma = fill_polygons([(a.region.outer - off) * scale + 1], shape)
    mb = fill_polygons([(b.region.outer - off) * scale + 1], shape)
    inter = float(np.logical_and(ma, mb).sum())
    small = float(min(ma.sum(), mb.sum()))
    return inter / small if small > 0 else 0.0


def _link(prev: list[_Piece], cur: list[_Piece]) -> list[list[int]]:
    """For each current piece, the previous pieces it continues."""
    links: list[list[int]] = [[] for _ in cur]
    if not prev or not cur:
        return links
    for j, c in enumerate(cur):
        for i, p in enumerate(prev):
            # holes ride with the piece they are in
            shift = (c.parent_centroid - p.parent_centroid
                     if c.parent_centroid is not None and p.parent_centroid is not None else None)
            if _overlap(p, c, shift) > 0.15:
                links[j].append(i)
    used = {i for lk in links for i in lk}
    for j, c in enumerate(cur):  # fast small pieces: nearest unused piece of similar size
        if links[j]:
            continue
        best, best_d = None, None
        for i, p in enumerate(prev):
            if i in used or not (0.5 <= c.area / max(p.area, 1e-9) <= 2.0):
                continue
            d = float(np.linalg.norm(c.centroid - p.centroid))
            if d <= 0.75 * np.sqrt(max(p.area, c.area)) and (best_d is None or d < best_d):
                best, best_d = i, d
        if best is not None:
            links[j].append(best)
            used.add(best)
    return links


def _build_tracks(frames: Sequence[int], pieces: dict[int, list[_Piece]], hole: bool) -> list[_Track]:
    tracks: list[_Track] = []
    live: dict[int, int] = {}  # piece index on the previous frame -> track index
    prev_frame = None
    prev_pieces: list[_Piece] = []
    for f in frames:
        cur = pieces.get(f, [])
        contiguous = prev_frame is not None and f == prev_frame + 1
        links = _link(prev_pieces, cur) if contiguous else [[] for _ in cur]
        succ: dict[int, list[int]] = {}
        for j, lk in enumerate(links):
            for i in lk:
                succ.setdefault(i, []).append(j)
        new_live: dict[int, int] = {}
        for j, piece in enumerate(cur):
            lk = links[j]
            if len(lk) == 1 and len(succ.get(lk[0], [])) == 1 and lk[0] in live:
                ti = live[lk[0]]
            else:
                t = _Track(hole=hole)
                t.started_by = ("merge" if len(lk) > 1 else "split" if lk else
                                ("appear" if prev_frame is not None else "start"))
                for i in lk:
                    if i in live:
                        tracks[live[i]].ended_by = "merge" if len(lk) > 1 else "split"
                tracks.append(t)
                ti = len(tracks) - 1
            tracks[ti].frames.append(f)
            tracks[ti].contours.append(piece.region.outer)
            tracks[ti].feathers.append(piece.feather)
            new_live[j] = ti
        for i, ti in live.items():
            if i not in succ and not tracks[ti].ended_by:
                tracks[ti].ended_by = "disappear"
        live = new_live
        prev_frame, prev_pieces = f, cur
    return tracks


# --- one shape over time ---------------------------------------------------------------------


def _fit_reference(track: _Track, opts: ShapeOptions) -> tuple[int, FitResult]:
    areas = [abs(polygon_area(c)) for c in track.contours]
    ref = int(np.argmax(areas))
    probe = sorted(set([ref, 0, len(track.frames) - 1, len(track.frames) // 2, len(track.frames) // 4,
                        (3 * len(track.frames)) // 4]))[:6]
    need = opts.min_points
    for i in probe:
        fr = fit_closed(track.contours[i], tolerance=opts.tolerance * 0.8, max_points=opts.max_points,
                        min_points=opts.min_points, corner_angle=opts.corner_angle)
        need = max(need, fr.key.n)
    need = min(need, opts.max_points)
    fit = fit_closed(track.contours[ref], tolerance=opts.tolerance * 0.8, max_points=need, min_points=need,
                     corner_angle=opts.corner_angle, fixed_points=need)
    return ref, fit


def _slide(fr: _Frame, anchors: np.ndarray, corner: np.ndarray, tol: float,
           rounds: int = 2, max_segments: int = 6) -> tuple[np.ndarray, BezierKey, float]:
    """Move anchors of badly fitting segments along the outline to where the fit is best.

    Each round looks at the (at most ``max_segments``) worst segments over ``tol`` and tries
    their free anchors a few pixels either way; moving costs a little, so a point only moves
    when the fit clearly improves.
    """
    key, err = refit_fixed(fr.samples, anchors, corner, fr.step)
    if err <= tol:
        return anchors, key, err
    m, n = len(fr.samples), len(anchors)
    back, out = tangents_at(fr.samples, anchors, corner, fr.step)

    def span_err(a: int, b: int, t1: np.ndarray, t2: np.ndarray, it: int = 1) -> float:
        length = (b - a) % m or m
        return fit_span(fr.samples[(a + np.arange(length + 1)) % m], t1, t2, it)[1]

    anchors = anchors.copy()
    for _ in range(rounds):
        seg_err = np.array([span_err(anchors[i], anchors[(i + 1) % n], out[i], back[(i + 1) % n])
                            for i in range(n)])
        bad = [int(b) for b in np.argsort(-seg_err)[:max_segments] if seg_err[b] > tol]
        if not bad:
            break
        moved = False
        for j in sorted({b for b in bad} | {(b + 1) % n for b in bad}):
            if corner[j]:
                continue
            pj, nj = anchors[(j - 1) % n], anchors[(j + 1) % n]
            room_b = (anchors[j] - pj) % m - 1
            room_f = (nj - anchors[j]) % m - 1
            best = (max(seg_err[(j - 1) % n], seg_err[j]), 0)
            for d in (-8, -4, -2, -1, 1, 2, 4, 8):
                step = int(round(d / max(fr.step, 0.5)))
                if step == 0 or (step < 0 and -step > room_b) or (step > 0 and step > room_f):
                    continue
                cand = (anchors[j] + step) % m
                b2, o2 = tangents_at(fr.samples, np.array([cand]), np.array([False]), fr.step)
                e1 = span_err(pj, cand, out[(j - 1) % n], b2[0])
                if e1 >= best[0]:
                    continue
                e2 = span_err(cand, nj, o2[0], back[(j + 1) % n])
                score = max(e1, e2) + 0.02 * abs(d)
                if score < best[0] * 0.95:
                    best = (score, step)
            if best[1]:
                anchors[j] = (anchors[j] + best[1]) % m
                b2, o2 = tangents_at(fr.samples, anchors[j:j + 1], np.array([False]), fr.step)
                back[j], out[j] = b2[0], o2[0]
                moved = True
        if not moved:
            break
    key, err = refit_fixed(fr.samples, anchors, corner, fr.step)
    return anchors, key, err


def _flow_predict(prev_fr: _Frame, prev_anchors: np.ndarray, pts: np.ndarray, f: int, g: int, nxt_fr: _Frame,
                  flow: _FlowSource) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
    """The plate's motion at the anchors: a similarity fitted to the flow inside the object
    (robust to the flow's errors at the object's boundary) and each anchor's smoothed local
    deviation from it (articulated motion), clamped to 15 % of the anchor spacing."""
    area = abs(polygon_area(prev_fr.samples))
    inset = float(np.clip(0.12 * np.sqrt(area), 2.0, 24.0))
    m = len(prev_fr.samples)
    probe_idx = np.arange(0, m, max(1, m // 160))
    normals = _outward_normals(prev_fr.samples, probe_idx, prev_fr.step)
    probes = prev_fr.samples[probe_idx] - inset * normals
    a_norm = _outward_normals(prev_fr.samples, prev_anchors, prev_fr.step)
    a_probes = pts - inset * a_norm
    x0, y0 = np.minimum(prev_fr.samples.min(0), nxt_fr.samples.min(0))
    x1, y1 = np.maximum(prev_fr.samples.max(0), nxt_fr.samples.max(0))
    moved = flow.displace(f, g, np.vstack([probes, a_probes]), (x0, y0, x1, y1))
    if moved is None:
        return None
    mp, ma = moved[: len(probes)], moved[len(probes):]
    s, r, t = _similarity(probes, mp)
    for _ in range(2):  # trim the worst flow vectors and refit
        res = np.linalg.norm(s * probes @ r.T + t - mp, axis=1)
        keep = res <= np.percentile(res, 75) + 1e-9
        if keep.sum() < 6:
            break
        s, r, t = _similarity(probes[keep], mp[keep])
    glob = lambda p: s * np.asarray(p) @ r.T + t  # noqa: E731
    resid = ma - glob(a_probes)
    resid = 0.25 * np.roll(resid, 1, 0) + 0.5 * resid + 0.25 * np.roll(resid, -1, 0)
    spacing = float(np.median(np.linalg.norm(np.roll(pts, -1, 0) - pts, axis=1))) if len(pts) > 1 else 10.0
    norm = np.linalg.norm(resid, axis=1, keepdims=True)
    limit = 0.15 * spacing
    resid = np.where(norm > limit, resid * (limit / np.maximum(norm, 1e-9)), resid)
    return glob, resid


def _snap_and_fit(pred: np.ndarray, prev_fr: _Frame, prev_anchors: np.ndarray, nxt_fr: _Frame, corner: np.ndarray,
                  opts: ShapeOptions) -> tuple[np.ndarray, BezierKey, float]:
    m = len(nxt_fr.samples)
    anchors = _ordered_snap(pred, nxt_fr.samples, _gap_fractions(prev_anchors, len(prev_fr.samples)))
    if corner.any() and len(nxt_fr.corners):
        from scipy.spatial import cKDTree

        ctree = cKDTree(nxt_fr.samples[nxt_fr.corners])
        for j in np.flatnonzero(corner):
            d, c = ctree.query(nxt_fr.samples[anchors[j]])
            if d <= 5.0:
                cand = int(nxt_fr.corners[c])
                pj, nj = anchors[(j - 1) % len(anchors)], anchors[(j + 1) % len(anchors)]
                if (cand - pj) % m > 0 and (nj - cand) % m > 0 and (cand - pj) % m < (nj - pj) % m:
                    anchors[j] = cand
    return _slide(nxt_fr, anchors, corner, opts.tolerance)


def _carry(prev_fr: _Frame, prev_anchors: np.ndarray, prev_key: BezierKey, f: int, nxt_fr: _Frame, g: int,
           corner: np.ndarray, flow: _FlowSource, opts: ShapeOptions) -> tuple[np.ndarray, BezierKey, float]:
    """Anchors of frame ``f`` carried onto frame ``g``'s outline, handles refitted.

    Candidates, in order: the plate's motion (when there is a plate), the outlines' matched
    motion, and — when both leave the tolerance — the previous frame's spacing along the outline
    from the best-placed anchor (re-spreads points that drifted together). The first fitting
    within 1.5x the tolerance is kept, else the best (a later one must fit clearly better).
    """
    pts = prev_key.points
    icp = _icp(prev_fr.samples, nxt_fr.samples)
    matched = _match_outlines(prev_fr.samples, nxt_fr.samples, icp)
    outline_pred = (matched or icp)(pts)
    spacing = float(np.median(np.linalg.norm(np.roll(pts, -1, 0) - pts, axis=1))) if len(pts) > 1 else 10.0
    preds: list[np.ndarray] = []
    if opts.flow and not flow.failed:
        got = _flow_predict(prev_fr, prev_anchors, pts, f, g, nxt_fr, flow)
        if got is not None:
            glob, resid = got
            base = outline_pred if matched is not None else glob(pts)
            # the plate's motion must agree with the outlines' (flow fails on flat texture)
            if float(np.linalg.norm(glob(pts) - outline_pred, axis=1).mean()) < max(3.0, 0.5 * spacing):
                preds.append(base + resid)
    preds.append(outline_pred)
    best = None
    for pred in preds:
        cand = _snap_and_fit(pred, prev_fr, prev_anchors, nxt_fr, corner, opts)
        if best is None or cand[2] < 0.7 * best[2]:
            best = cand
        if best[2] <= 1.5 * opts.tolerance:
            return best
    # both drifted: keep the best-placed anchor and re-spread the others as on the previous frame
    assert best is not None
    anchors = best[0]
    m = len(nxt_fr.samples)
    frac = _gap_fractions(prev_anchors, len(prev_fr.samples))
    pivot = int(np.argmin(np.linalg.norm(nxt_fr.samples[anchors] - outline_pred, axis=1)))
    n = len(anchors)
    order = (pivot + np.arange(n)) % n
    offs = np.concatenate([[0.0], np.cumsum(frac[order])[:-1]]) * m
    spread = np.empty(n, int)
    spread[order] = (anchors[pivot] + np.round(offs).astype(int)) % m
    if len(np.unique(spread)) == n:
        cand = _slide(nxt_fr, spread, corner, opts.tolerance)
        if cand[2] < 0.7 * best[2]:
            best = cand
    return best


def _animate(track: _Track, opts: ShapeOptions, flow: _FlowSource, cancel: CancelToken | None,
             tick: Callable[[int], None]) -> tuple[dict[int, BezierKey], dict[int, _Frame], dict[int, np.ndarray]]:
    ref, fit = _fit_reference(track, opts)
    corner = fit.key.corner.copy()
    prepared: dict[int, _Frame] = {}
    anchors_at: dict[int, np.ndarray] = {}
    keys: dict[int, BezierKey] = {}
    fr_ref = _Frame(fit.samples, fit.step, find_corners(fit.samples, fit.step, corner_angle=opts.corner_angle))
    f_ref = track.frames[ref]
    prepared[f_ref], anchors_at[f_ref], keys[f_ref] = fr_ref, fit.anchors, fit.key
    tick(f_ref)
    for direction in (1, -1):
        i = ref
        while 0 <= i + direction < len(track.frames):
            check_cancel(cancel)
            f, g = track.frames[i], track.frames[i + direction]
            fr = _prepare(track.contours[i + direction], opts.corner_angle)
            anchors, key, err = _carry(prepared[f], anchors_at[f], keys[f], f, fr, g, corner, flow, opts)
            key.error = float(err)
            prepared[g], anchors_at[g], keys[g] = fr, anchors, key
            tick(g)
            i += direction
    return keys, prepared, anchors_at


def _outline_error(key: BezierKey, samples: np.ndarray) -> float:
    """The largest distance (px) between a key's curve and the outline, both ways: how far the
    outline strays from the curve and the curve from the outline (the symmetric Hausdorff
    distance of the two closed polylines)."""
    curve = sample_key(key, 0.5)
    if len(curve) == 0 or len(samples) == 0:
        return float("inf")
    return float(max(curve_distance(samples, curve).max(), curve_distance(curve, samples).max()))


def _reduce_keys(keys: dict[int, BezierKey], prepared: dict[int, _Frame], tol: float) -> dict[int, BezierKey]:
    """Keep only the keys needed for linear interpolation to stay within ``tol`` of every frame's outline."""
    frames = sorted(keys)
    if len(frames) <= 2:
        return dict(keys)
    keep = {frames[0], frames[-1]}

    def worst(a: int, b: int) -> tuple[float, int]:
        w, wf = 0.0, -1
        for f in frames:
            if not a < f < b:
                continue
            k = lerp_keys(keys[a], keys[b], (f - a) / (b - a))
            samples = prepared[f].samples
            e = float(curve_distance(samples[:: max(1, len(samples) // 300)], sample_key(k, 0.5)).max())
            if e > w:
                w, wf = e, f
        return w, wf

    stack = [(frames[0], frames[-1])]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        e, f = worst(a, b)
        if e > tol and f > 0:
            keep.add(f)
            stack.extend([(a, f), (f, b)])
    out = {f: keys[f] for f in sorted(keep)}
    return out


# --- public ------------------------------------------------------------------------------------


def shapes_from_mattes(frames: Sequence[int], get_alpha: Callable[[int], np.ndarray | None], *,
                       get_image: Callable[[int], np.ndarray | None] | None = None,
                       options: ShapeOptions | None = None, object_id: int = 1, object_name: str = "matte",
                       progress: ProgressCallback | None = None, cancel: CancelToken | None = None
                       ) -> tuple[list[Shape], dict[str, Any]]:
    """Animated shapes of one object over ``frames`` (plate numbers, ascending).

    ``get_alpha(frame)`` gives the matte (bool mask or float alpha ``(H, W)``, None when the
    object has none); ``get_image(frame)`` the plate (for optical flow; optional). Returns the
    shapes and a report (``frames``, ``shapes``, ``points``, ``max_error_px``,
    ``frames_over_tolerance``, ``events``, ``seconds``). ``max_error_px`` is the largest
    distance, over every frame of every shape (interpolated frames included), between the
    shape's curve and that frame's matte outline, measured both ways; each key's ``error`` is
    that distance on its frame, and ``frames_over_tolerance`` counts the keys over the tolerance.
    """
    opts = options or ShapeOptions()
    if opts.keys not in ("all", "needed"):
        from engine.errors import InputError

        raise InputError(f"keys must be 'all' or 'needed', not {opts.keys!r}")
    frames = sorted(int(f) for f in frames)
    started = time.monotonic()
    outer: dict[int, list[_Piece]] = {}
    holes: dict[int, list[_Piece]] = {}
    for n, f in enumerate(frames):
        check_cancel(cancel)
        alpha = get_alpha(f)
        if alpha is None:
            continue
        regions = extract_regions(alpha, min_area=opts.min_area, binary_sigma=opts.binary_sigma)
        ps, hs = [], []
        for r in regions:
            fe = edge_width(alpha, r.outer) if opts.feather else 0.0
            ps.append(_Piece(r, abs(polygon_area(r.outer)), r.bbox, r.centroid, fe))
            if opts.holes:
                for h in r.holes:
                    hr = Region(h)
                    hs.append(_Piece(hr, abs(polygon_area(h)), hr.bbox, hr.centroid, fe, r.centroid))
        outer[f], holes[f] = ps, hs
        report(progress, Progress("shapes: outlines", n + 1, len(frames), frame=f, started=started))
    tracks = _build_tracks(frames, outer, hole=False) + _build_tracks(frames, holes, hole=True)
    flow = _FlowSource(get_image if opts.flow else None, opts.flow_preset)
    shapes: list[Shape] = []
    done = [0]
    total = sum(len(t.frames) for t in tracks)
    t_fit = time.monotonic()

    def tick(frame: int) -> None:
        done[0] += 1
        report(progress, Progress("shapes: fitting", done[0], total, frame=frame, started=t_fit))

    events: list[dict[str, Any]] = []
    outer_names: list[str] = []
    frame_errs: list[float] = []
    n_outer = sum(1 for t in tracks if not t.hole)
    for ti, t in enumerate(tracks):
        keys, prepared, _ = _animate(t, opts, flow, cancel, tick)
        if opts.keys == "needed":
            keys = _reduce_keys(keys, prepared, opts.tolerance)
        name = (f"{object_name}_hole{ti - n_outer + 1}" if t.hole else
                (object_name if n_outer == 1 else f"{object_name}_{ti + 1}"))
        feather = float(np.median(t.feathers)) if t.feathers else 0.0
        s = Shape(name, keys, t.frames[0], t.frames[-1], hole=t.hole, feather=feather, object_id=object_id,
                  object_name=object_name)
        if t.started_by in ("split", "merge", "appear"):
            s.notes.append(f"starts on frame {t.frames[0]} ({t.started_by})")
            events.append({"shape": name, "frame": t.frames[0], "event": t.started_by})
        if t.ended_by:
            s.notes.append(f"ends on frame {t.frames[-1]} ({t.ended_by})")
        if not t.hole:
            outer_names.append(name)
        # the error of every frame (keys and in-betweens) against its own matte outline
        for f, contour in zip(t.frames, t.contours):
            k = s.at(f)
            e = _outline_error(k, np.asarray(contour, np.float64))
            frame_errs.append(e)
            if f in s.keys:
                s.keys[f].error = e
        shapes.append(s)
    # holes: the outer shape they sit in (on their first frame)
    import cv2

    for s in shapes:
        if not s.hole:
            continue
        probe = s.keys[min(s.keys)].points.mean(0)
        for o in shapes:
            k = None if o.hole else o.at(s.first)
            if k is None:
                continue
            poly = sample_key(k, 1.0).astype(np.float32).reshape(-1, 1, 2)
            if cv2.pointPolygonTest(poly, (float(probe[0]), float(probe[1])), False) >= 0:
                s.parent = o.name
                break
    errs = [k.error for s in shapes for k in s.keys.values()]
    rep = {
        "object": object_name,
        "frames": len([f for f in frames if outer.get(f)]),
        "shapes": len([s for s in shapes if not s.hole]),
        "holes": len([s for s in shapes if s.hole]),
        "points": [s.n_points for s in shapes],
        "keys": sum(len(s.keys) for s in shapes),
        "max_error_px": round(max(frame_errs), 3) if frame_errs else 0.0,
        "frames_over_tolerance": int(sum(e > opts.tolerance for e in errs)),
        "feather_px": [round(s.feather, 2) for s in shapes],
        "events": events,
        "flow": bool(opts.flow and get_image is not None and not flow.failed),
        "seconds": round(time.monotonic() - started, 3),
    }
    return shapes, rep


def shapes_from_session(session: Session, objects: Sequence[int | str] | None = None, *,
                        options: ShapeOptions | None = None, frames: tuple[int, int] | None = None,
                        progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> ShapeSet:
    """Shapes for every (or the chosen) object of ``session`` over its range (or ``frames``).

    Uses each frame's soft alpha when the session has one (``Session.alpha``), else its mask;
    the plate is read for optical flow when it can be opened.
    """
    from engine.errors import PromptError
    from engine.shapes.model import ShapeSet

    opts = options or ShapeOptions()
    lo, hi = session.frame_range
    if frames is not None:
        lo, hi = max(lo, int(frames[0])), min(hi, int(frames[1]))
    ids: list[int] = []
    for o in objects or sorted(session.data.objects):
        if isinstance(o, str) and not o.isdigit():
            ids.append(session.object_by_name(o).id)
        else:
            oid = int(o)
            if oid not in session.data.objects:
                raise PromptError(f"there is no object with id {oid}")
            ids.append(oid)
    if not ids:
        raise PromptError("the session has no objects", hint="Track something first: roto track ... --session FILE")
    alpha_fn = getattr(session, "alpha", None)

    def get_alpha_for(oid: int):
        def get(frame: int):
            res = session.result(oid, frame)
            if res is None or res.occluded:
                return None
            a = alpha_fn(oid, frame) if alpha_fn is not None else None
            if a is not None:
                return a
            return session.mask(oid, frame)
        return get

    get_image = None
    if opts.flow:
        try:
            clip = session.clip
            reader = getattr(clip, "read_uint8", None) or getattr(clip, "read_working", None)
            get_image = reader
        except Exception:  # noqa: BLE001 - no plate: outlines only
            get_image = None
    c = session.data.clip
    shapes: list[Shape] = []
    reports: dict[str, Any] = {}
    names = {oid: session.data.objects[oid].name for oid in ids}
    for oid in ids:
        sh, rep = shapes_from_mattes(range(lo, hi + 1), get_alpha_for(oid), get_image=get_image, options=opts,
                                     object_id=oid, object_name=names[oid], progress=progress, cancel=cancel)
        shapes.extend(sh)
        reports[names[oid]] = rep
    return ShapeSet(width=int(c.width), height=int(c.height), first=lo, last=hi, fps=str(c.rate or "24/1"),
                    shapes=shapes, plate=plate_for_hosts(session), objects=names, settings=opts.to_dict(),
                    report=reports)


def plate_for_hosts(session: Session) -> str:
    """The session's plate as a host loads it, absolute: a sequence's frame pattern
    (``/plates/shot_####.exr``, whatever the user typed: a folder, one frame or a pattern), a
    movie or lone image file itself.

    The path the session stores is what the user typed (a folder, one frame file), which no host
    reads as a sequence; the opened clip knows the resolved pattern. When the plate cannot be
    opened (offline), the stored path is resolved to a pattern from the file names on disk, or
    kept as it is, made absolute either way.
    """
    import os
    from pathlib import Path

    c = session.data.clip
    resolved: str | None = None
    try:
        resolved = session.clip.info.path
    except Exception:  # noqa: BLE001 - offline plate: resolve its name as far as the disk allows
        from engine.media.sequence import VIDEO_EXTENSIONS, extension_of, find_sequence, is_pattern, single_file_path

        raw = os.fspath(c.path)
        base = Path(raw).expanduser()
        spath = getattr(session, "path", None)
        if not base.is_absolute() and spath is not None:
            beside = Path(spath).parent / base
            if beside.parent.exists() and not base.parent.exists():
                base = beside
        if extension_of(raw) in VIDEO_EXTENSIONS and not is_pattern(raw):
            resolved = str(base)
        else:
            try:
                seq = find_sequence(base)
                lone = single_file_path(seq)
                resolved = str(lone) if lone is not None else seq.pattern.hashes
            except Exception:  # noqa: BLE001 - nothing on disk: the stored path as it is
                resolved = str(base)
    return os.path.abspath(os.path.expanduser(resolved)).replace("\\", "/")
