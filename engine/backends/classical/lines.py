"""Thin straight structures attached to an object (kite lines, paraglider risers, cables, ropes).

Region-based segmentation (and any optical flow on a reduced image) erases structures one or two
pixels wide, yet they carry much of an object's outline. This module handles them apart:

* :func:`split_lines` finds the straight thin parts of a keyframe mask (what a morphological
  opening removes, then ``cv2.HoughLinesP``) and returns the mask without them plus the segments;
* each frame, :func:`track_lines` moves every segment's *attached* end with the object and
  re-fits its direction by searching the angle (and a small sideways shift) that best follows a
  thin-line response of the new frame (:func:`line_response`, a morphological top-hat);
  segments that no longer follow a line are dropped;
* :func:`draw_lines` rasterises the segments back into a mask.

From a click there is no drawn mask to split, so :func:`find_attached_lines` looks for the lines
instead: rays cast from just outside the object that follow the thin-line response, kept by
:func:`lines_moving_with` only when they move with the object rather than with the camera (a
lamp post or a road marking that merely touches the object does not).

Coordinates are full-resolution pixels (x, y; origin top-left). Segments are ``float32 (N, 4)`` rows
``(x_attached, y_attached, x_free, y_free)``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["split_lines", "line_scale", "line_response", "track_lines", "draw_lines", "find_attached_lines", "lines_moving_with"]


def split_lines(mask: np.ndarray, *, radius: int = 3, min_length: int = 40):
    """Split a ``bool (H, W)`` mask into ``(body bool (H, W), segments float32 (N, 4), width px)``.

    ``segments`` are the straight thin parts (narrower than ``2 * radius + 1`` px, at least
    ``min_length`` px long), oriented so the first point is the end nearer the body.
    """
    m = mask.astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    body = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    thin = (m > 0) & (body == 0)
    empty = np.zeros((0, 4), np.float32)
    if thin.sum() < min_length:
        return mask.copy(), empty, 0.0
    segs = cv2.HoughLinesP(thin.astype(np.uint8) * 255, 1, np.pi / 360, threshold=max(20, min_length // 2),
                           minLineLength=min_length, maxLineGap=2 * radius)
    if segs is None:
        return mask.copy(), empty, 0.0
    segs = segs.reshape(-1, 4).astype(np.float32)
    # attached end = the one nearer the body
    if body.any():
        dist = cv2.distanceTransform((body == 0).astype(np.uint8), cv2.DIST_L2, 3)
        h, w = body.shape

        def d(x, y):
            return dist[int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1))]

        for i, (xa, ya, xb, yb) in enumerate(segs):
            if d(xb, yb) < d(xa, ya):
                segs[i] = (xb, yb, xa, ya)
        segs = merge_collinear(segs, d, max_offset=float(radius))
    drawn = draw_lines(mask.shape, segs, float(radius))
    covered = thin & drawn
    if covered.sum() < 0.3 * thin.sum():
        return mask.copy(), empty, 0.0
    length = float(np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1]).sum())
    width = float(np.clip(covered.sum() / max(length, 1.0), 1.0, radius + 1.0))
    # the body: the opened mask's components (the thin parts are the lines' business)
    new_body = body > 0
    if not new_body.any():
        return mask.copy(), empty, 0.0
    return new_body, segs, width


def merge_collinear(segs: np.ndarray, dist_to_body, *, max_angle: float = 0.03, max_offset: float = 3.0) -> np.ndarray:
    """Merge Hough pieces of one physical line into one segment.

    ``segs`` are ``float32 (N, 4)`` segments; pieces whose directions differ by less than
    ``max_angle`` rad and whose two ends lie within ``max_offset`` px of the line are one line,
    which runs from its piece end nearest the body (``dist_to_body(x, y) -> px``) to the farthest.
    """
    groups: list[dict] = []
    for xa, ya, xb, yb in np.asarray(segs, np.float64):
        ang = math.atan2(yb - ya, xb - xa)
        off = -xa * math.sin(ang) + ya * math.cos(ang)
        for g in groups:
            dang = (g["ang"] - ang + math.pi / 2) % math.pi - math.pi / 2
            sn, cs = math.sin(g["ang"]), math.cos(g["ang"])
            da = abs(-xa * sn + ya * cs - g["off"])  # both ends near the group's line
            db = abs(-xb * sn + yb * cs - g["off"])
            if abs(dang) < max_angle and max(da, db) < max_offset:
                g["pts"] += [(xa, ya), (xb, yb)]
                break
        else:
            groups.append({"ang": ang, "off": off, "pts": [(xa, ya), (xb, yb)]})
    out = []
    for g in groups:
        pts = g["pts"]
        d = [dist_to_body(x, y) for x, y in pts]
        a = pts[int(np.argmin(d))]
        b = pts[int(np.argmax(d))]
        out.append((a[0], a[1], b[0], b[1]))
    return np.array(out, np.float32).reshape(-1, 4)


def line_scale(shape) -> float:
    """How many times a frame of ``shape`` (H, W) is larger than 480p (diagonal ratio, at least 1): the
    thin-structure sizes here (opening radius, top-hat size, search shifts) are for 480p and grow with it."""
    return max(1.0, math.hypot(*shape[:2]) / 980.0)


def line_response(grey: np.ndarray, *, size: int = 7) -> np.ndarray:
    """Thin-line evidence ``float32 (H, W)`` >= 0: max of black and white top-hats of a uint8 grey image."""
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    bh = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, k)
    wh = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, k)
    return np.maximum(bh, wh).astype(np.float32)


def _sample(resp: np.ndarray, xa, ya, xb, yb, n: int) -> float:
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    xs = (xa + (xb - xa) * t).astype(np.float32)
    ys = (ya + (yb - ya) * t).astype(np.float32)
    h, w = resp.shape
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    if inside.sum() < 0.5 * n:
        return 0.0
    v = cv2.remap(resp, xs[inside][None, :], ys[inside][None, :], cv2.INTER_LINEAR)
    return float(v.mean())


def _to_border(ax, ay, ang, shape) -> float:
    """Length from (ax, ay) along direction ``ang`` to the frame border."""
    h, w = shape
    c, s_ = math.cos(ang), math.sin(ang)
    ts = []
    if c > 1e-6:
        ts.append((w - 1 - ax) / c)
    elif c < -1e-6:
        ts.append(-ax / c)
    if s_ > 1e-6:
        ts.append((h - 1 - ay) / s_)
    elif s_ < -1e-6:
        ts.append(-ay / s_)
    return max(1.0, min(ts)) if ts else 1.0


def line_meta(segs: np.ndarray, shape, *, border: float = 6.0) -> np.ndarray:
    """Per segment ``(keyframe angle rad, 1 if its free end touches the frame border else 0)``."""
    h, w = shape
    out = np.zeros((len(segs), 2), np.float32)
    for i, (xa, ya, xb, yb) in enumerate(segs):
        out[i, 0] = math.atan2(yb - ya, xb - xa)
        out[i, 1] = float(xb < border or yb < border or xb > w - 1 - border or yb > h - 1 - border)
    return out


def track_lines(segs: np.ndarray, resp: np.ndarray, move, *, max_turn: float = 0.04, steps: int = 17,
                shift: float = 3.0, keep: np.ndarray | None = None, min_ratio: float = 0.35,
                meta: np.ndarray | None = None, max_total_turn: float = 0.5):
    """Re-fit segments on a new frame.

    ``move(xy float (N, 2)) -> (N, 2)`` carries the attached ends with the object; ``resp`` is
    :func:`line_response` of the new frame; each segment's direction is searched within
    ``±max_turn`` rad and its attached end ``±shift`` px sideways. ``keep`` is each segment's
    reference response (from the keyframe); a segment scoring below ``min_ratio`` of it is dropped.
    Returns ``(segments float32 (M, 4), their responses float32 (M,), kept indices)``.
    """
    if len(segs) == 0:
        return segs, np.zeros(0, np.float32), np.zeros(0, int)
    att = move(segs[:, :2].astype(np.float64))
    out, scores, idx = [], [], []
    for i, (s, a) in enumerate(zip(segs, att)):
        dx, dy = s[2] - s[0], s[3] - s[1]
        length = math.hypot(dx, dy)
        if length < 1:
            continue
        ang0 = math.atan2(dy, dx)
        nx, ny = -math.sin(ang0), math.cos(ang0)
        n = max(16, int(length / 3))
        best = (-1.0, None)
        for off in np.linspace(-shift, shift, 5):
            ax, ay = a[0] + off * nx, a[1] + off * ny
            for da in np.linspace(-max_turn, max_turn, steps):
                ang = ang0 + da
                if meta is not None:
                    turn = (ang - meta[i, 0] + math.pi) % (2 * math.pi) - math.pi
                    if abs(turn) > max_total_turn:
                        continue
                ln = _to_border(ax, ay, ang, resp.shape) if (meta is not None and meta[i, 1] > 0) else length
                bx, by = ax + ln * math.cos(ang), ay + ln * math.sin(ang)
                v = _sample(resp, ax, ay, bx, by, n)
                if v > best[0]:
                    best = (v, (ax, ay, bx, by))
        if best[1] is None:
            continue
        ref = None if keep is None else float(keep[i])
        if ref is not None and best[0] < min_ratio * ref:
            continue
        out.append(best[1])
        scores.append(best[0])
        idx.append(i)
    if not out:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)
    return np.array(out, np.float32), np.array(scores, np.float32), np.array(idx, int)


def draw_lines(shape, segs: np.ndarray, width: float) -> np.ndarray:
    """``bool (H, W)`` with the segments drawn ``width`` px thick (anti-aliasing off)."""
    out = np.zeros(shape, np.uint8)
    t = max(1, int(round(width)))
    for xa, ya, xb, yb in np.asarray(segs, np.float64):
        cv2.line(out, (int(round(xa)), int(round(ya))), (int(round(xb)), int(round(yb))), 1, t, cv2.LINE_8)
    return out.astype(bool)


def _ray_means(resp: np.ndarray, x0, y0, ang, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``resp`` along rays from ``(x0, y0)`` at angles ``ang`` (all ``(N,)``), sampled at the
    distances ``t`` ``(K,)``; and the fraction of samples inside the image. Both ``(N,)``."""
    x0, y0, ang = (np.asarray(v, np.float32).reshape(-1) for v in (x0, y0, ang))
    if len(x0) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    c = np.cos(ang)[:, None]
    s = np.sin(ang)[:, None]
    xs = (x0[:, None] + c * t[None, :]).astype(np.float32)
    ys = (y0[:, None] + s * t[None, :]).astype(np.float32)
    # cv2.remap takes at most 32767 rows at a time
    v = np.concatenate([cv2.remap(resp, xs[i:i + 30000], ys[i:i + 30000], cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
                        for i in range(0, len(xs), 30000)])
    inside = v >= 0
    return np.where(inside, v, 0.0).sum(1) / np.maximum(1, inside.sum(1)), inside.mean(1)


def _contrast(resp: np.ndarray, x0, y0, ang, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much each ray stands out from the rays 4 px to either side (ratio, +2 regularised), and the
    fraction of it inside the image; rays as in :func:`_ray_means`, results ``(N,)``."""
    x0, y0, ang = (np.asarray(v, np.float32).reshape(-1) for v in (x0, y0, ang))
    nx, ny = -np.sin(ang), np.cos(ang)
    on, ins = _ray_means(resp, x0, y0, ang, t)
    s1, _ = _ray_means(resp, x0 + 4 * nx, y0 + 4 * ny, ang, t)
    s2, _ = _ray_means(resp, x0 - 4 * nx, y0 - 4 * ny, ang, t)
    return on / (np.maximum(s1, s2) + 2.0), ins


def find_attached_lines(image: np.ndarray, seed: np.ndarray, *, near: float = 0.1, k_short: float = 1.3,
                        k_long: float = 1.4, min_length: float = 0.08, max_candidates: int = 300) -> np.ndarray:
    """Long thin straight structures that start at an object (kite lines, cables, a towed rope).

    ``image`` is ``uint8 (H, W, 3)`` RGB, ``seed`` the object's ``bool (H, W)`` mask without them.
    Rays are cast in every direction (1° apart) from a ring ``near`` × the object's size outside it;
    one whose first 60 px follow the thin-line response (:func:`line_response`) ``k_short`` times more
    than the response 4 px to either side is refined (±1°, ±1 px), followed in 20 px steps while it
    stands out, and kept when at least ``min_length`` × the frame diagonal long with a contrast of
    ``k_long`` over that length. Returns ``float32 (N, 4)`` segments, attached end first; nothing
    here says the lines belong to the object: see :func:`lines_moving_with`.
    """
    seed = np.asarray(seed, bool)
    h, w = seed.shape
    empty = np.zeros((0, 4), np.float32)
    if not seed.any():
        return empty
    diag = math.hypot(h, w)
    resp = line_response(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)).astype(np.float32)
    ys, xs = np.nonzero(seed)
    size = max(int(np.ptp(xs)), int(np.ptp(ys)), 8)
    r = int(max(4, near * size))
    ring = cv2.dilate(seed.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    contours, _ = cv2.findContours(ring, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return empty
    pts = np.concatenate([c.reshape(-1, 2) for c in contours])
    pts = pts[:: max(3, len(pts) // 600)].astype(np.float32)  # every 3 px, at most ~600 origins
    angs = np.deg2rad(np.arange(0.0, 360.0, 1.0)).astype(np.float32)
    px = np.repeat(pts[:, 0], len(angs))
    py = np.repeat(pts[:, 1], len(angs))
    pa = np.tile(angs, len(pts))
    # only rays that head away from the object
    hx = np.clip(np.round(px + 10 * np.cos(pa)).astype(int), 0, w - 1)
    hy = np.clip(np.round(py + 10 * np.sin(pa)).astype(int), 0, h - 1)
    away = ring[hy, hx] == 0
    px, py, pa = px[away], py[away], pa[away]
    score, ins = _contrast(resp, px, py, pa, np.arange(2, 62, 2, dtype=np.float32))
    good = np.nonzero((score > k_short) & (ins > 0.9))[0]
    good = good[np.argsort(-score[good])][:max_candidates]
    t_long = np.arange(2, 0.3 * diag, 2, dtype=np.float32)
    da = np.deg2rad(np.arange(-1.0, 1.01, 0.1)).astype(np.float32)
    offs = np.array([-1.0, 0.0, 1.0], np.float32)
    out: list[tuple[float, float, float, float]] = []
    for i in good:
        aa = np.repeat(pa[i] + da, len(offs))
        oo = np.tile(offs, len(da))
        x0s = px[i] - oo * np.sin(aa)
        y0s = py[i] + oo * np.cos(aa)
        v, _ = _ray_means(resp, x0s, y0s, aa, t_long)
        j = int(np.argmax(v))
        a, xa, ya = float(aa[j]), float(x0s[j]), float(y0s[j])
        length = 0.0
        for t0 in range(0, int(0.6 * diag), 20):
            c, inside = _contrast(resp, xa, ya, a, np.arange(t0, t0 + 20, 2, dtype=np.float32))
            if inside[0] < 0.5 or c[0] < 1.15:
                break
            length = t0 + 20.0
        if length < min_length * diag:
            continue
        if _contrast(resp, xa, ya, a, np.arange(2, length, 2, dtype=np.float32))[0][0] < k_long:
            continue
        xb, yb = xa + length * math.cos(a), ya + length * math.sin(a)
        for _ in range(r + 3):  # the ray started on the ring: take its attached end back to the object
            xi, yi = int(round(xa - math.cos(a))), int(round(ya - math.sin(a)))
            if not (0 <= xi < w and 0 <= yi < h) or seed[yi, xi]:
                break
            xa, ya = xa - math.cos(a), ya - math.sin(a)
        seg = (xa, ya, xb, yb)
        if not any(_same_line(seg, q) for q in out):
            out.append(seg)
    return np.array(out, np.float32).reshape(-1, 4)


def _same_line(a, b, *, tol: float = 3.0, max_angle: float = 0.1) -> bool:
    """Whether segment ``a`` lies along segment ``b`` (both ends within ``tol`` px of its line)."""
    ang_b = math.atan2(b[3] - b[1], b[2] - b[0])
    ang_a = math.atan2(a[3] - a[1], a[2] - a[0])
    if abs((ang_a - ang_b + math.pi) % (2 * math.pi) - math.pi) > max_angle:
        return False
    sn, cs = math.sin(ang_b), math.cos(ang_b)
    d1 = abs(-(a[0] - b[0]) * sn + (a[1] - b[1]) * cs)
    d2 = abs(-(a[2] - b[0]) * sn + (a[3] - b[1]) * cs)
    return max(d1, d2) < tol


def lines_moving_with(image: np.ndarray, other: np.ndarray, seed: np.ndarray, segs: np.ndarray, *,
                      work_size: int = 427, search: float = 25.0) -> np.ndarray:
    """The segments that move like the object, not like the camera, from ``image`` to ``other``.

    ``image``/``other``: ``uint8 (H, W, 3)`` RGB frames of one shot; ``seed``: the object's ``bool
    (H, W)`` mask on ``image``; ``segs``: ``float32 (N, 4)``. Each segment's shift across itself is
    measured on ``other`` (the offset within ±``search`` px where the thin-line response along it is
    highest); the object's shift is the median DIS flow inside it, the camera's an affine model fitted
    with RANSAC to the flow around it (both across the segment, at its middle). A segment is kept
    when its shift differs from the camera's by at least 2.5 px and is at least twice as close to the
    object's. An object that moves with the camera keeps none: its lines cannot be told from the scene's.
    """
    from engine.backends.classical.motion import fit_background_motion
    from engine.ops.flow import dis_flow

    segs = np.asarray(segs, np.float32).reshape(-1, 4)
    if len(segs) == 0:
        return segs
    h, w = seed.shape
    sc = min(1.0, work_size / max(h, w))
    size = (max(8, round(w * sc)), max(8, round(h * sc)))
    a_s = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    b_s = cv2.resize(other, size, interpolation=cv2.INTER_AREA)
    flow = dis_flow(a_s, b_s, preset="medium")  # reduced px
    hs, ws = flow.shape[:2]
    seed_s = cv2.resize(seed.astype(np.uint8), (ws, hs), interpolation=cv2.INTER_NEAREST)
    inner = cv2.erode(seed_s, np.ones((3, 3), np.uint8)).astype(bool)
    if not inner.any():
        inner = seed_s.astype(bool)
    if not inner.any():
        return np.zeros((0, 4), np.float32)
    obj = np.median(flow[inner], axis=0) / sc  # full-res px
    outside = ~cv2.dilate(seed_s, np.ones((9, 9), np.uint8)).astype(bool)
    cam = fit_background_motion(flow, outside, model="affine", thresh=1.5 * sc)
    if cam is None:
        return np.zeros((0, 4), np.float32)
    map_x, map_y, _ = cam

    def camera_shift(x, y):
        """The camera's motion at full-res ``(x, y)``, full-res px."""
        xs = int(np.clip(round((x + 0.5) * sc - 0.5), 0, ws - 1))
        ys = int(np.clip(round((y + 0.5) * sc - 0.5), 0, hs - 1))
        return (map_x[ys, xs] - xs) / sc, (map_y[ys, xs] - ys) / sc

    oresp = line_response(cv2.cvtColor(other, cv2.COLOR_RGB2GRAY)).astype(np.float32)
    offsets = np.arange(-search, search + 0.01, 0.5, dtype=np.float32)
    kept = []
    for xa, ya, xb, yb in segs:
        length = math.hypot(xb - xa, yb - ya)
        ang = math.atan2(yb - ya, xb - xa)
        nx, ny = -math.sin(ang), math.cos(ang)
        mx, my = 0.5 * (xa + xb), 0.5 * (ya + yb)
        bx, by = camera_shift(mx, my)
        bg_n = float(bx * nx + by * ny)
        obj_n = float(obj[0] * nx + obj[1] * ny)
        t = np.arange(-0.5 * length, 0.5 * length, 2, dtype=np.float32)
        best_v, best_o = -1.0, 0.0
        for da in (-0.02, 0.0, 0.02):
            a2 = ang + da
            v, _ = _ray_means(oresp, mx + offsets * nx, my + offsets * ny, np.full(len(offsets), a2, np.float32), t)
            j = int(np.argmax(v))
            if v[j] > best_v:
                best_v, best_o = float(v[j]), float(offsets[j])
        if best_v > 0 and abs(best_o - bg_n) >= 2.5 and abs(best_o - obj_n) < 0.5 * abs(best_o - bg_n):
            kept.append((xa, ya, xb, yb))
    return np.array(kept, np.float32).reshape(-1, 4)
