"""Cubic Bézier fitting of closed contours: tolerance in pixels, a point budget, corners kept sharp.

:func:`fit_closed` fits a closed contour (float ``(N, 2)``, e.g. from
:mod:`engine.shapes.contours`) with a closed spline of cubic segments:

1. the contour is resampled every ``step`` px;
2. **corners** are found where the outline turns by more than ``corner_angle`` degrees within
   ``corner_window`` px (local maxima only); a corner anchor gets independent one-sided tangents,
   every other anchor a smooth (collinear) pair;
3. each stretch between corners (or the whole loop) is fitted by recursive least squares — the
   classic "fit, measure the worst point, split there with a smooth tangent, repeat" scheme for
   digitised curves — until every contour sample is within ``tolerance`` px of the curve;
4. the **point budget**: when more than ``max_points`` anchors are needed, corners may keep at
   most a third of the budget (the sharpest; a jagged matte edge is full of "corners"), the
   tolerance is relaxed step by step until the fit fits the budget, and the rest of the budget
   is spent one anchor at a time where the fit is worst, so the whole budget is used; when fewer
   than ``min_points`` are used the longest segments are split so artists get enough handles.

:func:`refit_fixed` fits the handles of a spline whose anchors are given (indices into a
resampled contour): the animation uses it to keep the same anchors on the same physical points
from frame to frame. :func:`sample_key` turns a key into a dense polyline; :func:`curve_distance`
measures a contour against a curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.shapes.contours import polygon_area, resample_closed
from engine.shapes.model import BezierKey

__all__ = ["FitResult", "fit_closed", "refit_fixed", "find_corners", "sample_key", "sample_segments",
           "curve_distance", "bezier_eval", "tangents_at", "orient_ccw"]


@dataclass
class FitResult:
    """A fitted key plus where its anchors sit on the resampled contour."""

    key: BezierKey
    anchors: np.ndarray  # int indices into ``samples``
    samples: np.ndarray  # the resampled contour (M, 2)
    step: float
    tolerance: float  # the tolerance finally used (relaxed when the budget forced it)
    max_error: float


# --- Bézier basics ---------------------------------------------------------------------------


def bezier_eval(seg: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of the cubic ``seg`` ``(4, 2)`` at parameters ``t`` ``(M,)`` → ``(M, 2)``."""
    t = np.asarray(t, np.float64)[:, None]
    mt = 1.0 - t
    return (mt ** 3) * seg[0] + 3 * (mt ** 2) * t * seg[1] + 3 * mt * (t ** 2) * seg[2] + (t ** 3) * seg[3]


def _bezier_d1(seg: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    mt = 1.0 - t
    return 3 * (mt ** 2) * (seg[1] - seg[0]) + 6 * mt * t * (seg[2] - seg[1]) + 3 * (t ** 2) * (seg[3] - seg[2])


def _bezier_d2(seg: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    return 6 * (1 - t) * (seg[2] - 2 * seg[1] + seg[0]) + 6 * t * (seg[3] - 2 * seg[2] + seg[1])


def sample_segments(segs: np.ndarray, spacing: float = 0.5) -> np.ndarray:
    """A closed polyline through the cubic segments ``(N, 4, 2)``, about ``spacing`` px apart."""
    out = []
    for seg in segs:
        length = np.linalg.norm(np.diff(seg, axis=0), axis=1).sum()
        n = int(min(2000, max(4, np.ceil(length / spacing))))
        out.append(bezier_eval(seg, np.linspace(0.0, 1.0, n, endpoint=False)))
    return np.vstack(out) if out else np.zeros((0, 2))


def sample_key(key: BezierKey, spacing: float = 0.5) -> np.ndarray:
    """A closed polyline through ``key`` about ``spacing`` px apart (first point not repeated)."""
    return sample_segments(key.segments(), spacing)


def curve_distance(points: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Distance from each of ``points`` to the closed polyline ``curve`` (densely sampled), px."""
    from scipy.spatial import cKDTree

    if len(curve) == 0 or len(points) == 0:
        return np.full(len(points), np.inf)
    dense = _densify(curve, 0.2)
    d, _ = cKDTree(dense).query(points)
    return d


def _densify(poly: np.ndarray, spacing: float) -> np.ndarray:
    closed = np.vstack([poly, poly[:1]])
    seg = np.diff(closed, axis=0)
    lens = np.linalg.norm(seg, axis=1)
    reps = np.maximum(1, np.ceil(lens / spacing).astype(int))
    if reps.max() == 1:
        return poly
    idx = np.repeat(np.arange(len(poly)), reps)
    frac = np.concatenate([np.arange(r) / r for r in reps])
    return closed[idx] + seg[idx] * frac[:, None]


def orient_ccw(poly: np.ndarray) -> np.ndarray:
    """``poly`` running counter-clockwise on screen (y down), reversed when it does not."""
    return poly if polygon_area(poly) >= 0 else poly[::-1].copy()


# --- corners and tangents ----------------------------------------------------------------------


def find_corners(samples: np.ndarray, step: float, *, corner_angle: float = 50.0, window: float = 4.0) -> np.ndarray:
    """Indices of corner samples of a closed, evenly resampled outline (sorted)."""
    m = len(samples)
    k = max(1, int(round(window / step)))
    if m < 4 * k + 4:
        return np.zeros(0, int)
    v1 = samples - np.roll(samples, k, axis=0)
    v2 = np.roll(samples, -k, axis=0) - samples
    n1 = np.linalg.norm(v1, axis=1) + 1e-12
    n2 = np.linalg.norm(v2, axis=1) + 1e-12
    cosang = np.clip((v1 * v2).sum(axis=1) / (n1 * n2), -1.0, 1.0)
    turn = np.degrees(np.arccos(cosang))
    cand = turn > corner_angle
    if not cand.any():
        return np.zeros(0, int)
    # non-maximum suppression within +-k
    padded = np.concatenate([turn[-k:], turn, turn[:k]])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)
    is_max = turn >= windows.max(axis=1) - 1e-9
    idx = np.flatnonzero(cand & is_max)
    # plateaus: keep one per run
    if len(idx) > 1:
        keep = [idx[0]]
        for i in idx[1:]:
            if i - keep[-1] > k:
                keep.append(i)
        if len(keep) > 1 and (keep[0] + m - keep[-1]) <= k:
            keep.pop()
        idx = np.asarray(keep)
    return idx


def _line_fit(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point on and the unit direction of the least-squares line through ``pts`` (first → last)."""
    c = pts.mean(axis=0)
    u, s, vt = np.linalg.svd(pts - c, full_matrices=False)
    d = vt[0]
    if np.dot(pts[-1] - pts[0], d) < 0:
        d = -d
    return c, d


def sharpen_corners(samples: np.ndarray, corners: np.ndarray, step: float, window: float = 4.0) -> np.ndarray:
    """``samples`` with each corner moved to where its two edges meet, and the few samples
    rounding it projected onto those edges (a blurred or anti-aliased matte rounds corners off
    by about a pixel; the object's corner is sharp)."""
    out = samples.copy()
    m = len(samples)
    k = max(1, int(round(window / step)))
    if len(corners) == 0 or m < 8 * k:
        return out
    cs = np.asarray(corners, int)
    for c in cs:
        # stay clear of neighbouring corners
        others = cs[cs != c]
        gap_f = min(((o - c) % m for o in others), default=m)
        gap_b = min(((c - o) % m for o in others), default=m)
        reach_f = min(3 * k, gap_f // 2)
        reach_b = min(3 * k, gap_b // 2)
        if reach_f < k + 2 or reach_b < k + 2:
            continue
        pin, din = _line_fit(samples[(c - np.arange(reach_b, k - 1, -1)) % m])
        pout, dout = _line_fit(samples[(c + np.arange(k, reach_f + 1)) % m])
        cross = din[0] * dout[1] - din[1] * dout[0]
        if abs(cross) < 0.15:  # nearly parallel: not a real corner
            continue
        t = ((pout - pin)[0] * dout[1] - (pout - pin)[1] * dout[0]) / cross
        corner = pin + t * din
        if np.linalg.norm(corner - samples[c]) > 2.0 * max(1.0, step) + 1.0:
            continue
        out[c] = corner
        for j in range(1, k + 1):
            for idx, p0, d in (((c + j) % m, pout, dout), ((c - j) % m, pin, din)):
                q = samples[idx]
                proj = p0 + np.dot(q - p0, d) * d
                # keep the sample's position along the edge but on the edge line
                out[idx] = proj
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-12, v / np.maximum(n, 1e-12), 0.0)


def tangents_at(samples: np.ndarray, idx: np.ndarray, corner: np.ndarray, step: float,
                window: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Unit tangent directions at anchors: ``(incoming_back, outgoing)``.

    ``outgoing`` points along the outline (towards the next anchor), ``incoming_back`` points
    backwards (towards the previous one). Smooth anchors get ``incoming_back == -outgoing``.
    """
    m = len(samples)
    k = max(1, int(round(window / step)))
    nxt = samples[(idx + k) % m]
    prv = samples[(idx - k) % m]
    here = samples[idx % m]
    out_c = _unit(nxt - prv)
    out_one = _unit(nxt - here)
    back_one = _unit(prv - here)
    outgoing = np.where(corner[:, None], out_one, out_c)
    back = np.where(corner[:, None], back_one, -out_c)
    return back, outgoing


# --- least-squares cubic with given end tangents -----------------------------------------------


def _chord_params(d: np.ndarray) -> np.ndarray:
    lens = np.linalg.norm(np.diff(d, axis=0), axis=1)
    u = np.concatenate([[0.0], np.cumsum(lens)])
    return u / u[-1] if u[-1] > 0 else np.linspace(0, 1, len(d))


def _generate(d: np.ndarray, u: np.ndarray, tan1: np.ndarray, tan2: np.ndarray) -> np.ndarray:
    p0, p3 = d[0], d[-1]
    mu = 1.0 - u
    b0, b1, b2, b3 = mu ** 3, 3 * mu * mu * u, 3 * mu * u * u, u ** 3
    a1 = tan1[None, :] * b1[:, None]
    a2 = tan2[None, :] * b2[:, None]
    c00 = (a1 * a1).sum()
    c01 = (a1 * a2).sum()
    c11 = (a2 * a2).sum()
    tmp = d - (p0[None, :] * (b0 + b1)[:, None] + p3[None, :] * (b2 + b3)[:, None])
    x0 = (a1 * tmp).sum()
    x1 = (a2 * tmp).sum()
    det = c00 * c11 - c01 * c01
    chord = float(np.linalg.norm(p3 - p0))
    eps = 1e-6 * max(chord, 1e-6)
    if abs(det) > 1e-12:
        al1 = (x0 * c11 - x1 * c01) / det
        al2 = (c00 * x1 - c01 * x0) / det
    else:
        al1 = al2 = -1.0
    if al1 < eps or al2 < eps or al1 > 3 * chord + 1 or al2 > 3 * chord + 1:
        al1 = al2 = chord / 3.0
    return np.stack([p0, p0 + tan1 * al1, p3 + tan2 * al2, p3])


def _reparam(d: np.ndarray, u: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """One Newton step towards each sample's nearest point on ``seg``, safeguarded.

    A step is kept only where it brings the sample's curve point closer: where the Newton
    denominator is tiny or negative the raw step can throw a parameter to the far end of the
    curve, and the monotonic ordering below would then drag every later sample there with it
    (the least squares then sees all samples at one parameter and the fit collapses).
    """
    q = bezier_eval(seg, u) - d
    q1 = _bezier_d1(seg, u)
    q2 = _bezier_d2(seg, u)
    num = (q * q1).sum(axis=1)
    den = (q1 * q1).sum(axis=1) + (q * q2).sum(axis=1)
    ok = den > 1e-12
    step = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    nu = np.clip(u - step, 0.0, 1.0)
    better = np.linalg.norm(bezier_eval(seg, nu) - d, axis=1) < np.linalg.norm(q, axis=1)
    nu = np.where(ok & better, nu, u)
    nu[0], nu[-1] = 0.0, 1.0
    return np.maximum.accumulate(nu)


def _errors(d: np.ndarray, seg: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.linalg.norm(bezier_eval(seg, u) - d, axis=1)


def fit_span(d: np.ndarray, tan1: np.ndarray, tan2: np.ndarray,
             iterations: int = 3) -> tuple[np.ndarray, float, np.ndarray]:
    """One cubic through ``d[0]`` and ``d[-1]`` with the given end tangent directions.

    Returns the segment ``(4, 2)``, the worst distance of ``d`` to it (px, after reparameterising)
    and the per-sample errors.
    """
    if len(d) <= 2:
        chord = float(np.linalg.norm(d[-1] - d[0]))
        seg = np.stack([d[0], d[0] + tan1 * chord / 3, d[-1] + tan2 * chord / 3, d[-1]])
        return seg, 0.0, np.zeros(len(d))
    u = _chord_params(d)
    seg = _generate(d, u, tan1, tan2)
    err = _errors(d, seg, u)
    best = (float((err * err).sum()), seg, err)
    for _ in range(iterations):
        u = _reparam(d, u, seg)
        seg = _generate(d, u, tan1, tan2)
        err = _errors(d, seg, u)
        sse = float((err * err).sum())
        if sse <= best[0]:  # an iteration that makes the least-squares fit worse is not kept
            best = (sse, seg, err)
    return best[1], float(best[2].max()), best[2]


def _fit_recursive(d: np.ndarray, tan1: np.ndarray, tan2: np.ndarray, tol: float, offset: int,
                   out: list[tuple[np.ndarray, int]], depth: int = 0) -> None:
    seg, err, errs = fit_span(d, tan1, tan2)
    if err <= tol or len(d) <= 4 or depth > 24:
        out.append((seg, offset))
        return
    inner = errs[1:-1]
    split = int(np.argmax(inner)) + 1
    split = min(max(split, 2), len(d) - 3)
    k = max(1, min(3, split, len(d) - 1 - split))
    centre = _unit(d[split - k] - d[split + k])
    if not np.any(centre):
        centre = _unit(d[split - 1] - d[split + 1])
    _fit_recursive(d[: split + 1], tan1, centre, tol, offset, out, depth + 1)
    _fit_recursive(d[split:], -centre, tan2, tol, offset + split, out, depth + 1)


def _fit_with_tol(samples: np.ndarray, corners: np.ndarray, step: float, tol: float,
                  tangent_window: float) -> tuple[list[np.ndarray], list[int]]:
    m = len(samples)
    k = max(1, int(round(tangent_window / step)))
    segs: list[tuple[np.ndarray, int]] = []
    if len(corners) == 0:
        start = 0
        ring = np.vstack([samples, samples[:1]])
        t = _unit(samples[k % m] - samples[-k % m])
        _fit_recursive(ring, t, -t, tol, start, segs)
    else:
        for ci, c in enumerate(corners):
            c_next = corners[(ci + 1) % len(corners)]
            length = (c_next - c) % m or m
            idx = (c + np.arange(length + 1)) % m
            d = samples[idx]
            kk = max(1, min(k, len(d) - 1))
            tan1 = _unit(d[kk] - d[0])
            tan2 = _unit(d[-1 - kk] - d[-1])
            part: list[tuple[np.ndarray, int]] = []
            _fit_recursive(d, tan1, tan2, tol, 0, part)
            segs.extend((s, (c + off) % m) for s, off in part)
    segs.sort(key=lambda so: so[1])
    return [s for s, _ in segs], [o for _, o in segs]


def _key_from_segments(segs: list[np.ndarray], corner: np.ndarray) -> BezierKey:
    n = len(segs)
    pts = np.array([s[0] for s in segs])
    right = np.array([s[1] - s[0] for s in segs])
    left = np.array([segs[i - 1][2] - segs[i - 1][3] for i in range(n)])
    return BezierKey(pts, left, right, corner)


def fit_closed(contour: np.ndarray, *, tolerance: float = 0.5, max_points: int = 32, min_points: int = 4,
               corner_angle: float = 50.0, corner_window: float = 4.0, step: float | None = None,
               fixed_points: int | None = None) -> FitResult:
    """Fit a closed contour with a closed cubic Bézier spline (see the module doc).

    ``fixed_points`` asks for exactly that many anchors (the tolerance is then only a starting
    point). The contour is oriented counter-clockwise on screen first.
    """
    poly = orient_ccw(np.asarray(contour, np.float64))
    perim = float(np.linalg.norm(np.diff(np.vstack([poly, poly[:1]]), axis=0), axis=1).sum())
    if step is None:
        step = max(0.5, min(2.0, perim / 1500.0))
    samples, _ = resample_closed(poly, step, min_points=max(24, 4 * min_points))
    m = len(samples)
    corners = find_corners(samples, step, corner_angle=corner_angle, window=corner_window)
    samples = sharpen_corners(samples, corners, step, corner_window)
    lo = max(3, min_points if fixed_points is None else fixed_points)
    hi = max(lo, max_points if fixed_points is None else fixed_points)
    tol = float(tolerance)
    segs, starts = _fit_with_tol(samples, corners, step, tol, 3.0)
    if len(segs) <= hi:
        anchors = np.asarray(starts, int)
        corner_flags = np.isin(anchors, corners)
    else:
        # the budget binds. A jagged matte edge is full of "corners": corners may take at most a
        # third of the budget (the sharpest; fewer when that fits better), the tolerance relaxes
        # until the fit fits, and what is left of the budget goes where the fit is worst
        best = None
        for n_corners in sorted({min(len(corners), hi // 3), min(len(corners), hi // 6), 0}, reverse=True):
            kept = _sharpest(samples, corners, step, corner_window, n_corners) if n_corners < len(corners) else corners
            t, guard = float(tolerance), 0
            s2, st2 = _fit_with_tol(samples, kept, step, t, 3.0)
            while len(s2) > hi and guard < 40:
                t *= 1.25
                s2, st2 = _fit_with_tol(samples, kept, step, t, 3.0)
                guard += 1
            a2 = np.asarray(st2, int)
            a2, c2, k2 = _fill_worst(samples, a2, np.isin(a2, kept), step, hi, float(tolerance))
            score = float(curve_distance(samples, sample_key(k2, 1.0)).mean())
            if best is None or score < best[0]:
                best = (score, t, s2, st2, a2, c2)
        _, tol, segs, starts, anchors, corner_flags = best
    # too few anchors: split the longest stretches (anchors move to their arclength middle)
    while len(anchors) < lo:
        gaps = (np.roll(anchors, -1) - anchors) % m
        gaps[gaps == 0] = m
        i = int(np.argmax(gaps))
        new = (anchors[i] + gaps[i] // 2) % m
        anchors = np.insert(anchors, i + 1, new)
        corner_flags = np.insert(corner_flags, i + 1, False)
        order = np.argsort(anchors, kind="stable")
        anchors, corner_flags = anchors[order], corner_flags[order]
    key, err = refit_fixed(samples, anchors, corner_flags, step)
    if len(anchors) != len(starts) or err > tol * 1.01:
        pass  # refit_fixed already gives the best handles for these anchors
    else:
        # the recursive fit's own segments are at least as good; keep its handles
        k2 = _key_from_segments(segs, corner_flags)
        e2 = float(curve_distance(samples, sample_key(k2, 0.25)).max())
        if e2 < err:
            key, err = k2, e2
    key.error = err
    return FitResult(key, anchors, samples, step, tol, err)


def _fill_worst(samples: np.ndarray, anchors: np.ndarray, corner: np.ndarray, step: float, target: int,
                tol: float) -> tuple[np.ndarray, np.ndarray, BezierKey]:
    """Add smooth anchors, one at a time, at the contour sample farthest from the spline (in the
    worst segment), until there are ``target`` anchors or every sample is within ``tol`` px.
    Returns the anchors, their corner flags and their fitted key (:func:`refit_fixed`)."""
    from scipy.spatial import cKDTree

    m = len(samples)
    anchors, corner = np.asarray(anchors, int) % m, np.asarray(corner, bool)
    key, err = refit_fixed(samples, anchors, corner, step)
    while len(anchors) < target and err > tol:
        n = len(anchors)
        segs = key.segments()
        cands: list[tuple[float, int]] = []
        for i in range(n):
            a = anchors[i]
            length = (anchors[(i + 1) % n] - a) % m or m
            if length < 6:  # too short to split
                continue
            d = samples[(a + np.arange(length + 1)) % m]
            dist = cKDTree(bezier_eval(segs[i], np.linspace(0, 1, max(16, int(length * 2))))).query(d)[0]
            j = int(np.argmax(dist[3:-3])) + 3
            cands.append((float(dist[j]), int((a + j) % m)))
        if not cands:
            break
        # the worst points of the worst few segments: keep the one whose refit is best (a long
        # stretch's handles can overshoot; trying a few avoids a split that makes things worse)
        best = None
        for _, where in sorted(cands, reverse=True)[:3]:
            a2 = np.append(anchors, where)
            c2 = np.append(corner, False)
            order = np.argsort(a2, kind="stable")
            k2, e2 = refit_fixed(samples, a2[order], c2[order], step)
            score = float(curve_distance(samples, sample_key(k2, 1.0)).mean())
            if best is None or score < best[0]:
                best = (score, e2, a2[order], c2[order], k2)
        _, err, anchors, corner, key = best
    return anchors, corner, key


def _sharpest(samples, corners, step, window, keep):
    k = max(1, int(round(window / step)))
    v1 = samples[corners] - samples[(corners - k) % len(samples)]
    v2 = samples[(corners + k) % len(samples)] - samples[corners]
    cosang = (v1 * v2).sum(1) / (np.linalg.norm(v1, axis=1) * np.linalg.norm(v2, axis=1) + 1e-12)
    order = np.argsort(cosang)[:keep]
    return np.sort(corners[order])


def refit_fixed(samples: np.ndarray, anchors: np.ndarray, corner: np.ndarray, step: float,
                iterations: int = 3) -> tuple[BezierKey, float]:
    """Handles for anchors fixed at ``samples[anchors]`` (cyclic order); returns the key and its max error."""
    m = len(samples)
    anchors = np.asarray(anchors, int) % m
    n = len(anchors)
    back, out = tangents_at(samples, anchors, np.asarray(corner, bool), step)
    segs = []
    worst = 0.0
    for i in range(n):
        a, b = anchors[i], anchors[(i + 1) % n]
        length = (b - a) % m
        if length == 0:
            length = m if n == 1 else 1
        d = samples[(a + np.arange(length + 1)) % m]
        seg, err, _ = fit_span(d, out[i], back[(i + 1) % n], iterations)
        segs.append(seg)
        worst = max(worst, err)
    return _key_from_segments(segs, np.asarray(corner, bool)), worst


def segment_errors(samples: np.ndarray, anchors: np.ndarray, key: BezierKey) -> np.ndarray:
    """Worst distance per segment between the contour stretch and the key's segment, px."""
    m = len(samples)
    n = len(anchors)
    segs = key.segments()
    errs = np.zeros(n)
    for i in range(n):
        a, b = anchors[i], anchors[(i + 1) % n]
        length = (b - a) % m or m
        d = samples[(a + np.arange(length + 1)) % m]
        curve = bezier_eval(segs[i], np.linspace(0, 1, max(8, int(length * 2))))
        from scipy.spatial import cKDTree

        errs[i] = float(cKDTree(curve).query(d)[0].max())
    return errs
